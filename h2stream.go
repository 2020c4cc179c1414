package websocket

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// WebSockets over HTTP/2 (RFC 8441). The protocol core does not change: a
// connection's frames travel in the DATA frames of one HTTP/2 stream
// instead of on a TCP connection of its own. streamConn presents that
// stream to the core as a net.Conn: what the peer sends is a body (the
// request's on a server, the response's on a client), what we send goes
// to the response writer (server) or to the request body (client), and
// closing the connection ends the stream.

// streamReadSize is the size of a stream's read-ahead buffer, the largest
// piece of a body one Read hands over.
const streamReadSize = 4096

// streamConn is a net.Conn over one HTTP/2 stream, server or client side.
type streamConn struct {
	body          io.ReadCloser // what the peer sends
	local, remote net.Addr

	// Server side: the handler's response writer. It may be used only
	// while the handler runs, and the handler returns only once the
	// connection is done: life is held (read) around every call into w,
	// and Close takes it (write) so that nothing touches w after it.
	w       http.ResponseWriter
	rc      *http.ResponseController
	reqCtx  context.Context // done when the stream is reset or the handler returned
	stopCtx func() bool

	// Client side: the request body's writer, and what ends the request.
	pw     *io.PipeWriter
	cancel context.CancelFunc

	life      sync.RWMutex
	closeOnce sync.Once
	closed    atomic.Bool
	closedCh  chan struct{}
	writeBusy atomic.Bool

	// Reading. A body's Read cannot be interrupted without ending the
	// stream. Reads that nothing interrupts (the event loop's, or blocking
	// reads with a context that cannot end) read the body directly, and a
	// deadline that passes then breaks the stream, which only the closing
	// handshake's last read uses. But a read whose context ends before a
	// message starts must leave the connection intact, so once a read with
	// such a context comes (see interruptibleReads), one goroutine reads
	// the body ahead into buf and hands each piece over on got; consumed
	// gives buf back; Read then waits for a piece or the deadline.
	pumping  atomic.Bool
	timedOut atomic.Bool // a deadline broke a direct read
	pumpOnce sync.Once
	got      chan readPiece
	consumed chan struct{}
	buf      []byte
	off, end int   // the part of buf not yet returned by Read
	rerr     error // the body's error, once seen
	rdl, wdl streamDeadline
}

type readPiece struct {
	n   int
	err error
}

func newStreamConn(body io.ReadCloser) *streamConn {
	s := &streamConn{
		body:     body,
		closedCh: make(chan struct{}),
		got:      make(chan readPiece),
		consumed: make(chan struct{}, 1),
	}
	s.rdl.init(s.readDeadlinePassed)
	s.wdl.init(s.writeDeadlinePassed)
	return s
}

// newServerStream returns the connection over the stream of the extended
// CONNECT request r, answered through w.
func newServerStream(w http.ResponseWriter, rc *http.ResponseController, r *http.Request) *streamConn {
	s := newStreamConn(r.Body)
	s.w, s.rc, s.reqCtx = w, rc, r.Context()
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.local = a
	}
	s.remote = parseAddr(r.RemoteAddr)
	// The stream ends when the client resets it (or the handler returns,
	// which it must not do before the connection is done): no write may
	// touch w after that, and the read pump must stop.
	s.stopCtx = context.AfterFunc(r.Context(), s.shut)
	return s
}

// newClientStream returns the connection over a client's extended CONNECT
// stream: body is the response's, pw writes the request's, and cancel ends
// the request.
func newClientStream(body io.ReadCloser, pw *io.PipeWriter, cancel context.CancelFunc, local, remote net.Addr) *streamConn {
	s := newStreamConn(body)
	s.pw, s.cancel, s.local, s.remote = pw, cancel, local, remote
	return s
}

// shut marks the connection closed and stops the read pump. It never
// touches the response writer.
func (s *streamConn) shut() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closedCh)
		s.body.Close() // safe concurrently with Read for both HTTP/2 bodies
	})
}

// Read returns what the peer sent next on the stream.
func (s *streamConn) Read(p []byte) (int, error) {
	if s.off < s.end {
		return s.take(p), nil
	}
	if s.rerr != nil {
		return 0, s.rerr
	}
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if !s.pumping.Load() {
		n, err := s.body.Read(p)
		if err != nil {
			switch {
			case s.timedOut.Load():
				err = os.ErrDeadlineExceeded
			case s.closed.Load():
				err = net.ErrClosed
			}
			s.rerr = err
		}
		return n, err
	}
	s.pumpOnce.Do(func() {
		s.buf = make([]byte, streamReadSize)
		go s.pump()
	})
	select {
	case piece := <-s.got:
		s.off, s.end = 0, piece.n
		if piece.err != nil {
			s.rerr = piece.err
			if s.closed.Load() {
				s.rerr = net.ErrClosed
			}
		}
		if piece.n == 0 {
			if s.rerr == nil {
				s.consumed <- struct{}{}
			}
			return 0, s.rerr
		}
		return s.take(p), nil
	case <-s.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	case <-s.closedCh:
		return 0, net.ErrClosed
	}
}

// interruptibleReads makes the reads from now on wait through the read-ahead
// goroutine, so that a deadline ends a read without harming the stream.
// Only the reader calls it, between reads (startIO, for a read whose
// context can end).
func (s *streamConn) interruptibleReads() {
	if !s.pumping.Load() {
		s.pumping.Store(true)
	}
}

// readDeadlinePassed breaks a direct read, which nothing else can end.
func (s *streamConn) readDeadlinePassed() {
	if !s.pumping.Load() {
		s.timedOut.Store(true)
		s.body.Close()
	}
}

