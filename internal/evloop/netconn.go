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
// Writes never block on the epoll engine: it writes at once or queues,
// bounded by Config.MaxWriteQueue, past which the connection fails; write
// deadlines have nothing to bound there. The portable fallback has no
// queue: its writes block, bounded by the write deadline.
type NetConn struct {
	c *Conn

	// Inline tells the event API that its handlers run on the loop,
	// which the backend's configuration decides.
	Inline bool

	local, remote net.Addr // asked of the kernel once

	mu     sync.Mutex
	in     []byte // delivered and not yet read
	off    int    // in[off:] is unread
	paused bool   // reading is paused until in is drained
	ended  error  // the connection has gone: what Read reports once in is empty
	closed bool   // Close was called
	rdl    time.Time
	wake   chan struct{} // a blocked Read is told to look again

	direct bool // TakeOver is done: Deliver calls onData
	onData func([]byte)
	onEnd  func(error)
}

// maxBuffered is how many delivered bytes may wait for a reader before the
// connection stops reading.
const maxBuffered = 64 << 10

// NewNetConn returns a NetConn for c; buffered holds bytes already
// received (those that followed the request's head).
func NewNetConn(c *Conn, buffered []byte) *NetConn {
	n := &NetConn{c: c, wake: make(chan struct{}, 1)}
	n.local, n.remote = addrOrNone(c.LocalAddr()), addrOrNone(c.RemoteAddr())
	if len(buffered) > 0 {
		n.in = append([]byte(nil), buffered...)
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
		fn := n.onData
		n.mu.Unlock()
		fn(b)
		return
	}
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.in = append(n.in, b...)
	if len(n.in)-n.off >= maxBuffered && !n.paused {
		n.paused = true
		n.c.PauseReading()
	}
	n.mu.Unlock()
	n.signal()
}

// Hangup tells the reader that the connection has ended; the backend calls
// it from OnClose. err is OnClose's: nil after a local Close.
func (n *NetConn) Hangup(err error) {
	if err == nil {
		err = net.ErrClosed
	}
	n.mu.Lock()
	n.ended = err
	if n.direct {
		fn := n.onEnd
		n.mu.Unlock()
		fn(err)
		return
	}
	n.mu.Unlock()
	n.signal()
}

// TakeOver routes the connection's bytes to onData, and its end to onEnd,
// instead of Read. The bytes delivered so far are given to onData first,
// on the calling goroutine; then every later call comes from the loop (or
// from Hangup). The calls never overlap. If the connection has already
// ended, onEnd is called before TakeOver returns.
func (n *NetConn) TakeOver(onData func([]byte), onEnd func(error)) {
	for {
		n.mu.Lock()
		if n.off < len(n.in) {
			chunk := n.in[n.off:]
			n.in, n.off = nil, 0
			n.mu.Unlock()
			onData(chunk)
			continue
		}
		n.in, n.off = nil, 0
		n.onData, n.onEnd, n.direct = onData, onEnd, true
		paused := n.paused
		n.paused = false
		ended := n.ended
		n.mu.Unlock()
		if paused {
			n.c.ResumeReading()
		}
		if ended != nil {
			onEnd(ended)
		}
		return
	}
}

func (n *NetConn) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Read reads delivered bytes, waiting for some until the read deadline.
func (n *NetConn) Read(p []byte) (int, error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return 0, net.ErrClosed
		}
		if n.off < len(n.in) {
			k := copy(p, n.in[n.off:])
			n.off += k
			if n.off == len(n.in) {
				// Drained: an idle reader keeps no buffer.
				n.in, n.off = nil, 0
			}
			resume := n.paused && n.off == 0
			if resume {
				n.paused = false
			}
			n.mu.Unlock()
			if resume {
				n.c.ResumeReading()
			}
			return k, nil
		}
		if n.ended != nil {
			err := n.ended
			n.mu.Unlock()
			return 0, err
		}
		dl := n.rdl
		n.mu.Unlock()
		if dl.IsZero() {
			<-n.wake
			continue
		}
		d := time.Until(dl)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		select {
		case <-n.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Write sends b (see the type's comment: it does not block).
func (n *NetConn) Write(b []byte) (int, error) {
	if err := n.c.Write(b); err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, net.ErrClosed
		}
		return 0, err
	}
	return len(b), nil
}

// Close closes the connection gracefully (see Conn.Close); a blocked Read
// returns net.ErrClosed.
func (n *NetConn) Close() error {
	n.mu.Lock()
	n.closed = true
	n.in, n.off = nil, 0
	n.mu.Unlock()
	n.signal()
	return n.c.Close()
}

// CloseWrite ends our side of the stream, as TCPConn.CloseWrite does; the
// engine then reads and drops the peer's bytes until it ends its side,
// and Read reports the end.
func (n *NetConn) CloseWrite() error { return n.c.Close() }

// LocalAddr returns the local address.
func (n *NetConn) LocalAddr() net.Addr { return n.local }

// RemoteAddr returns the peer's address.
func (n *NetConn) RemoteAddr() net.Addr { return n.remote }

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
	n.rdl = t
	n.mu.Unlock()
	n.signal()
	return nil
}

// SetWriteDeadline bounds writes where they can block: with the portable
// fallback, whose writes wait for the kernel. The epoll engine's writes
// never block, and there it does nothing.
func (n *NetConn) SetWriteDeadline(t time.Time) error { return n.c.setWriteDeadline(t) }

var (
	_ net.Conn  = (*NetConn)(nil)
	_ io.Reader = (*NetConn)(nil)
)
