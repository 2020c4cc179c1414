package websocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Message is a data message as the event API delivers it.
//
// By default Data belongs to the handler: it is a new slice for each
// message, which the handler may keep, change or hand to other goroutines
// after OnMessage returns; the library never touches it again. With
// ServerOptions.BorrowMessageData (or ClientOptions.BorrowMessageData)
// Data is only lent: it is valid until OnMessage returns and may alias
// read buffers that the library reuses, for this connection and for
// others, so a handler that keeps it, or anything sliced from it, must
// copy it first (Text returns a copy). Borrowing saves one allocation and
// one copy per message.
type Message struct {
	Type MessageType
	Data []byte
}

// Text returns the payload as a string (a copy).
func (m Message) Text() string { return string(m.Data) }

// eventHandlers holds the event API's callbacks. The mutex lets handlers be
// registered while the connection runs; they are still best registered
// before Start so that no event is missed.
//
// Every handler call recovers a panic (recover.go): the panic is logged
// through the options' Logger and the connection, and only it, is closed
// with StatusInternalError (1011).
type eventHandlers struct {
	mu      sync.Mutex
	open    func()
	message func(Message)
	close   func(StatusCode, string)
	err     func(error)
	ping    func([]byte)
	pong    func([]byte)
}

// OnOpen sets the handler called once the handshake is done. If it panics,
// the panic is logged (see ServerOptions.Logger) and the connection is
// closed with 1011.
func (c *Conn) OnOpen(fn func()) { c.events.mu.Lock(); c.events.open = fn; c.events.mu.Unlock() }

// OnMessage sets the handler called for each data message; Message.Type
// tells text from binary. Message.Data is the handler's to keep unless
// BorrowMessageData was set (see Message). If the handler panics, the
// panic is logged (see ServerOptions.Logger) and the connection is closed
// with 1011; the process and the other connections carry on.
func (c *Conn) OnMessage(fn func(Message)) {
	c.events.mu.Lock()
	c.events.message = fn
	c.events.mu.Unlock()
}

// OnClose sets the handler called exactly once when the connection has
// closed, with the close code and reason the peer sent; StatusAbnormalClosure
// (1006) if TCP went down without a close frame, or the code the library
// failed the connection with after a protocol error. A panic in it is
// logged (see ServerOptions.Logger) and otherwise ignored.
func (c *Conn) OnClose(fn func(code StatusCode, reason string)) {
	c.events.mu.Lock()
	c.events.close = fn
	c.events.mu.Unlock()
}

// OnError sets the handler called when the peer breaks the protocol; the
// error is a *ProtocolError, and OnClose follows. A panic in it is logged
// (see ServerOptions.Logger) and otherwise ignored: the connection is
// already closing.
func (c *Conn) OnError(fn func(error)) { c.events.mu.Lock(); c.events.err = fn; c.events.mu.Unlock() }

// OnPing sets the handler called for each ping received, after the library
// has answered it with a pong. The payload is only valid during the call.
// If it panics, the panic is logged (see ServerOptions.Logger) and the
// connection is closed with 1011.
func (c *Conn) OnPing(fn func([]byte)) { c.events.mu.Lock(); c.events.ping = fn; c.events.mu.Unlock() }

// OnPong sets the handler called for each pong received. The payload is
// only valid during the call. If it panics, the panic is logged (see
// ServerOptions.Logger) and the connection is closed with 1011.
func (c *Conn) OnPong(fn func([]byte)) { c.events.mu.Lock(); c.events.pong = fn; c.events.mu.Unlock() }

func (h *eventHandlers) get() eventHandlers {
	h.mu.Lock()
	defer h.mu.Unlock()
	return eventHandlers{open: h.open, message: h.message, close: h.close, err: h.err, ping: h.ping, pong: h.pong}
}

// Start does websocket-driver's start-connection: it sends the handshake (the
// response on a server, the request on a client; a client waits for the
// answer) and then reads the connection on a new goroutine, calling the
// handlers. It returns once the connection is open, or with the handshake's
// error, in which case no handler is called. On a server a failed handshake
// has already been answered with an HTTP error. On a server connection
// over HTTP/2 (RFC 8441) the connection lives only as long as the handler
// that accepted it, so there Start runs the event loop itself and returns
// once the connection has closed and OnClose has run: register the
// handlers before Start, and do in OnOpen what must follow the opening.
func (c *Conn) Start() error { return c.StartContext(context.Background()) }

