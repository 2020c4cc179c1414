package websocket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MessageType is the type of a data message: text (UTF-8) or binary.
type MessageType uint8

// The two kinds of data message (RFC 6455 §5.6). The values are the frame
// opcodes.
const (
	TextMessage   MessageType = 1
	BinaryMessage MessageType = 2
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case TextMessage:
		return "text"
	case BinaryMessage:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// ReadyState is where a connection is in its life, as in websocket-driver's
// ready-state and the browser's WebSocket.readyState.
type ReadyState int32

// The connection states, in the order a connection goes through them.
const (
	Connecting ReadyState = iota // created, handshake not done
	Open                         // handshake done, messages flow
	Closing                      // a close frame was sent or received
	Closed                       // the TCP connection is closed
)

// String returns the state as websocket-driver names it: "connecting", "open",
// "closing" or "closed".
func (s ReadyState) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Closing:
		return "closing"
	case Closed:
		return "closed"
	}
	return "ReadyState(?)"
}

// DefaultMaxLength is the default limit on the size of a received message,
// websocket-driver's #x3ffffff bytes (64 MiB - 1).
const DefaultMaxLength = 0x3ffffff

// DefaultCloseTimeout bounds the closing handshake: how long a connection
// waits for the peer's close frame (and, on a client, for the server to
// close TCP) before it drops the TCP connection.
const DefaultCloseTimeout = 5 * time.Second

// readBufferSize is the size of a read buffer that a connection owns (TLS,
// pipes). Payloads larger than its free space are read straight into the
// caller's buffer.
const readBufferSize = 4096

// pooledReadBufferSize is the size of the pooled read buffers of idle
// readers (readbuf.go). They are held only while bytes are being parsed, so
// they can be larger: one read then brings a whole 8 KiB message, where a
// 4 KiB buffer takes two system calls.
const pooledReadBufferSize = 16384

// aLongTimeAgo is a deadline in the past, used to interrupt a blocked read or
// write when a context ends.
var aLongTimeAgo = time.Unix(1, 0)

// Conn is a WebSocket connection, server or client side. It offers the
// websocket-driver's event API (On..., Start, Send...) and a blocking API (Read,
// ReadMessage, NextReader, Write, NextWriter) over one protocol core; use
// one style per connection. See the package documentation for which methods
// may run concurrently.
type Conn struct {
	// Handshake inputs, kept from NewServer/NewClient until the handshake
	// and dropped then, so that an open connection does not carry them.
	hs *handshakeInputs

	closeTimeout time.Duration
	subprotocol  string
	pmd          *deflateConn // permessage-deflate state; nil when not negotiated
	logger       *slog.Logger // the options' Logger; nil means slog.Default()

	// netConn is written once, by opened, before the compare-and-swap that
	// moves state from Connecting to Open publishes it: read it only after
	// seeing a state other than Connecting (and, once Closed, only if
	// hadOpened says the connection did open).
	netConn   net.Conn
	state     atomic.Int32
	hadOpened bool // set by finish before Done fires
	client    bool
	borrow    bool // the options' BorrowMessageData

	// Reading: one reader at a time holds readSem.
	readSem  semaphore
	sess     session                  // the protocol core: bytes in, events out
	rd       *pullReader              // the reader's buffer, on every transport that the Conn reads itself (set by opened)
	eventing atomic.Bool              // Start was called: its read loop owns the read side
	poll     atomic.Pointer[pollLink] // the event loop's registration with the poller (poll.go), if any
	loop     *loopLink                // set on the event-loop backend's event API (loopconn.go)

	// Writing: one data message at a time holds msgSem; frameMu keeps frames
	// whole on the wire so that control frames can go between fragments.
	msgSem      semaphore
	frameMu     sync.Mutex
	batching    atomic.Bool    // frames go to bat (see sendLocked); set and cleared under frameMu
	writeFailed bool           // a write failed and cut the stream: writes report ErrClosed; under frameMu
	bat         *writeBatch    // under frameMu
	msgWrite    *MessageWriter // NextWriter's, made on first use

	// Closing.
	closeMu    sync.Mutex
	closeSent  bool
	closeRecv  bool
	finished   bool // finish has closed done, or doneChan will make it closed
	closeTimer *time.Timer
	closeErr   error        // what reads return once the connection is done
	done       atomic.Value // chan struct{} that finish closes, made by doneChan on first use
	doneOnce   sync.Once

	events    eventHandlers
	pendingMu sync.Mutex
	pending   []pendingSend // sends made while connecting
	flushed   atomic.Bool   // set under pendingMu

	// Bounds on writes (write.go) and keepalive (keepalive.go).
	writeTimeout time.Duration             // <0: none
	wdl          time.Duration             // the write deadline armed last, since monoEpoch; 0 if none; under frameMu
	ka           atomic.Pointer[keepalive] // made by the options' PingInterval or the first Ping
}

