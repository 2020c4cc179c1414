// Package server serves the chat over HTTP: the embedded browser client, the
// WebSocket endpoints, /healthz and /metrics, on one port or two.
package server

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/web"
	"github.com/wsdriver/websocket/eventloop"
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
	// TrustedProxies are the reverse proxies whose Forwarded or
	// X-Forwarded-For (and X-Forwarded-Host) headers name the real client;
	// from anyone else those headers are ignored.
	TrustedProxies []netip.Prefix
	// MaxConnsPerIP caps the WebSocket connections from one client
	// address (as the trusted proxies report it); 0: unlimited.
	MaxConnsPerIP int
	// MetricsElsewhere leaves /metrics off the chat's own port: the caller
	// serves MetricsHandler on another listener (-metrics-addr), so that
	// the public port does not show them.
	MetricsElsewhere bool
	// AuthSecret turns sign-in on: every WebSocket needs an HS256 token
	// signed with it (see auth.go); nil leaves the chat anonymous.
	AuthSecret []byte
	// AuthLoginURL is where the page sends a person who has no token
	// (the site that issues them); "" shows no link.
	AuthLoginURL string
	// Backend chooses the server under the chat: BackendHTTP ("" too),
	// net/http with a writer goroutine per client; or BackendEventLoop,
	// the library's event loops (package eventloop), where an idle client
	// holds no goroutine (see ConnectOptions.Direct in package chat).
	Backend string
	// MaxWriteQueue is, on the event-loop backend, the bytes a client may
	// leave unread before it is dropped as a slow consumer; 0 sizes it
	// from Hub (see writeQueueBytes).
	MaxWriteQueue int
}

// The backends of Config.Backend.
const (
	BackendHTTP      = "http"
	BackendEventLoop = "eventloop"
)

// Server is a running chat: New opens the history, Serve serves until its
// context ends and then shuts down gracefully.
type Server struct {
	cfg      Config
	log      *slog.Logger
	hub      *chat.Hub
	index    []byte // index.html with the WebSocket port filled in
	origins  []string
	stopping atomic.Bool

	metricsHandler http.Handler

	perIPMu sync.Mutex
	perIP   map[netip.Addr]int // open WebSocket connections per client address

	bound *bound // set by Listen
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
	hub := chat.NewHub(hc)
	return &Server{cfg: cfg, log: cfg.Logger, hub: hub, perIP: map[netip.Addr]int{}, metricsHandler: newMetricsHandler(hub, cfg.Hub.Engine)}, nil
}

// Hub returns the server's hub, for tests and benchmarks.
func (s *Server) Hub() *chat.Hub { return s.hub }

// bound is what Listen started: the servers that Serve waits for and
// shuts down.
type bound struct {
	servers []*http.Server      // the net/http backend
	loops   []*eventloop.Server // the event-loop backend
	errc    chan error          // a server that failed
}

// Listen starts serving on ln (and wsLn, if not nil; see Serve) with the
// configured backend; Serve then waits and shuts down. It is apart from
// Serve for the event-loop backend, which opens a listening socket of its
// own at ln's address (closing ln): once Listen has returned, that socket
// takes connections, so a caller that prints the address or dials it
// next finds it open.
func (s *Server) Listen(ln, wsLn net.Listener) error {
	if s.bound != nil {
		return errors.New("chat server: Listen called twice")
	}
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
	s.index = renderIndex(wsPort, len(s.cfg.AuthSecret) > 0, s.cfg.AuthLoginURL)
	s.log.Debug("origin allow-list", "patterns", s.origins)

	handlers := []http.Handler{s.mainHandler()}
	listeners := []net.Listener{ln}
	if wsLn != nil {
		handlers = append(handlers, s.wsOnlyHandler(pagePort))
		listeners = append(listeners, wsLn)
	}
	b := &bound{errc: make(chan error, len(handlers))}
	if s.cfg.Backend == BackendEventLoop {
		var err error
		if b.loops, err = s.startEventLoops(handlers, listeners); err != nil {
			return err
		}
	} else {
		for i, h := range handlers {
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
			srv.MaxHeaderBytes = maxHeaderBytes
			b.servers = append(b.servers, srv)
			go func() { b.errc <- srv.Serve(listeners[i]) }()
		}
	}
	s.bound = b
	return nil
}

