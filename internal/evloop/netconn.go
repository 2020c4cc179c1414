package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// NetConn presents a Conn as a net.Conn, for the code above the engine
// that is written against one: the library's opening handshake (which
// hijacks a net.Conn and writes the 101 response on it) and its blocking
// API (a goroutine that reads until a message is complete). The backend
// gives it the connection's bytes with Deliver and its end with Hangup.
//
// A connection served by the event API does not read through it: TakeOver
// routes the bytes from the loop straight to the protocol session, and the
// NetConn then only writes and closes.
//
// Reads block until bytes arrive (bounded by the read deadline). The bytes
// the loop delivers wait in a buffer; past maxBuffered the connection
// stops reading (PauseReading) until the reader has taken them, so a slow
// reader pushes back on its peer through TCP instead of growing memory.
//
// Writes go to the engine, which writes at once or queues (bounded by
// Config.MaxWriteQueue, past which the connection fails). Until TakeOver a
// Write then waits for its bytes to be sent, bounded by the write
// deadline, as a socket's does; after it, Write never waits (see Write).
// The portable fallback has no queue: its writes block.
type NetConn struct {
	c *Conn

	// Inline tells the event API that its handlers run on the loop,
	// which the backend's configuration decides.
	Inline bool

	// Work, when set, counts the goroutines that the code above starts
	// for this connection's handlers, so that the server can wait for
	// them when it closes.
	Work *Counter

	mu     sync.Mutex
	direct bool       // TakeOver is done: Deliver calls sink
	sink   Sink       // set by TakeOver
	r      *netReader // the reading side, until TakeOver lets it go
}

// netReader is the reading side of a NetConn. A connection served by the
// event API drops it once TakeOver has drained it, so an idle one does not
// carry it.
type netReader struct {
	in     []byte // delivered and not yet read
	off    int    // in[off:] is unread
	paused bool   // reading is paused until in is drained
	ended  error  // the connection has gone: what Read reports once in is empty
	closed bool   // Close was called
	rdl    time.Time
	wdl    time.Time     // bounds Write's wait for its bytes to be sent
	wake   chan struct{} // a blocked Read is told to look again; made by the first Read that waits
}

// Sink takes a connection's bytes and its end once TakeOver has routed
// them away from Read.
type Sink interface {
	// Data takes bytes read from the connection; they are valid only
	// during the call.
	Data(b []byte)
	// End takes the end of the connection: Hangup's error.
	End(err error)
}

// maxBuffered is how many delivered bytes may wait for a reader before the
// connection stops reading.
const maxBuffered = 64 << 10

// NewNetConn returns a NetConn for c; buffered holds bytes already
// received (those that followed the request's head).
func NewNetConn(c *Conn, buffered []byte) *NetConn {
	n := &NetConn{c: c, r: new(netReader)}
	if len(buffered) > 0 {
		n.r.in = append([]byte(nil), buffered...)
	}
	return n
}

// Conn returns the engine's connection.
func (n *NetConn) Conn() *Conn { return n.c }

// Deliver hands bytes read from the connection to its reader; the backend
// calls it from OnData. b is not kept.
func (n *NetConn) Deliver(b []byte) {
	n.mu.Lock()
	if n.direct {
		s := n.sink
		n.mu.Unlock()
		s.Data(b)
		return
	}
	r := n.r
	if r.closed {
		n.mu.Unlock()
		return
	}
	r.in = append(r.in, b...)
	if len(r.in)-r.off >= maxBuffered && !r.paused {
		r.paused = true
		n.c.PauseReading()
	}
	r.signal()
	n.mu.Unlock()
}

// Hangup tells the reader that the connection has ended; the backend calls
// it from OnClose. err is OnClose's: nil after a local Close.
func (n *NetConn) Hangup(err error) {
	if err == nil {
		err = net.ErrClosed
	}
	n.mu.Lock()
	if n.direct {
		s := n.sink
		n.mu.Unlock()
		s.End(err)
		return
	}
	n.r.ended = err
	n.r.signal()
	n.mu.Unlock()
}

// TakeOver routes the connection's bytes, and its end, to s instead of
// Read, which then fails. The bytes delivered so far are given to s
// first, on the calling goroutine; then every later call comes from the
// loop (or from Hangup). The calls never overlap. If the connection has
// already ended, s.End is called before TakeOver returns.
func (n *NetConn) TakeOver(s Sink) {
	for {
		n.mu.Lock()
		r := n.r
		if r.off < len(r.in) {
			chunk := r.in[r.off:]
			r.in, r.off = nil, 0
			n.mu.Unlock()
			s.Data(chunk)
			continue
		}
		n.r = nil // an idle connection carries no reading side
		n.sink, n.direct = s, true
		n.mu.Unlock()
		if r.paused {
			n.c.ResumeReading()
		}
		if r.ended != nil {
			s.End(r.ended)
		}
		return
	}
}

// errTakenOver is what Read returns once TakeOver has routed the bytes
// elsewhere.
var errTakenOver = errors.New("evloop: the connection's bytes go to its event handlers, not to Read")