// handshakeInputs is what NewServer and NewClient keep for the handshake.
type handshakeInputs struct {
	w         http.ResponseWriter // server
	r         *http.Request
	serverOpt ServerOptions
	url       string // client
	clientOpt ClientOptions
}

func newConn(client bool, maxLength int64, closeTimeout time.Duration) *Conn {
	if maxLength == 0 {
		maxLength = DefaultMaxLength
	}
	if closeTimeout <= 0 {
		closeTimeout = DefaultCloseTimeout
	}
	c := &Conn{
		client:       client,
		closeTimeout: closeTimeout,
		writeTimeout: DefaultWriteTimeout,
	}
	c.sess.init(client, maxLength)
	return c
}

// opened attaches the network connection once the handshake succeeded.
// buffered holds bytes that arrived after the handshake and were already
// read from the network. The move from Connecting to Open is one
// compare-and-swap, which publishes netConn: if Close (or CloseNow) ended
// the connection while the handshake was under way, nc is closed and the
// error is the one the connection ended with.
func (c *Conn) opened(nc net.Conn, buffered []byte) error {
	c.netConn = nc
	c.setupReadBuffer(nc, buffered)
	if !c.state.CompareAndSwap(int32(Connecting), int32(Open)) {
		c.releaseReadBuf()
		c.releaseDeflate()
		nc.Close()
		<-c.doneChan() // finish, which moved the state, has set the error
		if c.closeErr == nil {
			return ErrClosed
		}
		return fmt.Errorf("%w during the opening handshake: %w", ErrClosed, c.closeErr)
	}
	c.startKeepalive()
	return nil
}

// openNetConn returns the network connection, or nil if the connection
// never opened. Unlike the reading and writing paths, which run only once
// the connection is open, it may be called at any time from any goroutine.
func (c *Conn) openNetConn() net.Conn {
	switch c.ReadyState() {
	case Connecting:
		return nil
	case Closed:
		<-c.doneChan() // finish is under way; it records whether we had opened
		if !c.hadOpened {
			return nil
		}
	}
	return c.netConn
}

// Version returns the protocol version in use, "hybi-13" (RFC 6455), as the
// websocket-driver's version does.
func (c *Conn) Version() string { return "hybi-13" }

// Protocol returns the subprotocol agreed in the handshake, or "".
func (c *Conn) Protocol() string { return c.subprotocol }

// ReadyState returns the connection's current state.
func (c *Conn) ReadyState() ReadyState { return ReadyState(c.state.Load()) }

// RemoteAddr returns the peer's network address, or nil before the
// handshake.
func (c *Conn) RemoteAddr() net.Addr {
	nc := c.openNetConn()
	if nc == nil {
		return nil
	}
	return nc.RemoteAddr()
}

// LocalAddr returns the local network address, or nil before the handshake.
func (c *Conn) LocalAddr() net.Addr {
	nc := c.openNetConn()
	if nc == nil {
		return nil
	}
	return nc.LocalAddr()
}

// Done returns a channel that is closed when the connection is closed:
// the closing handshake is over (or was abandoned) and the TCP connection is
// closed.
func (c *Conn) Done() <-chan struct{} { return c.doneChan() }