// Serve serves the page, /healthz, /metrics and the WebSocket on ln, and
// the WebSocket alone on wsLn when it is not nil (the seed's two-port
// layout). When ctx ends it stops accepting, closes every client with 1001,
// flushes and closes the history and returns. Unless Listen was called
// first, Serve calls it with ln and wsLn; after Listen they are not used.
func (s *Server) Serve(ctx context.Context, ln, wsLn net.Listener) error {
	if s.bound == nil {
		if err := s.Listen(ln, wsLn); err != nil {
			return err
		}
	}
	servers, loops, errc := s.bound.servers, s.bound.loops, s.bound.errc
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
	// http.Server.Shutdown closes the listeners at once (and stopping
	// already refuses new WebSockets), then waits for the requests under
	// way. WebSockets over HTTP/1.1 are hijacked, so it leaves them to the
	// hub; those over HTTP/2 are requests it waits for, so the hub says
	// goodbye meanwhile.
	shut := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { shut <- srv.Shutdown(sctx) }()
	}
	if e := s.hub.Shutdown(sctx); e != nil {
		s.log.Warn("hub shutdown", "err", e)
		if err == nil {
			err = e
		}
	}
	for range servers {
		if e := <-shut; e != nil {
			s.log.Warn("HTTP shutdown", "err", e)
		}
	}
	// The event loops go last: their Close drops whatever connection is
	// left, and the hub has said goodbye to its clients by now.
	for _, es := range loops {
		if e := es.Shutdown(sctx); e != nil {
			s.log.Warn("event loop shutdown", "err", e)
		}
	}
	s.log.Info("stopped")
	return err
}

// maxHeaderBytes bounds a request's head on either backend: a handshake
// needs little; net/http answers more (plus its 4 KiB slack) with 431.
const maxHeaderBytes = 16 << 10

// startEventLoops serves each handler on an event-loop server that takes
// its listener over (opened by the caller, which explains a port in use or
// a privileged one).
func (s *Server) startEventLoops(handlers []http.Handler, listeners []net.Listener) ([]*eventloop.Server, error) {
	var out []*eventloop.Server
	for i, h := range handlers {
		addr := listeners[i].Addr().String()
		es := &eventloop.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    maxHeaderBytes,
			MaxWriteQueue:     s.writeQueueBytes(),
			CloseTimeout:      s.cfg.CloseTimeout,
			Logger:            s.log,
		}
		if err := es.Start(listeners[i]); err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("event-loop backend on %s: %w", addr, err)
		}
		out = append(out, es)
	}
	return out, nil
}

// writeQueueBytes is the event-loop backend's bound on a client's unsent
// bytes, its slow-consumer limit. The chat's -queue counts messages; the
// engine counts bytes, so the bound is -queue messages of the largest size
// allowed (-max-message plus room for the JSON envelope, 64 KiB when
// messages are unlimited), plus the joining burst that never counts as
// slowness (the -history replay, the welcome and a presence list: another
// -history messages and 1 MiB). A reader that keeps reading never comes
// near it: it falls -queue full-size messages behind only when it does not
// keep up. It is a bound, not an allocation: an idle or fast client queues
// nothing. -queue 0 (unlimited) makes it 1 GiB.
func (s *Server) writeQueueBytes() int {
	if s.cfg.MaxWriteQueue > 0 {
		return s.cfg.MaxWriteQueue
	}
	hc := s.cfg.Hub
	if hc.Queue <= 0 {
		return 1 << 30
	}
	frame := 64 << 10
	if hc.MaxMessage > 0 {
		frame = hc.MaxMessage + 512
	}
	return (hc.Queue+max(hc.History, 0))*frame + 1<<20
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
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || isExtendedConnect(r)
}

