// Package server serves the chat over HTTP: the embedded browser client, the
// WebSocket endpoints, /healthz and /metrics, on one port or two.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/web"
)

// Config is the server's configuration; main fills it from flags.
type Config struct {
	Hub             chat.Config // limits; unless Hub.Store is set, New opens one from DataDir
	DataDir         string      // "" keeps history in memory only
	AllowOrigins    []string    // extra allowed Origin patterns (host[:port] path.Match patterns)
	MaxConns        int         // 0: unlimited
	CloseTimeout    time.Duration
	ShutdownTimeout time.Duration // 0: wait for every client however long it takes
	Logger          *slog.Logger
}

// Server is a running chat: New opens the history, Serve serves until its
// context ends and then shuts down gracefully.
type Server struct {
	cfg      Config
	log      *slog.Logger
	hub      *chat.Hub
	index    []byte // index.html with the WebSocket port filled in
	origins  []string
	stopping atomic.Bool
}

// New opens the history store and builds the hub.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.Hub
	hc.Logger = cfg.Logger
	if hc.History > 0 && hc.Store == nil && hc.Engine == nil {
		if cfg.DataDir == "" {
			hc.Store = chat.NewMemStore(hc.History)
		} else {
			st, err := chat.OpenBoltStore(cfg.DataDir, hc.History)
			if err != nil {
				return nil, fmt.Errorf("opening history: %w", err)
			}
			hc.Store = st
		}
	}
	return &Server{cfg: cfg, log: cfg.Logger, hub: chat.NewHub(hc)}, nil
}

// Hub returns the server's hub, for tests and benchmarks.
func (s *Server) Hub() *chat.Hub { return s.hub }

// Serve serves the page, /healthz, /metrics and the WebSocket on ln, and
// the WebSocket alone on wsLn when it is not nil (the seed's two-port
// layout). When ctx ends it stops accepting, closes every client with 1001,
// flushes and closes the history and returns.
func (s *Server) Serve(ctx context.Context, ln, wsLn net.Listener) error {
	pagePort := ""
	if _, p, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		pagePort = p
	}
	wsPort := ""
	if wsLn != nil {
		_, wsPort, _ = net.SplitHostPort(wsLn.Addr().String())
		// The page is served from another port, so to the browser it is
		// another origin; it is still this server's own page, so it is
		// allowed by name.
		s.origins = append(s.origins, pageOrigins(ln.Addr().String())...)
	}
	s.origins = append(s.origins, s.cfg.AllowOrigins...)
	s.index = renderIndex(wsPort)
	s.log.Debug("origin allow-list", "patterns", s.origins)

	servers := []*http.Server{{Handler: s.mainHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}}
	listeners := []net.Listener{ln}
	if wsLn != nil {
		servers = append(servers, &http.Server{Handler: s.wsOnlyHandler(pagePort), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute})
		listeners = append(listeners, wsLn)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("HTTP server failed", "err", err)
	}
	s.stopping.Store(true)
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithCancel(context.Background())
	if d := s.cfg.ShutdownTimeout; d > 0 {
		sctx, cancel = context.WithTimeout(context.Background(), d)
	}
	defer cancel()
	// Listeners first, so no client arrives after the hub said goodbye.
	// WebSocket connections are hijacked, so http.Server.Shutdown leaves
	// them to the hub.
	for _, srv := range servers {
		if e := srv.Shutdown(sctx); e != nil {
			s.log.Warn("HTTP shutdown", "err", e)
		}
	}
	if e := s.hub.Shutdown(sctx); e != nil {
		s.log.Warn("hub shutdown", "err", e)
		if err == nil {
			err = e
		}
	}
	s.log.Info("stopped")
	return err
}

// pageOrigins names the origins of a page served on addr, as origin
// patterns: the host given, or for a wildcard address the loopback names,
// the machine's host name and its interface addresses.
func pageOrigins(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	var hosts []string
	ip := net.ParseIP(host)
	switch {
	case ip == nil && host != "":
		hosts = append(hosts, host)
	case ip == nil || ip.IsUnspecified():
		// Listening everywhere: the page can be reached by any of the
		// machine's names and addresses.
		hosts = append(hosts, "localhost", "127.0.0.1", "::1")
		if hn, err := os.Hostname(); err == nil && hn != "" {
			hosts = append(hosts, hn)
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
					hosts = append(hosts, ipn.IP.String())
				}
			}
		}
	default:
		hosts = append(hosts, host)
		if ip.IsLoopback() {
			hosts = append(hosts, "localhost")
		}
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, escapePattern(strings.ToLower(net.JoinHostPort(h, port))))
	}
	return out
}

// escapePattern makes s match itself under path.Match: an IPv6 origin's
// brackets would otherwise be a character class.
func escapePattern(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// roomFor maps a WebSocket path to a room: / and /chat are the seed's room,
// /chat/NAME is room NAME.
func roomFor(path string) (string, error) {
	switch {
	case path == "/" || path == "/chat" || path == "/chat/":
		return chat.DefaultRoom, nil
	case strings.HasPrefix(path, "/chat/"):
		name := strings.ToLower(strings.TrimPrefix(path, "/chat/"))
		return name, chat.ValidRoom(name)
	}
	return "", errors.New("not a chat path")
}

func (s *Server) mainHandler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web.FS, "static")
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", securityHeaders(http.StripPrefix("/static/", files)))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /seed", s.seedPage)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			s.serveWS(w, r)
			return
		}
		securityHeaders(http.HandlerFunc(s.page)).ServeHTTP(w, r)
	})
	chatPath := func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			s.serveWS(w, r)
			return
		}
		// A person who typed a room URL gets the page in that room.
		room, err := roomFor(r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		http.Redirect(w, r, "/#"+room, http.StatusFound)
	}
	mux.HandleFunc("GET /chat", chatPath)
	mux.HandleFunc("GET /chat/{room...}", chatPath)
	return mux
}