// StartContext is Start with a context bounding the client's dial and
// handshake. The connection's life after the handshake is not bound to ctx.
func (c *Conn) StartContext(ctx context.Context) error {
	if c.ReadyState() != Connecting || c.hs == nil || c.eventing.Load() {
		return errors.New("websocket: Start called twice")
	}
	// Set before the handshake publishes the connection, so that a Close
	// racing with Start knows the read loop will finish the handshake.
	c.eventing.Store(true)
	var err error
	if c.client {
		_, err = c.dial(ctx)
	} else {
		err = c.accept()
	}
	if err != nil {
		c.logDebug("websocket: opening handshake failed", "client", c.client, "error", err)
		c.finish(err)
		c.eventing.Store(false) // no loop runs: reads report the failure
		return err
	}
	c.startEventLoop()
	return nil
}

// startEventLoop hands the open connection to the event API's read loop.
func (c *Conn) startEventLoop() {
	// What was sent while connecting goes out now, before Start returns, so
	// that a Close made after Start cannot overtake it.
	c.flushPending()
	c.readSem.lock() // the read loop owns the read side from now on
	if nc := loopNetConn(c.netConn); nc != nil {
		c.startLoopEvents(nc) // the event-loop backend pushes the bytes (loopconn.go)
		return
	}
	c.attachPoller()
	if c.ReadyState() == Closed {
		// Closed from another goroutine since the handshake: finish may
		// have looked for a registration before attachPoller made it.
		c.detachPoller()
	}
	if c.servesStream() {
		// An HTTP/2 stream ends when its handler returns: the loop runs on
		// the handler's goroutine, and Start returns once it has ended.
		c.runEvents()
		return
	}
	go c.runEvents()
}

// runEvents starts the event API's read loop: OnOpen, then serveEvents.
func (c *Conn) runEvents() {
	if fn := c.events.get().open; fn != nil {
		c.callOpen(fn)
	}
	// A new connection's peer has often nothing to say yet: when nothing
	// arrived behind the handshake, the loop parks at once (the poller
	// starts it again as soon as bytes are there), so that a burst of new,
	// quiet connections never holds a goroutine each.
	if c.polled() && c.drained() && c.parkLoop() {
		return
	}
	c.serveEvents()
}

// serveEvents is the event API's read loop: handlers run here, one at a
// time. It returns when the connection has ended and OnClose has run, or
// when a polled connection has been idle long enough to park (poll.go): a
// later serveEvents on a new goroutine then takes the loop up again.
func (c *Conn) serveEvents() {
	bp := messageBufPool.Get().(*[]byte)
	buf := *bp
	var err error
	for {
		if c.drained() && c.polled() {
			var idle bool
			if idle, err = c.awaitMessage(); err != nil {
				break
			}
			if idle {
				putMessageBuffer(bp, buf)
				if c.parkLoop() {
					return
				}
				bp = messageBufPool.Get().(*[]byte)
				buf = *bp
			}
			continue
		}
		var typ MessageType
		var msg []byte
		typ, msg, buf, err = c.readEventMessage(buf)
		if err != nil {
			break
		}
		if typ == 0 {
			continue // a ping or pong only: wait where the loop can park
		}
		// More bytes already read means more messages are probably
		// waiting: what the handlers send goes out in one write once they
		// have run (see sendLocked).
		if !c.drained() && !c.batching.Load() {
			c.beginBatch()
		}
		c.deliverMessage(c.events.get().message, Message{Type: typ, Data: msg})
		if c.drained() {
			c.endBatch()
		}
		if cap(buf) > maxKeptMessageBuffer {
			buf = nil // do not keep a rare huge message's buffer for an idle connection
		}
	}
	putMessageBuffer(bp, buf)
	c.endBatch()
	<-c.doneChan()
	if l := c.pollReg(); l != nil {
		l.state.Store(loopDone)
	}
	c.fireClose()
}