// take copies read-ahead bytes into p, giving the buffer back to the pump
// once all of it is taken.
func (s *streamConn) take(p []byte) int {
	n := copy(p, s.buf[s.off:s.end])
	s.off += n
	if s.off == s.end && s.rerr == nil {
		s.consumed <- struct{}{}
	}
	return n
}

// pump reads the body ahead, one piece at a time, until it fails or the
// connection is closed.
func (s *streamConn) pump() {
	for {
		n, err := s.body.Read(s.buf)
		select {
		case s.got <- readPiece{n, err}:
		case <-s.closedCh:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-s.consumed:
		case <-s.closedCh:
			return
		}
	}
}

// Write sends p on the stream: in DATA frames flushed at once.
func (s *streamConn) Write(p []byte) (int, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	// writeBusy is set before closed and the deadline are looked at, and
	// Close and the deadline set theirs before looking at writeBusy: one
	// of the two sides sees the other, so a write never blocks unseen.
	s.writeBusy.Store(true)
	defer s.writeBusy.Store(false)
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	select {
	case <-s.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	var n int
	var err error
	if s.pw != nil {
		n, err = s.pw.Write(p)
	} else {
		n, err = s.w.Write(p)
		if err == nil {
			err = s.rc.Flush()
		}
	}
	if err != nil {
		select {
		case <-s.wdl.wait():
			err = os.ErrDeadlineExceeded
		default:
			if s.closed.Load() {
				err = net.ErrClosed
			}
		}
	}
	return n, err
}

// writeDeadlinePassed interrupts a write under way when the write
// deadline passes, unless the connection is closed or closing (Close
// interrupts writes itself, and the handler may have returned since).
func (s *streamConn) writeDeadlinePassed() {
	if !s.life.TryRLock() {
		return
	}
	defer s.life.RUnlock()
	if !s.closed.Load() {
		s.interruptWrite()
	}
}

// interruptWrite ends a write blocked on the stream (HTTP/2 flow control,
// a peer that does not read) when the write deadline passes or the
// connection is closed. Only resetting the stream can do that, so the
// connection is lost, as it is after a write timeout on TCP.
func (s *streamConn) interruptWrite() {
	if !s.writeBusy.Load() {
		return
	}
	if s.pw != nil {
		s.pw.CloseWithError(os.ErrDeadlineExceeded)
		return
	}
	// w is usable only while the handler runs, which the request's
	// context tells; a reset stream fails the write by itself.
	if s.reqCtx.Err() == nil {
		s.rc.SetWriteDeadline(aLongTimeAgo)
	}
}

// CloseWrite ends our half of the stream, for the polite close (see
// Conn.linger). A client sends END_STREAM and goes on reading until the
// server ends the stream, as RFC 6455 wants a client to let the server
// close first. A server cannot end its half before its handler returns,
// which it does once the connection is done: it goes on reading until the
// client's END_STREAM (clients end their half after the closing
// handshake) or the close timeout, as it waits for the client's FIN on
// TCP, so that the stream ends with END_STREAM both ways and no reset.
func (s *streamConn) CloseWrite() error {
	if s.pw != nil {
		return s.pw.Close()
	}
	return nil
}

// Close ends the stream: the client's END_STREAM (or RST_STREAM if the
// server had not ended its half), the server's when its handler returns.
// A server's Close returns only once no call into the response writer is
// under way, so that the handler may return.
func (s *streamConn) Close() error {
	first := !s.closed.Load()
	s.shut()
	s.interruptWrite()
	s.life.Lock() // waits out the writes under way
	s.life.Unlock()
	s.rdl.stop()
	s.wdl.stop()
	if s.pw != nil {
		s.pw.Close()
		s.cancel()
	}
	if s.stopCtx != nil {
		s.stopCtx()
	}
	if !first {
		return net.ErrClosed
	}
	return nil
}

// LocalAddr returns the address of our end of the HTTP/2 connection.
func (s *streamConn) LocalAddr() net.Addr { return s.local }

// RemoteAddr returns the address of the peer's end of the HTTP/2
// connection.
func (s *streamConn) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets both deadlines.
func (s *streamConn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read; a read that times out leaves the stream
// intact once reads go through the read-ahead goroutine, and breaks it
// before (see interruptibleReads).
func (s *streamConn) SetReadDeadline(t time.Time) error { s.rdl.set(t); return nil }

// SetWriteDeadline bounds Write; a write still blocked when it passes
// resets the stream.
func (s *streamConn) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// streamDeadline is a deadline as a channel closed when it passes.
type streamDeadline struct {
	mu       sync.Mutex
	ch       chan struct{}
	expired  bool
	gen      uint64 // tells a stale timer from the current one
	timer    *time.Timer
	onExpire func() // called (without mu) when the deadline passes
}

func (d *streamDeadline) init(onExpire func()) {
	d.ch = make(chan struct{})
	d.onExpire = onExpire
}

func (d *streamDeadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func (d *streamDeadline) set(t time.Time) {
	d.mu.Lock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.expired {
		d.ch, d.expired = make(chan struct{}), false
	}
	if t.IsZero() {
		d.mu.Unlock()
		return
	}
	dur := time.Until(t)
	if dur > 0 {
		gen := d.gen
		d.timer = time.AfterFunc(dur, func() { d.fire(gen) })
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.fire(d.gen)
}

func (d *streamDeadline) fire(gen uint64) {
	d.mu.Lock()
	if gen != d.gen || d.expired {
		d.mu.Unlock()
		return
	}
	d.expired = true
	close(d.ch)
	d.mu.Unlock()
	if d.onExpire != nil {
		d.onExpire()
	}
}

func (d *streamDeadline) stop() {
	d.mu.Lock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
}

// parseAddr turns net/http's Request.RemoteAddr into a net.Addr.
func parseAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return stringAddr(s)
}

// stringAddr is an address net/http gave only as text.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
