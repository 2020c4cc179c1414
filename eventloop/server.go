// Package eventloop is the library's second server backend: it owns its
// listener, parses each HTTP/1.1 request itself and runs every connection
// on a small fixed set of event loops (epoll on Linux), with no goroutine
// and no net/http state per connection. It serves the same http.Handler
// as net/http does, so switching a program to it is one line:
//
//	http.ListenAndServe(addr, handler)      // net/http backend
//	eventloop.ListenAndServe(addr, handler) // event-loop backend
//
// The handler calls websocket.NewServer and Start (the event API) or
// websocket.Accept (the blocking API) exactly as under net/http; the
// handshake policy (origin, subprotocols, compression, Authorize) is the
// same code. Plain requests (a page, a health check) are answered too,
// with a buffered response and "Connection: close".
//
// # Where handlers run
//
// The http.Handler runs on a goroutine of its own for each request, as
// under net/http; with the event API it returns once Start has answered
// the handshake, and the connection then holds no goroutine while idle.
//
// The event API's handlers (OnMessage, OnPing, ...) run, by default, on a
// goroutine that a connection holds only while it has bytes to process:
// when a message arrives, the loop hands the connection's bytes to that
// goroutine and stops reading the connection while it is busy, so a
// handler that blocks (a database call, a slow lock) delays its own
// connection and no other. With Server.HandlersOnLoop the handlers run on
// the event loop itself, which saves the hand-off (the fastest setting)
// but then a handler must never block, since it holds every connection
// of its loop. With the event API sending never blocks on this backend: a
// frame the socket does not take at once is queued, and a send that finds
// more than Server.MaxWriteQueue already queued drops the connection
// (1006) as too slow (one message larger than the bound is accepted when
// nothing waits before it). OnClose runs where the other handlers do.
//
// With the blocking API the handler's goroutine reads and writes as under
// net/http, for as long as the connection lives; a write waits until the
// kernel has taken its bytes, bounded by the library's WriteTimeout.
//
// # Sending
//
// A frame is written at once when the socket takes it. The writes that
// handlers make while their loop is awake (HandlersOnLoop: a broadcast from
// OnMessage, say) are gathered and, at the end of the loop's pass, sent
// with one io_uring submission for many sockets where the kernel offers
// io_uring (Linux 5.6 and later; EVLOOP_IOURING=0 in the environment turns
// it off), and a write system call each elsewhere. Several messages given
// to one WritePrepared call go out with one writev.
//
// # Limits
//
// Only GET is served: any other method, HEAD included, gets 405 with
// "Allow: GET" before the handler runs. The request head is bounded by
// MaxHeaderBytes (431 past it) and must arrive within ReadHeaderTimeout
// (the connection is closed without an answer otherwise, as net/http
// does). A handler that panics before writing gets 500 (net/http closes
// the connection without an answer); one that panics after the upgrade
// has its connection closed (net/http leaves it open). Responses other than the
// WebSocket upgrade are buffered in memory and end the connection; this
// backend is for WebSocket servers that also serve a page or two, not a
// general HTTP server (no request bodies, no streaming, no keep-alive).
// TLS is not handled here: put a TLS-terminating proxy in front, or use
// the net/http backend.
//
// Off Linux (or with the build tag evloop_portable) the engine is a
// portable fallback with a goroutine per connection; there a send waits
// for the kernel to take it, bounded by the library's WriteTimeout,
// instead of being queued, and MaxWriteQueue does not apply.
package eventloop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wsdriver/websocket/internal/evloop"
	"github.com/wsdriver/websocket/internal/upgrade"
)

// Server serves an http.Handler on event loops. Set its fields before
// Listen; a Server serves one listener once.
type Server struct {
	// Handler answers every request. It is required.
	Handler http.Handler

	// Loops is the number of event loops; 0 means GOMAXPROCS.
	Loops int

	// HandlersOnLoop runs the event API's handlers on the event loop
	// instead of a goroutine per busy connection (see the package
	// documentation): faster, but a handler must then never block.
	HandlersOnLoop bool

	// ReadHeaderTimeout bounds the time from accepting a connection to
	// receiving the whole request head; 0 means 10s.
	ReadHeaderTimeout time.Duration

	// MaxHeaderBytes bounds the request head (request line and header
	// lines); a larger one gets 431. 0 means 8 KiB.
	MaxHeaderBytes int

	// MaxWriteQueue bounds the bytes a connection may have queued that its
	// peer has not taken yet; a send past it drops the connection. 0 means
	// 4 MiB.
	MaxWriteQueue int

	// CloseTimeout bounds the end of a connection: sending what is queued,
	// then waiting for the peer to end its side of the TCP stream. 0 means
	// 5s.
	CloseTimeout time.Duration

	// Logger takes the server's warnings (refused requests at debug
	// level, handler panics at error level); nil means slog.Default().
	Logger *slog.Logger

	mu     sync.Mutex
	srv    *evloop.Server // set by start, under mu
	done   chan struct{}  // closed by Close
	closed bool           // Close was called, under mu
	reqs   evloop.Counter // running http.Handler calls
	work   evloop.Counter // goroutines running the event API's handlers
}

// Defaults of Server.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultMaxHeaderBytes    = upgrade.DefaultMaxHeadBytes
)

// ErrServerClosed is returned by ListenAndServe and Serve after Close or
// Shutdown; it is net/http's, so code written for http.Server checks it
// unchanged.
var ErrServerClosed = http.ErrServerClosed

// ErrWriteQueueFull is why a connection was dropped for letting its
// unsent bytes pass MaxWriteQueue (its peer does not read fast enough):
// the write that passed it returns an error wrapping it (errors.Is), as
// does the connection's Err, and the peer sees 1006.
var ErrWriteQueueFull = evloop.ErrWriteQueueFull