// doneChan returns the channel that finish closes. It is made on first use:
// most connections end without anyone waiting on it, and a channel costs
// 96 bytes for the connection's whole life.
func (c *Conn) doneChan() chan struct{} {
	if v := c.done.Load(); v != nil {
		return v.(chan struct{})
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if v := c.done.Load(); v != nil {
		return v.(chan struct{})
	}
	ch := make(chan struct{})
	if c.finished {
		close(ch)
	}
	c.done.Store(ch)
	return ch
}

// Err returns why the connection ended (a *CloseError or *ProtocolError, or
// a transport error), or nil while it is still open.
func (c *Conn) Err() error {
	select {
	case <-c.doneChan():
		return c.closeErr
	default:
		return nil
	}
}

// finish ends the connection: the TCP connection is closed and Done fires.
// The first call decides the error that reads report from then on.
func (c *Conn) finish(err error) {
	c.doneOnce.Do(func() {
		c.closeErr = err
		// One swap against opened's compare-and-swap: a connection still
		// connecting never opens now (opened closes its socket), and one
		// that opened has published netConn. The handshake's goroutine
		// owns the compression state until then.
		wasOpen := ReadyState(c.state.Swap(int32(Closed))) != Connecting
		if wasOpen {
			c.hadOpened = true
			c.closeSocket()
		}
		c.closeMu.Lock()
		if c.closeTimer != nil {
			c.closeTimer.Stop()
		}
		c.closeMu.Unlock()
		c.stopKeepalive()
		if wasOpen {
			c.releaseDeflate()
		}
		c.closeMu.Lock()
		c.finished = true
		if v := c.done.Load(); v != nil {
			close(v.(chan struct{}))
		}
		c.closeMu.Unlock()
		if c.polled() {
			c.wakeLoop() // a parked event loop must run to report the close
		}
	})
}

// closeSocket closes the network connection, first taking it out of the
// poller so that its descriptor cannot be reused while still registered.
func (c *Conn) closeSocket() {
	c.detachPoller()
	if nc := loopNetConn(c.netConn); nc != nil && CloseStatus(c.closeErr) == StatusAbnormalClosure {
		// The connection failed (no closing handshake): the event loop
		// drops it at once rather than wait for the peer's end of TCP, so
		// that OnClose, which the loop reports, is not held back.
		nc.Abort()
		return
	}
	c.netConn.Close()
}

// linger shuts the TCP connection down politely before finish: our side
// sends FIN, then the peer's remaining bytes are read and dropped until it
// closes too (or the close timeout passes). Closing with unread bytes would
// make the kernel send RST, and a peer may then lose the close frame we just
// sent. Only the reader may call it.
func (c *Conn) linger() {
	if c.loop != nil {
		return // the engine's graceful close does it, without a reader (loopconn.go)
	}
	if cw, ok := c.netConn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.netConn.SetReadDeadline(time.Now().Add(c.closeTimeout))
	var scratch [512]byte
	for {
		if _, err := c.netConn.Read(scratch[:]); err != nil {
			return
		}
	}
}

// deadlineKind says which deadline of the network connection an I/O guard
// drives.
type deadlineKind uint8

const (
	readDeadline deadlineKind = iota
	writeDeadline
	bothDeadlines
)

// startIO arms one of nc's deadlines with ctx: the context's deadline
// becomes the connection's, and when ctx is cancelled the deadline moves to
// the past so that a blocked call returns. The guard it returns must be
// ended with end. A context that can never end costs nothing, not even an
// allocation.
func startIO(ctx context.Context, nc net.Conn, kind deadlineKind) (*ioGuard, error) {
	if ctx.Done() == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s, ok := nc.(*streamConn); ok && kind != writeDeadline {
		s.interruptibleReads() // an HTTP/2 stream's reads need it to survive a deadline (h2stream.go)
	}
	setDeadline := nc.SetReadDeadline
	switch kind {
	case writeDeadline:
		setDeadline = nc.SetWriteDeadline
	case bothDeadlines:
		setDeadline = nc.SetDeadline
	}
	g := &ioGuard{ctx: ctx, set: setDeadline, fired: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		setDeadline(dl)
	}
	g.stop = context.AfterFunc(ctx, func() {
		setDeadline(aLongTimeAgo)
		close(g.fired)
	})
	return g, nil
}

type ioGuard struct {
	ctx   context.Context
	set   func(time.Time) error
	stop  func() bool
	fired chan struct{}
}

// end disarms the guard and translates err: a timeout caused by the
// context becomes the context's error.
func (g *ioGuard) end(err error) error {
	if g == nil {
		return err
	}
	if !g.stop() {
		<-g.fired // the deadline was moved; wait so the reset below wins
	}
	g.set(time.Time{})
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if cerr := g.ctx.Err(); cerr != nil {
		return cerr
	}
	// The connection's deadline and the context's timer expire together;
	// the timer may not have marked the context yet.
	if dl, ok := g.ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}

// acquire takes a one-slot semaphore, giving up when ctx ends or the
// connection is done.
func (c *Conn) acquire(ctx context.Context, sem *semaphore) error {
	for !sem.tryAcquire() {
		w := sem.waitChan()
		if w == nil {
			return nil
		}
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.doneChan():
			return c.doneErr()
		}
	}
	return nil
}

// doneErr is the error for an operation on a finished connection.
func (c *Conn) doneErr() error {
	if c.closeErr != nil {
		return c.closeErr
	}
	return ErrClosed
}