// isExtendedConnect reports a WebSocket over HTTP/2 (RFC 8441): a CONNECT
// whose :protocol is websocket, which the library answers like an upgrade.
func isExtendedConnect(r *http.Request) bool {
	return r.Method == http.MethodConnect && strings.EqualFold(r.Header.Get(":protocol"), "websocket")
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
	if !s.cfg.MetricsElsewhere {
		mux.Handle("GET /metrics", s.metricsHandler)
	}
	mux.HandleFunc("GET /seed", s.seedPage)
	mux.HandleFunc("GET /auth/check", s.authCheck)
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
	// WebSockets over HTTP/2 come as CONNECT to the same paths.
	mux.HandleFunc("CONNECT /{$}", s.serveWS)
	mux.HandleFunc("CONNECT /chat", s.serveWS)
	mux.HandleFunc("CONNECT /chat/{room...}", s.serveWS)
	return mux
}

func (s *Server) wsOnlyHandler(pagePort string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("CONNECT /", s.serveWS)
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

func renderIndex(wsPort string, auth bool, loginURL string) []byte {
	b, err := web.FS.ReadFile("static/index.html")
	if err != nil {
		panic("chat: index.html missing from the embedded files: " + err.Error())
	}
	page := strings.Replace(string(b), `content="same-port"`, `content="`+wsPort+`"`, 1)
	if auth {
		page = strings.Replace(page, `<meta name="chat-auth" content="">`, `<meta name="chat-auth" content="required">`, 1)
		page = strings.Replace(page, `<meta name="chat-login" content="">`, `<meta name="chat-login" content="`+html.EscapeString(loginURL)+`">`, 1)
	}
	return []byte(page)
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
	p := s.peerOf(r)
	s.log.Debug("websocket request", "remote", r.RemoteAddr, "proto", r.Proto, "method", r.Method)
	logPeer := []any{"remote", p.addr}
	if p.via != "" {
		logPeer = append(logPeer, "via", p.via)
	}
	if n := s.cfg.MaxConns; n > 0 {
		if c, _ := s.hub.Counts(); c >= n {
			s.log.Warn("connection refused: -max-conns reached", append(logPeer, "max", n)...)
			http.Error(w, "too many connections", http.StatusServiceUnavailable)
			return
		}
	}
	if err := checkOrigin(r, p.host, s.origins); err != nil {
		s.log.Info("handshake refused", append(logPeer, "err", err)...)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	id, err := s.authenticate(r, room)
	if err != nil {
		s.log.Info("sign-in refused", append(logPeer, "err", err)...)
		refuseAuth(w, err)
		return
	}
	if !s.takeSlot(p.ip) {
		s.log.Warn("connection refused: -max-conns-per-ip reached", append(logPeer, "max", s.cfg.MaxConnsPerIP)...)
		http.Error(w, fmt.Sprintf("too many connections from your address (at most %d)", s.cfg.MaxConnsPerIP), http.StatusTooManyRequests)
		return
	}
	q := r.URL.Query()
	opts := chat.ConnectOptions{Room: room, Nick: q.Get("nick"), Resume: q.Get("resume"), Remote: p.addr}
	if id != nil {
		opts.Nick, opts.Verified, opts.Rooms = id.nick, true, id.rooms
	}
	if v := q.Get("since"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			opts.Since, opts.HasSince = n, true
		}
	}
	wo := &websocket.ServerOptions{
		MaxLength: hardLimit(s.cfg.Hub.MaxMessage),
		Protocols: []string{chat.Subprotocol},
		// checkOrigin above did it, with the chat's own words.
		InsecureSkipOriginCheck: true,
		CloseTimeout:            s.cfg.CloseTimeout,
	}
	if s.cfg.Backend == BackendEventLoop {
		// No writer goroutine and no ticker per client: the library's
		// keepalive (a runtime timer, no goroutine) pings, and a peer
		// silent for two intervals is dropped, as the hub's writer does.
		opts.Direct = true
		wo.PingInterval, wo.PongTimeout = s.cfg.Hub.PingInterval, s.cfg.Hub.PingInterval
	}
	ws := websocket.NewServer(w, r, wo)
	ip := p.ip
	s.attach(ws, opts, func() { s.freeSlot(ip) })
	if err := ws.Start(); err != nil {
		s.freeSlot(ip)
		s.log.Info("handshake refused", append(logPeer, "err", err)...)
	}
}

// takeSlot counts a connection from ip against MaxConnsPerIP and reports
// whether it may go on; freeSlot gives the slot back.
func (s *Server) takeSlot(ip netip.Addr) bool {
	s.perIPMu.Lock()
	defer s.perIPMu.Unlock()
	if n := s.cfg.MaxConnsPerIP; n > 0 && s.perIP[ip] >= n {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) freeSlot(ip netip.Addr) {
	s.perIPMu.Lock()
	defer s.perIPMu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// attach sets ws's handlers to drive a chat client. It is a function of its
// own, apart from the handshake's request, so that no handler can keep the
// request (and its headers, up to the server's header limit) alive for as
// long as the connection lasts: a handler needs only opts.
func (s *Server) attach(ws *websocket.Conn, opts chat.ConnectOptions, closed func()) {
	t := &transport{ws: ws, direct: opts.Direct}
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
	remote := opts.Remote
	ws.OnError(func(err error) {
		s.log.Debug("protocol error", "remote", remote, "err", err)
	})
	ws.OnClose(func(code websocket.StatusCode, reason string) {
		if opts.Direct && errors.Is(ws.Err(), websocket.ErrPongTimeout) {
			s.hub.Metrics.DeadPeers.Add(1)
			s.log.Info("dropping dead peer", "remote", remote)
		}
		if client == nil {
			closed()
			return
		}
		// On the event-loop backend too this runs off the loop (the
		// default handler mode), so it may wait for the room.
		client.Disconnected()
		closed()
	})
}

// transport adapts a library connection to chat.Conn.
type transport struct {
	ws     *websocket.Conn
	direct bool // the event-loop backend: writes never block
}

func (t *transport) WriteText(ctx context.Context, p *chat.Payload) error {
	pm, err := prepared(p)
	if err != nil {
		return err
	}
	return t.written(t.ws.WritePrepared(ctx, pm))
}

// WriteTexts sends a writer's backlog with one system call (a writev of
// the prepared frames): a member that fell behind catches up at the cost
// of one write, not one per message.
func (t *transport) WriteTexts(ctx context.Context, ps []*chat.Payload) error {
	pp := preparedPool.Get().(*[]*websocket.PreparedMessage)
	defer func() {
		clear(*pp)
		*pp = (*pp)[:0]
		preparedPool.Put(pp)
	}()
	for _, p := range ps {
		pm, err := prepared(p)
		if err != nil {
			return err
		}
		*pp = append(*pp, pm)
	}
	return t.written(t.ws.WritePrepared(ctx, *pp...))
}

var preparedPool = sync.Pool{New: func() any { return new([]*websocket.PreparedMessage) }}

// prepared returns p's frame, built once per payload and shared by every
// recipient.
func prepared(p *chat.Payload) (*websocket.PreparedMessage, error) {
	switch v := p.Cached(func(b []byte) any {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			return err
		}
		return pm
	}).(type) {
	case *websocket.PreparedMessage:
		return v, nil
	case error:
		return nil, v
	}
	return nil, errors.New("chat: unexpected cached payload")
}

// written translates a write's error for the chat.
func (t *transport) written(err error) error {
	if t.direct && errors.Is(err, eventloop.ErrWriteQueueFull) {
		return fmt.Errorf("%w: %w", chat.ErrSlowConsumer, err)
	}
	return t.closing(err)
}

func (t *transport) Ping(ctx context.Context) error { return t.closing(t.ws.SendPing(nil)) }

// closing marks err as chat.ErrConnClosing when the connection is no longer
// open: the library refuses data once either side's close frame is on its
// way (RFC 6455 §5.5.1) and then finishes the closing handshake itself, so
// the chat must not abort the connection over such an error.
func (t *transport) closing(err error) error {
	if err != nil && t.ws.ReadyState() != websocket.Open {
		return fmt.Errorf("%w: %w", chat.ErrConnClosing, err)
	}
	return err
}

func (t *transport) Close(code int, reason string) error {
	return t.ws.Close(websocket.StatusCode(code), reason)
}

func (t *transport) Abort() { t.ws.CloseNow() }