// signal tells a waiting Read to look again; the NetConn's lock is held.
func (r *netReader) signal() {
	select {
	case r.wake <- struct{}{}: // a nil channel (no Read waited yet) is never ready
	default:
	}
}

// Read reads delivered bytes, waiting for some until the read deadline.
func (n *NetConn) Read(p []byte) (int, error) {
	for {
		n.mu.Lock()
		r := n.r
		if r == nil {
			n.mu.Unlock()
			return 0, errTakenOver
		}
		if r.closed {
			n.mu.Unlock()
			return 0, net.ErrClosed
		}
		if r.off < len(r.in) {
			k := copy(p, r.in[r.off:])
			r.off += k
			if r.off == len(r.in) {
				// Drained: an idle reader keeps no buffer.
				r.in, r.off = nil, 0
			}
			resume := r.paused && r.off == 0
			if resume {
				r.paused = false
			}
			n.mu.Unlock()
			if resume {
				n.c.ResumeReading()
			}
			return k, nil
		}
		if r.ended != nil {
			err := r.ended
			n.mu.Unlock()
			return 0, err
		}
		dl := r.rdl
		if r.wake == nil {
			r.wake = make(chan struct{}, 1)
		}
		wake := r.wake
		n.mu.Unlock()
		if dl.IsZero() {
			<-wake
			continue
		}
		d := time.Until(dl)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Write sends b (see the type's comment: it does not block).
//
// Until TakeOver (the handshake, and the blocking API for good) Write also
// waits, as a socket's write does, until the bytes are handed to the
// kernel or the write deadline passes (os.ErrDeadlineExceeded): a writer
// that may block gets backpressure and its write timeout, instead of
// growing the queue. After TakeOver it never waits: the event API's
// handlers may run on the loop.
func (n *NetConn) Write(b []byte) (int, error) {
	if err := n.c.Write(b); err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, net.ErrClosed
		}
		return 0, err
	}
	n.mu.Lock()
	r := n.r
	var wdl time.Time
	if r != nil {
		wdl = r.wdl
	}
	n.mu.Unlock()
	if r != nil {
		if err := n.c.WaitFlushed(wdl); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// WriteBuffers sends the concatenation of bufs, with one writev where the
// engine has it; bufs is not kept or changed.
func (n *NetConn) WriteBuffers(bufs [][]byte) error {
	if err := n.c.Writev(bufs); err != nil {
		if errors.Is(err, ErrClosed) {
			return net.ErrClosed
		}
		return err
	}
	return nil
}

// Close closes the connection gracefully (see Conn.Close); a blocked Read
// returns net.ErrClosed.
func (n *NetConn) Close() error {
	n.mu.Lock()
	if r := n.r; r != nil {
		r.closed = true
		r.in, r.off = nil, 0
		r.signal()
	}
	n.mu.Unlock()
	return n.c.Close()
}

// Abort closes the connection at once (see Conn.Abort); a blocked Read
// returns net.ErrClosed.
func (n *NetConn) Abort() {
	n.mu.Lock()
	if r := n.r; r != nil {
		r.closed = true
		r.in, r.off = nil, 0
		r.signal()
	}
	n.mu.Unlock()
	n.c.Abort()
}

// CloseWrite ends our side of the stream, as TCPConn.CloseWrite does; the
// engine then reads and drops the peer's bytes until it ends its side,
// and Read reports the end.
func (n *NetConn) CloseWrite() error { return n.c.Close() }

// LocalAddr returns the local address. It is asked of the kernel at each
// call rather than kept: an idle connection carries as little as it can.
func (n *NetConn) LocalAddr() net.Addr { return addrOrNone(n.c.LocalAddr()) }

// RemoteAddr returns the peer's address, asked of the kernel at each call.
func (n *NetConn) RemoteAddr() net.Addr { return addrOrNone(n.c.RemoteAddr()) }

// addrOrNone keeps a closed connection's addresses non-nil, as net.Conn's
// are.
func addrOrNone(a net.Addr) net.Addr {
	if a == nil {
		return &net.TCPAddr{}
	}
	return a
}

// SetDeadline sets the read and write deadlines.
func (n *NetConn) SetDeadline(t time.Time) error {
	n.SetWriteDeadline(t)
	return n.SetReadDeadline(t)
}

// SetReadDeadline bounds Read, including one already blocked.
func (n *NetConn) SetReadDeadline(t time.Time) error {
	n.mu.Lock()
	if r := n.r; r != nil {
		r.rdl = t
		r.signal()
	}
	n.mu.Unlock()
	return nil
}

// SetWriteDeadline bounds Write's wait for its bytes to be sent (until
// TakeOver), and, with the portable fallback, its blocking write.
func (n *NetConn) SetWriteDeadline(t time.Time) error {
	n.mu.Lock()
	if r := n.r; r != nil {
		r.wdl = t
	}
	n.mu.Unlock()
	return n.c.setWriteDeadline(t)
}

var (
	_ net.Conn  = (*NetConn)(nil)
	_ io.Reader = (*NetConn)(nil)
)
