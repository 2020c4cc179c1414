// Package servers holds one echo server per WebSocket implementation under
// test. Each is written the fastest way its own documentation shows; every
// one echoes each message back with its type, or, in broadcast mode, sends
// every message it receives to all of its open connections.
package servers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mode selects what a server does with a message it receives.
type Mode int

const (
	// Echo writes each message back on the connection it came from.
	Echo Mode = iota
	// Broadcast writes each message to every open connection, encoding it
	// once where the implementation offers a way to.
	Broadcast
)

// Server is one implementation under test.
type Server struct {
	// Name is the short name used on the command line and in reports.
	Name string
	// Doc says in a few words how the server is written.
	Doc string
	// Broadcast reports whether the server supports Broadcast mode.
	Broadcast bool
	// Run listens on addr and serves until ctx is done.
	Run func(ctx context.Context, addr string, mode Mode) error
}

var (
	regMu    sync.Mutex
	registry = map[string]Server{}
)

func register(s Server) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[s.Name] = s
}

// Lookup returns the server with the given name.
func Lookup(name string) (Server, bool) {
	regMu.Lock()
	defer regMu.Unlock()
	s, ok := registry[name]
	return s, ok
}

// Names lists every registered server in a stable order: the floor first,
// then ours on net/http, then ours on the event-loop backend, then the
// peers alphabetically.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	rank := func(n string) int {
		switch n {
		case "floor":
			return 0
		case "ours", "ours-event":
			return 1
		}
		if strings.HasPrefix(n, "ours-loop") {
			return 2
		}
		return 3
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	return names
}

// serveHTTP runs a net/http server for h on addr until ctx is done. It is the
// transport of every server whose library upgrades from net/http.
func serveHTTP(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// hub is the set of open connections of a broadcasting server.
type hub[T comparable] struct {
	mu    sync.Mutex
	conns map[T]struct{}
	snap  []T
}

func newHub[T comparable]() *hub[T] { return &hub[T]{conns: make(map[T]struct{})} }

func (h *hub[T]) add(c T) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub[T]) remove(c T) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// each calls f for every connection outside the lock, so a slow write never
// blocks registration. The snapshot slice is reused between broadcasts.
func (h *hub[T]) each(f func(T)) {
	h.mu.Lock()
	s := h.snap[:0]
	for c := range h.conns {
		s = append(s, c)
	}
	h.snap = s
	h.mu.Unlock()
	for _, c := range s {
		f(c)
	}
}

// logErr keeps expected end-of-connection errors out of the logs and the
// rest at debug level: a benchmark run reports failures through the load
// generator, not through server logs.
func logErr(server string, err error) {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return
	}
	slog.Debug("connection ended", "server", server, "err", err)
}

func unsupported(name string) error { return fmt.Errorf("server %s does not support broadcast", name) }