// ListenAndServe serves handler on addr with the default settings until
// the process ends or the listener fails; it is http.ListenAndServe's
// counterpart.
func ListenAndServe(addr string, handler http.Handler) error {
	s := &Server{Handler: handler}
	return s.ListenAndServe(addr)
}

// ListenAndServe listens on addr and serves until Close or Shutdown, when
// it returns ErrServerClosed.
func (s *Server) ListenAndServe(addr string) error {
	if err := s.Listen(addr); err != nil {
		return err
	}
	return s.wait()
}

// Serve serves on ln, a TCP listener that the server takes over (its
// socket is duplicated and ln closed), until Close or Shutdown, when it
// returns ErrServerClosed: http.Server.Serve's counterpart, for a listener
// made beforehand (to learn its port, or handed over by systemd).
func (s *Server) Serve(ln net.Listener) error {
	if err := s.Start(ln); err != nil {
		return err
	}
	return s.wait()
}

// Listen opens a listener on addr ("host:port"; port 0 picks one) and
// starts serving without blocking; Addr then reports the address, and
// Close or Shutdown stop it.
func (s *Server) Listen(addr string) error {
	return s.start(func(cfg evloop.Config) (*evloop.Server, error) { return evloop.Listen(addr, cfg) })
}

// Start is Serve without blocking: it takes ln over and starts serving.
func (s *Server) Start(ln net.Listener) error {
	return s.start(func(cfg evloop.Config) (*evloop.Server, error) { return evloop.ServeListener(ln, cfg) })
}

func (s *Server) start(open func(evloop.Config) (*evloop.Server, error)) error {
	if s.Handler == nil {
		return errors.New("eventloop: Server.Handler is nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.srv != nil {
		return errors.New("eventloop: the Server is already serving")
	}
	srv, err := open(evloop.Config{
		Loops:         s.Loops,
		MaxWriteQueue: s.MaxWriteQueue,
		CloseTimeout:  s.CloseTimeout,
		OnOpen:        s.onOpen,
		OnData:        s.onData,
		OnClose:       s.onClose,
	})
	if err != nil {
		return err
	}
	s.srv = srv
	s.done = make(chan struct{})
	return nil
}

// wait blocks until the server is closed.
func (s *Server) wait() error {
	<-s.done
	return ErrServerClosed
}

// Addr returns the listener's address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	if srv := s.engine(); srv != nil {
		return srv.Addr()
	}
	return nil
}

// NumConns returns the number of open TCP connections.
func (s *Server) NumConns() int {
	if srv := s.engine(); srv != nil {
		return srv.NumConns()
	}
	return 0
}

func (s *Server) engine() *evloop.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Close stops listening and drops every connection at once, as
// http.Server.Close does (WebSocket peers see 1006). It returns once the
// event loops have ended and every connection's OnClose has run (on the
// loop, or on the connection's goroutine in the default handler mode,
// which Close waits for at most CloseTimeout). A server closed before it
// started does not start.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	s.awaitWork()
	close(s.done)
	return err
}

// awaitWork waits for the goroutines running the event API's handlers
// (OnClose among them, after Close ended every connection), at most the
// close timeout: a handler that blocks for ever must not hold Close too.
func (s *Server) awaitWork() {
	d := s.CloseTimeout
	if d <= 0 {
		d = evloop.DefaultCloseTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.work.Idle():
	case <-t.C:
		s.log().Warn("eventloop: Close did not wait longer for event handlers still running", "waited", d)
	}
}

// Shutdown stops listening at once, then waits until the handlers still
// running have returned (those of the blocking API last as long as their
// connections) or ctx ends, and then closes what is left as Close does.
// As with http.Server.Shutdown, which does not see hijacked connections,
// an application that wants its WebSocket peers to get a close frame
// (1001, going away) closes them itself before or while it shuts down.
func (s *Server) Shutdown(ctx context.Context) error {
	if srv := s.engine(); srv != nil {
		srv.CloseListener()
	}
	var err error
	select {
	case <-s.reqs.Idle():
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// A connection's context on the engine is its request parser until the
// head is in, then the net.Conn that the handler and the library use.

func (s *Server) onOpen(c *evloop.Conn) {
	c.SetContext(&upgrade.Parser{Limits: upgrade.Limits{MaxHeadBytes: s.MaxHeaderBytes}})
	d := s.ReadHeaderTimeout
	if d <= 0 {
		d = DefaultReadHeaderTimeout
	}
	c.SetTimeout(d)
}

func (s *Server) onData(c *evloop.Conn, b []byte) {
	var parser *upgrade.Parser
	switch x := c.Context().(type) {
	case *evloop.NetConn:
		x.Deliver(b)
		return
	case *upgrade.Parser:
		parser = x
	default:
		return // a request is being answered: what follows it is dropped
	}
	n, done, err := parser.Feed(b)
	var e *upgrade.Error
	switch {
	case errors.As(err, &e):
		s.log().Debug("eventloop: refused a request", "remote", c.RemoteAddr(), "status", e.Status, "reason", e.Reason)
		c.Write(e.AppendResponse(nil))
		c.Close()
	case err != nil:
		c.Close()
	case done:
		c.SetTimeout(0)
		nc := evloop.NewNetConn(c, b[n:])
		nc.Inline = s.HandlersOnLoop
		nc.Work = &s.work
		ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
		r := parser.Request(ctx, nc.RemoteAddr().String())
		c.SetContext(nc)
		s.reqs.Add()
		go s.serveRequest(nc, r)
	}
}

func (s *Server) onClose(c *evloop.Conn, err error) {
	if nc, _ := c.Context().(*evloop.NetConn); nc != nil {
		nc.Hangup(err)
	}
	c.SetContext(nil)
}