func (s *Server) wsOnlyHandler(pagePort string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			s.serveWS(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this port serves the chat's WebSocket only; the page is on port "+pagePort, http.StatusUpgradeRequired)
	})
	return mux
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// Scripts and styles come only from this server; ws:/wss: because
		// the WebSocket may be on another port.
		hd.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(s.index)
}

// seedPage serves the tutorial's own page, byte for byte. It connects to
// ws://localhost:12345/, so it works when the server runs the seed's layout
// (-ws-addr :12345). Its script is inline, so it gets no CSP header.
func (s *Server) seedPage(w http.ResponseWriter, r *http.Request) {
	b, err := web.FS.ReadFile("static/seed.html")
	if err != nil {
		http.Error(w, "seed page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.Write(b)
}

func renderIndex(wsPort string) []byte {
	b, err := web.FS.ReadFile("static/index.html")
	if err != nil {
		panic("chat: index.html missing from the embedded files: " + err.Error())
	}
	return []byte(strings.Replace(string(b), `content="same-port"`, `content="`+wsPort+`"`, 1))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.stopping.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// A cluster node that cannot reach NATS can neither send nor deliver:
	// a load balancer should send new clients elsewhere.
	if h, ok := s.cfg.Hub.Engine.(interface{ Healthy() error }); ok {
		if err := h.Healthy(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.hub.WritePrometheus(w)
	if m, ok := s.cfg.Hub.Engine.(interface{ WritePrometheus(io.Writer) error }); ok {
		m.WritePrometheus(w)
	}
}

// hardLimit is the frame size above which the library itself closes the
// connection with 1009. Between the chat's -max-message and this, a message
// is refused politely and the connection stays; the margin leaves room for
// JSON escaping.
func hardLimit(maxMessage int) int64 {
	if maxMessage <= 0 {
		return -1
	}
	return max(64<<10, 8*int64(maxMessage)+1024)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	room, err := roomFor(r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if s.stopping.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if n := s.cfg.MaxConns; n > 0 {
		if c, _ := s.hub.Counts(); c >= n {
			s.log.Warn("connection refused: -max-conns reached", "max", n, "remote", r.RemoteAddr)
			http.Error(w, "too many connections", http.StatusServiceUnavailable)
			return
		}
	}
	q := r.URL.Query()
	opts := chat.ConnectOptions{Room: room, Nick: q.Get("nick"), Resume: q.Get("resume"), Remote: r.RemoteAddr}
	if v := q.Get("since"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			opts.Since, opts.HasSince = n, true
		}
	}
	ws := websocket.NewServer(w, r, &websocket.ServerOptions{
		MaxLength:      hardLimit(s.cfg.Hub.MaxMessage),
		Protocols:      []string{chat.Subprotocol},
		OriginPatterns: s.origins,
		CloseTimeout:   s.cfg.CloseTimeout,
	})
	t := &transport{ws: ws}
	var client *chat.Client
	ws.OnOpen(func() {
		opts.JSON = ws.Protocol() == chat.Subprotocol
		c, err := s.hub.Connect(t, opts)
		if err != nil {
			code := websocket.StatusGoingAway
			if errors.Is(err, chat.ErrNoNick) || errors.Is(err, chat.ErrUnavailable) {
				code = websocket.StatusTryAgainLater
			}
			ws.Close(code, err.Error())
			return
		}
		client = c
	})
	ws.OnMessage(func(m websocket.Message) {
		if client == nil {
			return
		}
		if m.Type == websocket.TextMessage {
			client.Receive(m.Data)
		} else {
			client.ReceiveBinary()
		}
	})
	ws.OnPong(func([]byte) {
		if client != nil {
			client.Alive()
		}
	})
	ws.OnError(func(err error) {
		s.log.Debug("protocol error", "remote", r.RemoteAddr, "err", err)
	})
	ws.OnClose(func(code websocket.StatusCode, reason string) {
		if client != nil {
			client.Disconnected()
		}
	})
	if err := ws.Start(); err != nil {
		s.log.Info("handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
	}
}

// transport adapts a library connection to chat.Conn.
type transport struct{ ws *websocket.Conn }

func (t *transport) WriteText(ctx context.Context, p *chat.Payload) error {
	// The frame is built once per payload and shared by every recipient.
	switch v := p.Cached(func(b []byte) any {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			return err
		}
		return pm
	}).(type) {
	case *websocket.PreparedMessage:
		return t.ws.WritePrepared(ctx, v)
	case error:
		return v
	}
	return errors.New("chat: unexpected cached payload")
}

func (t *transport) Ping(ctx context.Context) error { return t.ws.Ping(nil) }

func (t *transport) Close(code int, reason string) error {
	return t.ws.Close(websocket.StatusCode(code), reason)
}

func (t *transport) Abort() { t.ws.CloseNow() }
