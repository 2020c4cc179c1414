// Package wsnet runs stream protocols over WebSocket: NetConn turns a
// connection of package websocket into a net.Conn, so that anything written
// for a net.Conn (bufio line protocols, net/http, TLS, SSH, gRPC, database
// drivers) can use a WebSocket as its transport, through proxies, load
// balancers and networks that let only HTTP through.
//
// Use it when the application's protocol is a byte stream. When it is made
// of messages, use the connection's own Read and Write (or package wsjson):
// a byte stream loses the message boundaries, and a net.Conn adds a copy on
// each side.
package wsnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wsdriver/websocket"
)

// ErrMessageType is reported (wrapped in a *net.OpError) by Read when the
// peer sent a data message of the other type than the one the net.Conn was
// made for.
var ErrMessageType = errors.New("wsnet: message of the wrong type")

// maxKeptReadBuffer is the largest receive buffer kept from one message to
// the next; a larger one, left by an unusually big message, is dropped.
const maxKeptReadBuffer = 1 << 20

// NetConn returns a net.Conn that carries a byte stream over ws.
//
// typ is websocket.BinaryMessage or websocket.TextMessage. Each Write sends
// its bytes as one message of type typ (so with TextMessage each Write must
// be valid UTF-8, or the peer fails the connection with 1007; binary
// suits any bytes); a Write of no bytes sends nothing. Read returns
// the payloads of the received messages one after the other as one stream,
// without their boundaries; empty messages add nothing. A message of the
// other type is not part of the stream: Read fails with an error wrapping
// ErrMessageType and the connection is closed with 1003 (unsupported
// data), since the peer does not speak the same protocol. Each received
// message is held whole in memory until Read has returned all of it, so
// the connection's MaxLength bounds that memory.
//
// Once the peer has closed the connection with 1000 (normal closure), 1001
// (going away) or no status code, Read returns io.EOF; any other close is
// an error, as is a connection that dropped. Close sends a close frame
// with 1000 and returns without waiting for the peer: the closing handshake
// goes on in the background, for at most the connection's CloseTimeout,
// as a TCP socket's does in the kernel (ws.Done tells when it is over, for
// a program that must not exit before). A Close after the peer closed
// returns nil.
//
// The deadlines follow net.Conn: when one passes, blocked and future Reads
// or Writes (whichever it applies to) return an error that satisfies
// errors.Is(err, os.ErrDeadlineExceeded) and whose Timeout method reports
// true, and setting a new deadline, even while an operation waits, makes
// them usable again. A deadline never breaks the connection: a message
// being received when a Read times out is still received, for a later
// Read, and a Write that times out while its message is being sent
// returns len(p) with the timeout error, because its message is committed
// and still goes out whole (like bytes a TCP socket has accepted); the
// next Write waits for it (a Write cut short by Close returns len(p) for
// the same reason). So that this is possible, the WebSocket I/O runs on a
// short-lived goroutine for each message and Write copies p.
//
// ctx bounds the connection's life: when it ends, the WebSocket connection
// is dropped (CloseNow) and Read and Write fail. Pass
// context.Background() for a connection that ends only with Close. Like
// any connection, it must be ended one way or the other: until then, a
// Read that timed out leaves a goroutine waiting for the next message.
//
// As with any net.Conn, one goroutine may Read while another Writes, and
// every method may be called from any goroutine. ws must come from Accept
// or Dial (the blocking API, not Start), and NetConn takes it over: the
// caller must not read from it or write to it afterwards. To close with
// another code than 1000, call ws.Close instead of the net.Conn's Close.
// LocalAddr and RemoteAddr are those of ws's network connection.
func NetConn(ctx context.Context, ws *websocket.Conn, typ websocket.MessageType) net.Conn {
	c := &conn{
		ws:        ws,
		typ:       typ,
		ctx:       ctx,
		closed:    make(chan struct{}),
		readSem:   make(chan struct{}, 1),
		readDone:  make(chan readResult, 1),
		rdl:       newDeadline(),
		writeSem:  make(chan struct{}, 1),
		writeDone: make(chan error, 1),
		wdl:       newDeadline(),
	}
	c.readFn, c.writeFn = c.readMessage, c.writeMessage
	c.stopCtx = context.AfterFunc(ctx, func() { ws.CloseNow() })
	return c
}

// conn is the net.Conn that NetConn returns. Reads and writes each have a
// one-slot semaphore (a channel, so that waiting for it obeys deadlines and
// Close) and at most one WebSocket operation in flight on a goroutine of
// its own, which outlives the call that started it if that call times out.
type conn struct {
	ws      *websocket.Conn
	typ     websocket.MessageType
	ctx     context.Context
	stopCtx func() bool

	closeOnce sync.Once
	closed    chan struct{} // closed by Close

	// Reading; the fields below readSem belong to its holder.
	readSem  chan struct{}
	rdl      *deadline
	readDone chan readResult // the in-flight ReadMessage's result
	reading  bool            // a ReadMessage is in flight
	msg      []byte          // the message being returned by Read
	rpos     int             // how much of msg Read has returned
	rerr     error           // the error that ended the stream
	readFn   func()          // c.readMessage, made once so that go statements do not allocate

	// Writing; the fields below writeSem belong to its holder.
	writeSem  chan struct{}
	wdl       *deadline
	writeDone chan error // the in-flight Write's result
	writing   bool       // a Write is in flight, sending wbuf
	wbuf      []byte
	werr      error  // the error that ended writing
	writeFn   func() // c.writeMessage, made once
}

