// Command wsecho is the seed's echo server: every message a client sends
// comes back unchanged, with its type (text stays text, binary stays
// binary). It is what conformance suites and interop tests are pointed at,
// and, with -api, how the library's two APIs are run and measured as one
// program: -api event serves with NewServer, OnMessage and Start; -api
// blocking (the default) with Accept and a ReadMessage/Write loop.
//
//	wsecho -addr 127.0.0.1:9001 -max-length 16777216 -protocols chat,echo -header 'X-Server: wsecho'
//	wsecho -api event -compress
//
// -backend picks the server under the handler: http (net/http, the
// default) or eventloop (package eventloop: a few event loops, no
// goroutine per idle connection), where -handlers-on-loop runs the event
// API's handlers on the loop itself:
//
//	wsecho -backend eventloop -api event -handlers-on-loop
//
// Every flag can also be set through the environment variable named in
// -help. It echoes on every path and, being a test tool, accepts every
// origin unless -check-origin is given. Its HTTP server closes keep-alive
// connections idle for -idle-timeout, bounds the time to send request
// headers (-read-header-timeout) and their size (-max-header-bytes): a
// WebSocket handshake is small, and a server left running must not keep
// every idle socket a client opened. The event-loop backend has no
// keep-alive (it closes a connection after a plain response), so
// -idle-timeout does not apply to it and is refused there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
	"github.com/wsdriver/websocket/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wsecho:", err)
		os.Exit(2)
	}
}

type config struct {
	addr              string
	api               apiStyle
	backend           backendKind
	handlersOnLoop    bool
	maxLength         int64
	protocols         cli.List
	headers           cli.Headers
	checkOrigin       bool
	compress          cli.Compression
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
}

// apiStyle is the -api flag: which of the library's APIs serves.
type apiStyle string

const (
	apiBlocking apiStyle = "blocking"
	apiEvent    apiStyle = "event"
)

func (a *apiStyle) String() string { return string(*a) }

// Set refuses anything but the two styles, saying what they are.
func (a *apiStyle) Set(s string) error {
	switch apiStyle(s) {
	case apiBlocking, apiEvent:
		*a = apiStyle(s)
		return nil
	}
	return fmt.Errorf("-api must be %q (Accept, ReadMessage, Write) or %q (NewServer, OnMessage, Start)", apiBlocking, apiEvent)
}

// backendKind is the -backend flag: which server runs the handler.
type backendKind string

const (
	backendHTTP      backendKind = "http"
	backendEventLoop backendKind = "eventloop"
)

func (b *backendKind) String() string { return string(*b) }

// Set refuses anything but the two backends, saying what they are.
func (b *backendKind) Set(s string) error {
	switch backendKind(s) {
	case backendHTTP, backendEventLoop:
		*b = backendKind(s)
		return nil
	}
	return fmt.Errorf("-backend must be %q (net/http) or %q (package eventloop)", backendHTTP, backendEventLoop)
}

const usageText = `Usage: wsecho [flags]

The seed's echo server: every message a client sends on any path comes
back unchanged, with its type. Every flag can also be set by the
environment variable named with it; a flag on the command line wins.

Flags:
`

