// Command wsecho is the seed's echo server: every message a client sends
// comes back unchanged, with its type (text stays text, binary stays
// binary). It is what conformance suites and interop tests are pointed at.
//
//	wsecho -addr 127.0.0.1:9001 -max-length 16777216 -protocols chat,echo -header 'X-Server: wsecho'
//
// Every flag can also be set through the environment variable named in
// -help. It echoes on every path and, being a test tool, accepts every
// origin unless -check-origin is given.
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
	addr        string
	maxLength   int64
	protocols   cli.List
	headers     cli.Headers
	checkOrigin bool
	compress    cli.Compression
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("wsecho", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := cli.Env{FlagSet: fs, Prefix: "WSECHO_"}
	env.String(&cfg.addr, "addr", "127.0.0.1:9001", "address to listen on")
	env.Int64(&cfg.maxLength, "max-length", websocket.DefaultMaxLength, "largest message accepted, in bytes; a larger one closes with 1009 (-1: no limit)")
	env.Var(&cfg.protocols, "protocols", "accepted subprotocols, comma-separated (the first one the client offers that is listed wins)")
	env.Var(&cfg.headers, "header", "extra handshake response header 'Name: value' (repeatable)")
	env.Bool(&cfg.checkOrigin, "check-origin", false, "refuse cross-origin browser requests (by default every origin is accepted)")
	cfg.compress.Register(&env)
	if err := env.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: wsecho takes only flags (see -help)", fs.Arg(0))
	}
	if cfg.maxLength == 0 {
		return nil, errors.New("-max-length must be positive, or -1 for no limit")
	}
	return cfg, nil
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
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	e := &echo{opts: opts, log: log, conns: map[*websocket.Conn]struct{}{}}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	log.Info("echo server listening", "url", "ws://"+ln.Addr().String()+"/")
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

// echo serves the echo protocol and keeps track of its connections, which
// http.Server.Shutdown does not see once they are hijacked.
type echo struct {
	opts  *websocket.ServerOptions
	log   *slog.Logger
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, e.opts)
	if err != nil {
		e.log.Info("handshake refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	e.mu.Lock()
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		e.wg.Done()
	}()
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
	for c := range e.conns {
		go c.Close(websocket.StatusGoingAway, "server shutting down")
	}
	e.mu.Unlock()
	e.wg.Wait()
}