type readResult struct {
	typ websocket.MessageType
	msg []byte
	err error
}

// acquire takes a semaphore, unless the deadline passes or the conn is
// closed first.
func (c *conn) acquire(op string, sem chan struct{}, expired <-chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-expired:
		return c.opError(op, os.ErrDeadlineExceeded)
	case <-c.closed:
		return c.opError(op, net.ErrClosed)
	}
}

// check reports a closed conn or a passed deadline before an operation.
func (c *conn) check(op string, expired <-chan struct{}) error {
	if isClosed(c.closed) {
		return c.opError(op, net.ErrClosed)
	}
	if isClosed(expired) {
		return c.opError(op, os.ErrDeadlineExceeded)
	}
	return nil
}

// Read reads bytes of the received messages' payloads into p.
func (c *conn) Read(p []byte) (int, error) {
	expired := c.rdl.done()
	if err := c.acquire("read", c.readSem, expired); err != nil {
		return 0, err
	}
	defer func() { <-c.readSem }()
	if err := c.check("read", expired); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.rpos == len(c.msg) {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if !c.reading {
			c.startRead()
		}
		select {
		case r := <-c.readDone:
			c.reading = false
			c.takeMessage(r)
		case <-expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
	n := copy(p, c.msg[c.rpos:])
	c.rpos += n
	return n, nil
}

// startRead starts receiving the next message, into the buffer of the last
// one.
func (c *conn) startRead() {
	if cap(c.msg) > maxKeptReadBuffer {
		c.msg = nil
	}
	c.msg, c.rpos = c.msg[:0], 0
	c.reading = true
	go c.readFn()
}

// readMessage runs on its own goroutine, which owns c.msg until it sends
// its result.
func (c *conn) readMessage() {
	typ, msg, err := c.ws.ReadMessage(c.ctx, c.msg)
	c.readDone <- readResult{typ, msg, err}
}

// takeMessage makes a received message the one Read returns, or records
// why the stream ended.
func (c *conn) takeMessage(r readResult) {
	switch {
	case r.err != nil:
		c.rerr = c.readError(r.err)
	case r.typ != c.typ:
		c.rerr = c.opError("read", fmt.Errorf("%w: got %v, want %v", ErrMessageType, r.typ, c.typ))
		// Closing waits for the peer; Read does not.
		go c.ws.Close(websocket.StatusUnsupportedData, "expected "+c.typ.String()+" messages")
	default:
		c.msg, c.rpos = r.msg, 0
	}
}

// readError translates an error of ReadMessage for Read.
func (c *conn) readError(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusReceived:
		return io.EOF
	}
	if cerr := c.ctx.Err(); cerr != nil {
		err = cerr
	}
	return c.opError("read", err)
}

// Write sends p as one message.
func (c *conn) Write(p []byte) (int, error) {
	expired := c.wdl.done()
	if err := c.acquire("write", c.writeSem, expired); err != nil {
		return 0, err
	}
	defer func() { <-c.writeSem }()
	if err := c.check("write", expired); err != nil {
		return 0, err
	}
	if c.writing {
		// The message of a Write that timed out is still going out.
		select {
		case err := <-c.writeDone:
			c.wrote(err)
		case <-expired:
			return 0, c.opError("write", os.ErrDeadlineExceeded)
		case <-c.closed:
			return 0, c.opError("write", net.ErrClosed)
		}
	}
	if c.werr != nil {
		return 0, c.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	// The message is sent from a copy, since it may go on being sent after
	// Write returns.
	c.wbuf = append(c.wbuf[:0], p...)
	c.writing = true
	go c.writeFn()
	select {
	case err := <-c.writeDone:
		if c.wrote(err) != nil {
			return 0, c.werr
		}
		return len(p), nil
	case <-expired:
		return len(p), c.opError("write", os.ErrDeadlineExceeded)
	case <-c.closed:
		return len(p), c.opError("write", net.ErrClosed)
	}
}

// writeMessage runs on its own goroutine, which owns c.wbuf until it sends
// its result.
func (c *conn) writeMessage() { c.writeDone <- c.ws.Write(c.ctx, c.typ, c.wbuf) }

// wrote takes the result of the in-flight Write.
func (c *conn) wrote(err error) error {
	c.writing = false
	if err != nil && c.werr == nil {
		if cerr := c.ctx.Err(); cerr != nil {
			err = cerr
		} else if errors.Is(err, websocket.ErrClosed) {
			err = net.ErrClosed
		}
		c.werr = c.opError("write", err)
	}
	return err
}

// Close starts the closing handshake with a close frame holding 1000
// (normal closure) and returns; the handshake completes in the background
// (see NetConn). Blocked Reads and Writes return at once with an error
// wrapping net.ErrClosed.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	c.stopCtx()
	c.rdl.stop()
	c.wdl.stop()
	// The handshake waits for the peer's close frame, which comes only when
	// the peer reads: like a TCP socket's FIN, it is not the caller's wait.
	go c.ws.Close(websocket.StatusNormalClosure, "")
	return nil
}

// LocalAddr returns the local address of the WebSocket's network
// connection.
func (c *conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the peer's address of the WebSocket's network
// connection.
func (c *conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read calls, pending ones included.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of Write calls, pending ones
// included.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

// opError wraps err as the net package does, so that net.Conn users find
// Timeout and the usual fields.
func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.ws.LocalAddr(), Addr: c.ws.RemoteAddr(), Err: err}
}