const examplesText = `
Examples:
  wsecho -addr 127.0.0.1:9001 -protocols chat,echo -header 'X-Server: wsecho'
      blocking API, two subprotocols, an extra response header
  WSECHO_API=event wsecho -compress -max-length 1048576
      event API with permessage-deflate, messages up to 1 MiB
  wsecho -backend eventloop -api event -handlers-on-loop
      the event-loop backend, the event API's handlers on its loops
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	env := newFlags(cfg, stderr)
	fs := env.FlagSet
	if err := env.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: wsecho takes only flags (see -help)", fs.Arg(0))
	}
	if cfg.maxLength == 0 {
		return nil, errors.New("-max-length must be positive, or -1 for no limit")
	}
	if cfg.readHeaderTimeout <= 0 || cfg.idleTimeout <= 0 || cfg.maxHeaderBytes <= 0 {
		return nil, errors.New("-read-header-timeout, -idle-timeout and -max-header-bytes must be positive")
	}
	if cfg.handlersOnLoop && cfg.backend != backendEventLoop {
		return nil, errors.New("-handlers-on-loop applies only to -backend eventloop (net/http runs the event API's handlers on a goroutine per connection): add -backend eventloop or drop -handlers-on-loop")
	}
	if cfg.handlersOnLoop && cfg.api != apiEvent {
		return nil, errors.New("-handlers-on-loop applies only to -api event (the blocking API's handler owns its goroutine): add -api event or drop -handlers-on-loop")
	}
	if cfg.backend == backendEventLoop && isSet(env, "idle-timeout") {
		return nil, errors.New("-idle-timeout does not apply to -backend eventloop: it keeps no idle HTTP connection (a plain response closes it; a connection that sends no request is closed after -read-header-timeout); drop -idle-timeout")
	}
	return cfg, nil
}

// isSet reports whether flag name was given on the command line or
// through its environment variable.
func isSet(env *cli.Env, name string) bool {
	set := false
	env.FlagSet.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, inEnv := os.LookupEnv(env.VarName(name))
	return set || inEnv
}

// newFlags registers every flag of wsecho, to be parsed into cfg, with
// its usage text going to stderr.
func newFlags(cfg *config, stderr io.Writer) *cli.Env {
	fs := flag.NewFlagSet("wsecho", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), examplesText)
	}
	env := cli.Env{FlagSet: fs, Prefix: "WSECHO_"}
	env.String(&cfg.addr, "addr", "127.0.0.1:9001", "address to listen on")
	cfg.api = apiBlocking
	env.Var(&cfg.api, "api", "the library's API that serves: blocking (Accept, ReadMessage, Write) or event (NewServer, OnMessage, Start)")
	cfg.backend = backendHTTP
	env.Var(&cfg.backend, "backend", "the server under the handler: http (net/http) or eventloop (package eventloop)")
	env.Bool(&cfg.handlersOnLoop, "handlers-on-loop", false, "with -backend eventloop and -api event: run the handlers on the event loop instead of a goroutine per busy connection")
	env.Int64(&cfg.maxLength, "max-length", websocket.DefaultMaxLength, "largest message accepted, in bytes; a larger one closes with 1009 (-1: no limit)")
	env.Var(&cfg.protocols, "protocols", "accepted subprotocols, comma-separated (the first one the client offers that is listed wins)")
	env.Var(&cfg.headers, "header", "extra handshake response header 'Name: value' (repeatable)")
	env.Bool(&cfg.checkOrigin, "check-origin", false, "refuse cross-origin browser requests (by default every origin is accepted)")
	cfg.compress.Register(&env)
	env.Duration(&cfg.readHeaderTimeout, "read-header-timeout", 10*time.Second, "longest time a client may take to send a request's headers")
	env.Duration(&cfg.idleTimeout, "idle-timeout", time.Minute, "close a keep-alive HTTP connection idle this long between requests (not a WebSocket connection); -backend http only")
	env.Int(&cfg.maxHeaderBytes, "max-header-bytes", 16<<10, "largest request header block, in bytes (net/http allows 4 KiB more, eventloop counts the request line too); a larger one gets 431")
	return &env
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := &websocket.ServerOptions{
		MaxLength:               cfg.maxLength,
		Protocols:               cfg.protocols,
		Header:                  cfg.headers.Header(),
		InsecureSkipOriginCheck: !cfg.checkOrigin,
		Compression:             cfg.compress.Options(),
	}
	e := &echo{opts: opts, log: log, conns: map[*websocket.Conn]struct{}{}}
	var handler http.Handler = http.HandlerFunc(e.serveBlocking)
	if cfg.api == apiEvent {
		handler = http.HandlerFunc(e.serveEvent)
	}
	if cfg.backend == backendEventLoop {
		return runEventLoop(ctx, cfg, handler, e)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("echo server listening", "url", "ws://"+ln.Addr().String()+"/", "api", string(cfg.api), "backend", string(cfg.backend))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	e.closeAll()
	return nil
}

// runEventLoop serves handler on the event-loop backend until ctx ends.
func runEventLoop(ctx context.Context, cfg *config, handler http.Handler, e *echo) error {
	srv := &eventloop.Server{
		Handler:           handler,
		HandlersOnLoop:    cfg.handlersOnLoop,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		Logger:            e.log,
	}
	// The backend drops a connection whose unsent bytes would pass
	// MaxWriteQueue (4 MiB by default), even when its peer reads: an
	// echo must be able to queue the largest message it accepts.
	srv.MaxWriteQueue = maxWriteQueue(cfg.maxLength)
	if err := srv.Listen(cfg.addr); err != nil {
		return err
	}
	e.log.Info("echo server listening", "url", "ws://"+srv.Addr().String()+"/", "api", string(cfg.api),
		"backend", string(cfg.backend), "handlers_on_loop", cfg.handlersOnLoop)
	<-ctx.Done()
	e.log.Info("shutting down")
	// Unlike http.Server, this backend's Shutdown waits for the blocking
	// API's handlers, which last as long as their connections: say
	// goodbye to those first.
	e.closeAll()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	return nil
}

// maxWriteQueue is the event-loop backend's MaxWriteQueue for an echo of
// messages up to maxLength bytes: two of them (one going out, the next
// one queued behind it) and their framing, at least the backend's 4 MiB;
// with no limit (-1), 1 GiB stands in.
func maxWriteQueue(maxLength int64) int {
	if maxLength < 0 || maxLength > 1<<29 {
		return 1 << 30
	}
	return max(int(2*maxLength)+1<<16, 4<<20)
}

// echo serves the echo protocol and keeps track of its connections, which
// http.Server.Shutdown does not see once they are hijacked.
type echo struct {
	opts    *websocket.ServerOptions
	log     *slog.Logger
	mu      sync.Mutex
	conns   map[*websocket.Conn]struct{}
	closing bool // closeAll has begun: new connections are turned away
	wg      sync.WaitGroup
}

// add counts c among the connections closeAll says goodbye to; once
// closeAll has begun it reports false and c must be dropped.
func (e *echo) add(c *websocket.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	return true
}

// remove undoes add once c has ended.
func (e *echo) remove(c *websocket.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	e.wg.Done()
}

// serveEvent echoes with the event API. The connection is counted before
// Start so that an OnClose coming at once finds it; Start calls no handler
// when the handshake fails, so the count is undone here then.
func (e *echo) serveEvent(w http.ResponseWriter, r *http.Request) {
	c := websocket.NewServer(w, r, e.opts)
	c.OnMessage(func(m websocket.Message) {
		// Write sends m.Data as it is, with its type, before the handler
		// returns and the buffer is reused; SendText would need a string.
		if err := c.Write(context.Background(), m.Type, m.Data); err != nil {
			e.log.Debug("echo failed", "remote", r.RemoteAddr, "err", err)
		}
	})
	c.OnClose(func(code websocket.StatusCode, reason string) {
		e.log.Debug("connection ended", "remote", r.RemoteAddr, "code", code, "reason", reason)
		e.remove(c)
	})
	if !e.add(c) {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if err := c.Start(); err != nil {
		e.remove(c)
		e.log.Info("handshake refused", "remote", r.RemoteAddr, "err", err)
	}
	// Start has handed the connection to the event loop: returning frees
	// net/http's goroutine.
}

// serveBlocking echoes with the blocking API: Accept, then a ReadMessage
// and Write loop that reuses one buffer.
func (e *echo) serveBlocking(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, e.opts)
	if err != nil {
		e.log.Info("handshake refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	if !e.add(c) {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer e.remove(c)
	ctx := context.Background()
	var buf []byte
	for {
		typ, msg, err := c.ReadMessage(ctx, buf)
		if err != nil {
			e.log.Debug("connection ended", "remote", r.RemoteAddr, "err", err)
			return
		}
		buf = msg
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// closeAll says goodbye (1001) to every connection and waits for them.
func (e *echo) closeAll() {
	e.mu.Lock()
	e.closing = true
	for c := range e.conns {
		go c.Close(websocket.StatusGoingAway, "server shutting down")
	}
	e.mu.Unlock()
	e.wg.Wait()
}