// fireClose calls OnClose with the code and reason the connection ended
// with. The event API's read loop calls it once the connection is done.
func (c *Conn) fireClose() {
	code, reason := StatusAbnormalClosure, ""
	var ce *CloseError
	var pe *ProtocolError
	switch err := c.closeErr; {
	case errors.As(err, &ce):
		code, reason = ce.Code, ce.Reason
	case errors.As(err, &pe):
		code, reason = pe.Code, pe.Reason
	case err != nil:
		reason = err.Error()
	}
	if fn := c.events.get().close; fn != nil {
		c.callClose(fn, code, reason)
	}
}

// maxKeptMessageBuffer is the largest message buffer the event loop keeps
// for the next message. Reusing it saves an allocation and a copy per
// message; above this size, holding it costs more.
const maxKeptMessageBuffer = 1 << 20

// messageBufPool holds the event loops' message buffers between messages
// (a parked loop holds none).
var messageBufPool = sync.Pool{New: func() any { return new([]byte) }}

// putMessageBuffer gives a loop's message buffer back to the pool.
func putMessageBuffer(bp *[]byte, buf []byte) {
	if cap(buf) > maxKeptMessageBuffer {
		buf = nil
	}
	*bp = buf[:0]
	messageBufPool.Put(bp)
}

// pendingSend is a message or ping sent before the connection opened.
type pendingSend struct {
	op   opcode
	data []byte
}

// Send sends v as a message: a string as text, a []byte as binary. Before
// the connection is open the message is queued and sent once it opens, as
// websocket-driver's send does. Send is safe for concurrent use. Once open, the
// send is bounded by the write timeout (ErrWriteTimeout); Write is the
// variant that takes a context.
func (c *Conn) Send(v any) error {
	switch v := v.(type) {
	case string:
		return c.SendText(v)
	case []byte:
		return c.SendBinary(v)
	}
	return fmt.Errorf("websocket: Send takes a string or a []byte, not %T", v)
}

// SendText sends s as a text message (queued while connecting), bounded by
// the write timeout; Write(ctx, TextMessage, p) is its context variant.
func (c *Conn) SendText(s string) error { return c.send(opText, []byte(s)) }

// SendBinary sends b as a binary message (queued while connecting), bounded
// by the write timeout; Write(ctx, BinaryMessage, b) is its context
// variant.
func (c *Conn) SendBinary(b []byte) error { return c.send(opBinary, b) }

// SendPing sends a ping with an optional payload of at most 125 bytes
// (queued while connecting), as websocket-driver's send-ping, without waiting for
// the answer: the peer's pong reaches OnPong. Ping sends one and waits for
// its pong.
func (c *Conn) SendPing(data []byte) error {
	if len(data) > maxControlPayload {
		return fmt.Errorf("websocket: ping payload is %d bytes, the limit is %d", len(data), maxControlPayload)
	}
	return c.send(opPing, data)
}

func (c *Conn) send(op opcode, data []byte) error {
	if c.queue(op, data) {
		return nil
	}
	if op == opPing {
		if c.ReadyState() != Open {
			return ErrClosed
		}
		return c.writeControl(opPing, data)
	}
	return c.Write(context.Background(), MessageType(op), data)
}

// queue holds a send made before the connection opened and reports whether
// it did. The lock is held while flushPending drains the queue, so queued
// messages go out ahead of later ones.
func (c *Conn) queue(op opcode, data []byte) bool {
	if c.flushed.Load() {
		return false // the common case, an open connection, takes no lock
	}
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	if c.flushed.Load() || c.ReadyState() == Closed {
		return false
	}
	c.pending = append(c.pending, pendingSend{op: op, data: append([]byte(nil), data...)})
	return true
}

// flushPending sends what was queued while connecting.
func (c *Conn) flushPending() {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	c.flushed.Store(true)
	for _, p := range c.pending {
		var err error
		if p.op == opPing {
			err = c.writeControl(opPing, p.data)
		} else {
			err = c.Write(context.Background(), MessageType(p.op), p.data)
		}
		if err != nil {
			break
		}
	}
	c.pending = nil
}
