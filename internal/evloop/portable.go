//go:build !linux || evloop_portable

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a listener and the goroutines of its connections (the
// portable fallback: one goroutine per connection over net.Conn).
type Server struct {
	cfg    Config
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	all    map[*Conn]struct{}
	done   bool
	conns  atomic.Int64
	once   sync.Once
	lnOnce sync.Once
}

// Listen starts a server on addr ("host:port"; port 0 picks one).
func Listen(addr string, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ServeListener(ln, cfg)
}

// ServeListener starts a server on an open listener, which it takes over.
func ServeListener(ln net.Listener, cfg Config) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, ln: ln, all: make(map[*Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// NumConns returns the number of open connections.
func (s *Server) NumConns() int { return int(s.conns.Load()) }

// Close stops accepting, closes every open connection (OnClose gets
// ErrServerClosed) and returns when their goroutines have ended.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.CloseListener()
		s.mu.Lock()
		s.done = true
		for c := range s.all {
			c.fail(ErrServerClosed)
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return err
}

// CloseListener stops accepting connections; those open stay open.
func (s *Server) CloseListener() error {
	var err error
	s.lnOnce.Do(func() { err = s.ln.Close() })
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c := &Conn{s: s, nc: nc, ended: make(chan struct{})}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.all[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.conns.Add(1)
		go c.serve()
	}
}

// Conn is a connection of a Server. Its methods may be called from any
// goroutine, except SetTimeout (the connection's callbacks only).
type Conn struct {
	s     *Server
	nc    net.Conn
	mu    sync.Mutex // serializes writes
	whyMu sync.Mutex
	why   error // the close reason; the first one set wins
	timer *time.Timer
	ctx   any
	ended chan struct{} // closed when a close reason is set

	pauseMu sync.Mutex
	paused  bool
	resume  chan struct{} // closed by ResumeReading while paused
}

// SetContext attaches a value to the connection.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Context returns the value given to SetContext.
func (c *Conn) Context() any { return c.ctx }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// PauseReading stops reading the connection until ResumeReading.
func (c *Conn) PauseReading() {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if !c.paused {
		c.paused = true
		c.resume = make(chan struct{})
	}
}

// ResumeReading undoes PauseReading.
func (c *Conn) ResumeReading() {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if c.paused {
		c.paused = false
		close(c.resume)
	}
}

// waitResumed blocks the connection's goroutine while reading is paused,
// or until the connection is closed.
func (c *Conn) waitResumed() {
	c.pauseMu.Lock()
	ch := c.resume
	paused := c.paused
	c.pauseMu.Unlock()
	if !paused {
		return
	}
	select {
	case <-ch:
	case <-c.ended:
	}
}

// Write sends b, blocking until the kernel took it (the fallback has no
// queue; Config.MaxWriteQueue does not apply).
func (c *Conn) Write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason() != nil {
		return ErrClosed
	}
	if _, err := c.nc.Write(b); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// Writev sends the concatenation of bufs (one write per buffer here).
func (c *Conn) Writev(bufs [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason() != nil {
		return ErrClosed
	}
	v := append(net.Buffers(nil), bufs...) // WriteTo consumes its slice
	if _, err := v.WriteTo(c.nc); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// WaitFlushed returns at once: the fallback's writes block until the
// kernel has taken their bytes.
func (c *Conn) WaitFlushed(time.Time) error { return nil }

// Close closes the connection: our end of the stream is shut, and what
// the peer still sends is dropped until it ends its side too, at most
// Config.CloseTimeout (see the Linux engine's Close). OnClose follows with
// a nil error.
func (c *Conn) Close() error {
	c.mu.Lock() // after any write under way
	defer c.mu.Unlock()
	c.whyMu.Lock()
	defer c.whyMu.Unlock()
	if c.why != nil {
		return nil
	}
	c.why = errLocal
	close(c.ended)
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.CloseTimeout))
		return nil // serve drains the peer's bytes until its end
	}
	c.nc.Close()
	return nil
}

// Abort closes the connection at once; OnClose follows with a nil error.
func (c *Conn) Abort() {
	c.whyMu.Lock()
	if c.why == nil {
		c.why = errLocal
		close(c.ended)
	}
	c.whyMu.Unlock()
	c.nc.Close()
}

// errLocal marks a Close; OnClose gets nil for it.
var errLocal = errors.New("evloop: closed")

func (c *Conn) reason() error {
	c.whyMu.Lock()
	defer c.whyMu.Unlock()
	return c.why
}

// fail records why the connection ends (the first reason wins) and
// closes the socket, which ends its goroutine's read.
func (c *Conn) fail(err error) {
	c.whyMu.Lock()
	defer c.whyMu.Unlock()
	if c.why == nil {
		c.why = err
		close(c.ended)
		c.nc.Close()
	}
}

// SetTimeout closes the connection with ErrTimeout if it is still open d
// from now; d <= 0 cancels. Call it from the connection's callbacks.
func (c *Conn) SetTimeout(d time.Duration) {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if d > 0 {
		c.timer = time.AfterFunc(d, func() { c.fail(ErrTimeout) })
	}
}

func (c *Conn) serve() {
	defer c.s.wg.Done()
	if c.s.cfg.OnOpen != nil {
		c.s.cfg.OnOpen(c)
	}
	buf := make([]byte, c.s.cfg.ReadBufferSize)
	var err error
	for {
		c.waitResumed()
		var n int
		n, err = c.nc.Read(buf)
		if n > 0 && c.reason() == nil {
			c.s.cfg.OnData(c, buf[:n])
		}
		if err != nil {
			break
		}
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.whyMu.Lock()
	if c.why == nil {
		c.why = err
	}
	why := c.why
	c.whyMu.Unlock()
	c.s.mu.Lock()
	delete(c.s.all, c)
	c.s.mu.Unlock()
	c.nc.Close()
	c.s.conns.Add(-1)
	switch {
	case why == errLocal:
		why = nil
	case errors.Is(why, io.EOF):
		why = io.EOF
	case why != nil && !errors.Is(why, ErrTimeout) && !errors.Is(why, ErrServerClosed):
		if ne := (*net.OpError)(nil); errors.As(why, &ne) {
			if se := (*os.SyscallError)(nil); errors.As(ne.Err, &se) {
				why = se
			}
		}
	}
	if c.s.cfg.OnClose != nil {
		c.s.cfg.OnClose(c, why)
	}
}

// setWriteDeadline bounds the blocking writes of the fallback, so that
// NetConn's write deadline (the library's WriteTimeout) frees a sender
// stuck on a peer that does not read.
func (c *Conn) setWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// queued returns 0: the fallback has no write queue.
func (c *Conn) queued() int { return 0 }

// hasWriteQueue is false: Write blocks instead of queueing.
const hasWriteQueue = false
