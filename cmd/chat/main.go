// Command chat is a self-hostable chat server: the websocket-driver
// tutorial's chat (random user-N nicknames, "nick: message" to everyone,
// " .... nick has left.") grown into rooms, commands, persistent history, a
// JSON subprotocol and an embedded browser client. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/server"
)

func main() {
	withExtendedConnect()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// originList is a repeatable flag.
type originList []string

func (o *originList) String() string { return strings.Join(*o, ",") }

func (o *originList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*o = append(*o, p)
		}
	}
	return nil
}

type options struct {
	addr, wsAddr, data         string
	dataSet                    bool  // -data or CHAT_DATA was given
	dataErr                    error // why there is no default -data
	history, maxMessage, queue int
	rate                       float64
	burst, maxConns            int
	announceMax                int
	origins                    originList
	ping, writeTimeout         time.Duration
	closeTimeout, shutdown     time.Duration
	logLevel, logFormat        string
	cluster                    clusterOptions
	tlsCert, tlsKey            string
	trustedProxies             prefixList
	maxConnsPerIP              int
	metricsAddr                string
	authSecret, authSecretFile string
	authLoginURL               string
	backend                    string
}

// prefixList is -trusted-proxy: CIDR prefixes or single addresses,
// repeatable and comma-separated.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	var parts []string
	for _, p := range *l {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, ierr := netip.ParseAddr(s)
			if ierr != nil {
				return fmt.Errorf("%q is not an address or CIDR prefix such as 127.0.0.1/32 or 10.0.0.0/8", s)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

// envNames maps each flag to the environment variable that sets its default.
var envNames = map[string]string{}

// durationValue is a duration flag whose errors say how to write one: the
// flag package only says "parse error" for "-ping 30".
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			return fmt.Errorf("a duration needs a unit: write %ss for seconds (or %sms, %sm)", s, s, s)
		}
		return errors.New("not a duration: write it like 30s, 1m30s or 500ms")
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*v.d = d
	return nil
}

// countValue is a non-negative integer flag; its errors name the value
// expected instead of the flag package's "parse error".
type countValue struct {
	n    *int
	zero string // what 0 means, for the error message
}

func (v countValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return fmt.Errorf("must not be negative (0 %s)", v.zero)
	}
	*v.n = n
	return nil
}

// rateValue is -rate: a non-negative number of messages per second.
type rateValue struct{ f *float64 }

func (v rateValue) String() string {
	if v.f == nil {
		return ""
	}
	return strconv.FormatFloat(*v.f, 'g', -1, 64)
}

func (v rateValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("not a number of messages per second, such as 5 or 0.5")
	}
	if f < 0 {
		return errors.New("must not be negative (0 means unlimited)")
	}
	*v.f = f
	return nil
}

// errUsage marks a command-line mistake; main adds where to read about
// the flags.
var errUsage = errors.New("see chat -help")

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	// The flag package prints the error and the whole usage on a mistake,
	// and main prints the error again: errors are reported once, by main,
	// and the usage only on -help.
	fs.SetOutput(io.Discard)
	env := func(name, envName string) string {
		envNames[name] = envName
		return " (env " + envName + ")"
	}
	defData, dataErr := defaultDataDir(getenv)
	o.history, o.maxMessage, o.queue, o.burst = 100, 4096, 256, 10
	o.rate, o.ping, o.writeTimeout, o.closeTimeout, o.shutdown = 5, 30*time.Second, 10*time.Second, 5*time.Second, 10*time.Second
	fs.StringVar(&o.addr, "addr", "localhost:8080", "`host:port` for the page, /healthz, /metrics and the WebSocket; the default serves this machine only, :8080 serves every interface"+env("addr", "CHAT_ADDR"))
	fs.StringVar(&o.wsAddr, "ws-addr", "", "if set, also serve the WebSocket alone on this `host:port` (the seed's two-port layout, e.g. :12345)"+env("ws-addr", "CHAT_WS_ADDR"))
	dataHelp := "`directory` for the history database (history.db), created if missing; empty keeps history in memory only; default: $STATE_DIRECTORY (systemd), else $XDG_DATA_HOME/wsdriver-chat, else ~/.local/share/wsdriver-chat"
	fs.StringVar(&o.data, "data", defData, dataHelp+env("data", "CHAT_DATA"))
	fs.Var(countValue{&o.history, "turns history off"}, "history", "`n` messages kept per room and replayed to newcomers; 0 turns history off"+env("history", "CHAT_HISTORY"))
	fs.Var(countValue{&o.maxMessage, "means unlimited"}, "max-message", "largest message text in `bytes`; longer ones are refused with an error; 0 means unlimited"+env("max-message", "CHAT_MAX_MESSAGE"))
	fs.Var(rateValue{&o.rate}, "rate", "`n` messages per second allowed per connection (excess is dropped with a notice); 0 means unlimited"+env("rate", "CHAT_RATE"))
	fs.Var(countValue{&o.burst, "means -rate rounded up"}, "burst", "`n` messages a connection may send at once before -rate applies; 0 means -rate rounded up"+env("burst", "CHAT_BURST"))
	fs.Var(countValue{&o.queue, "means unlimited"}, "queue", "`n` messages held for a slow client before it is disconnected (close 1008); 0 means unlimited"+env("queue", "CHAT_QUEUE"))
	fs.Var(countValue{&o.announceMax, "means always"}, "announce-max", "send join/leave notices only in rooms with at most `n` users; 0 means always"+env("announce-max", "CHAT_ANNOUNCE_MAX"))
	fs.Var(countValue{&o.maxConns, "means unlimited"}, "max-conns", "`n`: most WebSocket connections at once (more get HTTP 503); 0 means unlimited"+env("max-conns", "CHAT_MAX_CONNS"))
	fs.Var(&o.origins, "allow-origin", "allow browser pages from this `origin` host[:port] (path.Match pattern, e.g. chat.example.com or *.example.com); repeatable; the server's own page is always allowed"+env("allow-origin", "CHAT_ALLOW_ORIGIN, comma-separated"))
	fs.Var(durationValue{&o.ping}, "ping", "`interval` between heartbeat pings, e.g. 30s; a peer silent for two intervals is dropped; 0 turns pings off"+env("ping", "CHAT_PING"))
	fs.Var(durationValue{&o.writeTimeout}, "write-timeout", "longest `time` a write to one client may take before it is dropped, e.g. 10s; 0 means no limit"+env("write-timeout", "CHAT_WRITE_TIMEOUT"))
	fs.Var(durationValue{&o.closeTimeout}, "close-timeout", "longest `time` to wait for a client's answer to a close frame, e.g. 5s; 0 means the library's default (5s)"+env("close-timeout", "CHAT_CLOSE_TIMEOUT"))
	fs.Var(durationValue{&o.shutdown}, "shutdown-timeout", "on SIGINT/SIGTERM, longest `time` to wait for clients to take their close frame before they are dropped, e.g. 10s; 0 means no limit"+env("shutdown-timeout", "CHAT_SHUTDOWN_TIMEOUT"))
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS and wss:// with this PEM certificate `file` (the full chain); reloaded on SIGHUP"+env("tls-cert", "CHAT_TLS_CERT"))
	fs.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key `file` of -tls-cert; reloaded on SIGHUP"+env("tls-key", "CHAT_TLS_KEY"))
	fs.Var(&o.trustedProxies, "trusted-proxy", "a reverse proxy's `CIDR` (or address) whose Forwarded/X-Forwarded-For headers name the real client, for logs, -max-conns-per-ip and the origin check; repeatable; the headers are ignored from anyone else"+env("trusted-proxy", "CHAT_TRUSTED_PROXY, comma-separated"))
	fs.Var(countValue{&o.maxConnsPerIP, "means unlimited"}, "max-conns-per-ip", "`n`: most WebSocket connections from one client address (more get HTTP 429); 0 means unlimited"+env("max-conns-per-ip", "CHAT_MAX_CONNS_PER_IP"))
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics (Prometheus) on this `host:port` only, e.g. 127.0.0.1:9090, instead of on -addr"+env("metrics-addr", "CHAT_METRICS_ADDR"))
	fs.StringVar(&o.authSecret, "auth-secret", "", "turn sign-in on: every connection needs an HS256 JWT signed with this `secret` (at least 32 bytes); prefer the environment or -auth-secret-file, which ps does not show"+env("auth-secret", "CHAT_AUTH_SECRET"))
	fs.StringVar(&o.authSecretFile, "auth-secret-file", "", "read -auth-secret from this `file` (one line)"+env("auth-secret-file", "CHAT_AUTH_SECRET_FILE"))
	fs.StringVar(&o.authLoginURL, "auth-login-url", "", "with sign-in, the page links people without a token to this `URL` (the site that issues tokens)"+env("auth-login-url", "CHAT_AUTH_LOGIN_URL"))
	fs.StringVar(&o.backend, "backend", server.BackendHTTP, "the server underneath: http (net/http: TLS, HTTP/2, a writer goroutine per client) or eventloop (the library's event loops: no goroutine per idle client; plain HTTP/1.1 only, so terminate TLS in a proxy in front)"+env("backend", "CHAT_BACKEND"))
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error"+env("log-level", "CHAT_LOG_LEVEL"))
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json"+env("log-format", "CHAT_LOG_FORMAT"))
	addClusterFlags(fs, &o.cluster, env)
	// The flag package calls Usage on every mistake too; it is printed only
	// for -help (below), so that a mistake is not buried under the list.
	fs.Usage = func() {}
	usage := func() {
		fmt.Fprintf(stderr, "Usage: chat [flags]\n\nA chat server with a browser client; open the printed URL.\n"+
			"Every flag's default can be set by the environment variable named with it;\na flag on the command line wins over the environment.\n\n")
		fmt.Fprint(stderr, clusterHelp)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	// Environment values become the defaults; the command line, parsed
	// next, overrides them.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envNames[f.Name]
		name, _, _ = strings.Cut(name, ",")
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %v", name, v, err)
			}
			if f.Name == "data" {
				o.dataSet = true
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
			return nil, fmt.Errorf("unknown flag %s (%w for the flags)", name, errUsage)
		}
		return nil, fmt.Errorf("%v (%w)", err, errUsage)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: chat takes only flags (%w)", fs.Arg(0), errUsage)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "data" {
			o.dataSet = true
		}
	})
	if !o.dataSet {
		o.dataErr = dataErr
	}
	for _, p := range o.origins {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("-allow-origin %q: not a valid pattern (%v); write a host[:port] such as chat.example.com or *.example.com", p, err)
		}
	}
	if err := o.cluster.check(); err != nil {
		return nil, err
	}
	switch o.backend {
	case server.BackendHTTP, server.BackendEventLoop:
	default:
		return nil, fmt.Errorf("-backend %q: choose http or eventloop (%w)", o.backend, errUsage)
	}
	if o.backend == server.BackendEventLoop && (o.tlsCert != "" || o.tlsKey != "") {
		return nil, errors.New("-tls-cert/-tls-key need -backend http: the eventloop backend serves plain HTTP/1.1 only (and so no HTTP/2 either); " +
			"terminate TLS in a reverse proxy in front of it (see deploy/nginx.conf), or keep -backend http")
	}
	if o.burst == 0 {
		o.burst = max(1, int(math.Ceil(o.rate)))
	}
	return o, nil
}

// defaultDataDir picks where history goes when -data is not given:
// systemd's StateDirectory= (a service), else the XDG base directory
// convention, so a server started from any directory finds its history
// again. Without any of them (a service account with no home) it is an
// error that says how to choose, rather than a directory relative to
// wherever the server happened to start.
func defaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv("STATE_DIRECTORY"); d != "" {
		// systemd may list several, colon-separated; the first is ours.
		d, _, _ = strings.Cut(d, ":")
		return d, nil
	}
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "wsdriver-chat"), nil
	}
	h := getenv("HOME")
	switch {
	case h == "":
		return "", errors.New("no directory for the history: $HOME is not set; choose one with -data DIR (or CHAT_DATA=DIR), e.g. -data /var/lib/chat, or -data \"\" to keep history in memory only")
	case h == "/nonexistent" || !filepath.IsAbs(h):
		return "", fmt.Errorf("no directory for the history: the home directory %q is not usable (a service account?); choose one with -data DIR (or CHAT_DATA=DIR), e.g. -data /var/lib/chat; under systemd, StateDirectory=chat provides one", h)
	}
	return filepath.Join(h, ".local", "share", "wsdriver-chat"), nil
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %v", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, not %q", o.logFormat)
}

// listenOn opens the listener for flag's address, with errors that say what
// to change.
func listenOn(flagName, addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		why := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			why = ae.Err
		}
		return nil, fmt.Errorf("%s %q: %s; write host:port, e.g. localhost:8080, or :8080 for every interface", flagName, addr, why)
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s %s: the port is already in use (another chat server?); stop that program or choose another port with %s", flagName, addr, flagName)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s %s: permission denied: ports below 1024 need privileges; choose a port above 1023 with %s, or serve it through a reverse proxy", flagName, addr, flagName)
	}
	return nil, fmt.Errorf("%s %s: %w", flagName, addr, err)
}

// explainStoreError turns a failure to open the history into what to do
// about it. The path is said once.
func explainStoreError(dir string, err error) error {
	if errors.Is(err, chat.ErrStoreLocked) {
		return fmt.Errorf("the data directory %s is in use by another chat server (its history.db is locked); stop that server, or give this one its own directory with -data DIR (or -data \"\" to keep history in memory only)", dir)
	}
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot use the data directory %s: permission denied; let the user running chat write there, or choose another directory with -data DIR (or CHAT_DATA=DIR)", dir)
	}
	return fmt.Errorf("cannot use the data directory %s: %v; fix it, or choose another directory with -data DIR (or -data \"\" to keep history in memory only)", dir, cause)
}

// reachableURLs lists the URLs a person can open for a listener: the
// loopback one first (it is printed as "open ... in a browser"), then, for
// a wildcard address, one per interface address.
func reachableURLs(scheme string, addr net.Addr) []string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return []string{scheme + "://" + addr.String() + "/"}
	}
	u := func(h string) string { return scheme + "://" + net.JoinHostPort(h, port) + "/" }
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		if ip != nil && ip.IsLoopback() {
			return []string{u("localhost")}
		}
		return []string{u(host)}
	}
	out := []string{u("localhost")}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ip.To4() != nil && ipn.IP.To4() == nil {
				continue // a 0.0.0.0 listener does not take IPv6
			}
			out = append(out, u(ipn.IP.String()))
		}
	}
	return out
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	if o.dataErr != nil && o.history > 0 && o.cluster.nats == "" {
		return o.dataErr
	}
	secret, err := authSecret(o)
	if err != nil {
		return err
	}
	var cert *certificate
	if o.tlsCert != "" || o.tlsKey != "" {
		if cert, err = loadCertificate(o.tlsCert, o.tlsKey); err != nil {
			return err
		}
	}
	// The addresses first: a mistake there is found at once, before the
	// history file is opened (and possibly waited for).
	ln, err := listenOn("-addr", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	var wsLn net.Listener
	if o.wsAddr != "" {
		if wsLn, err = listenOn("-ws-addr", o.wsAddr); err != nil {
			return err
		}
		defer wsLn.Close()
	}
	var metricsLn net.Listener
	if o.metricsAddr != "" {
		if metricsLn, err = listenOn("-metrics-addr", o.metricsAddr); err != nil {
			return err
		}
		defer metricsLn.Close()
	}
	// Cluster mode: NATS last, after every local mistake has been found,
	// because reaching it may take a while.
	eng, err := o.cluster.open(ctx, o.history, log)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Hub: chat.Config{
			Engine:       eng,
			MaxMessage:   o.maxMessage,
			Rate:         o.rate,
			Burst:        o.burst,
			Queue:        o.queue,
			History:      o.history,
			PingInterval: o.ping,
			WriteTimeout: o.writeTimeout,
			AnnounceMax:  o.announceMax,
		},
		DataDir:          o.data,
		AllowOrigins:     o.origins,
		MaxConns:         o.maxConns,
		CloseTimeout:     o.closeTimeout,
		ShutdownTimeout:  o.shutdown,
		Logger:           log,
		TrustedProxies:   o.trustedProxies,
		MaxConnsPerIP:    o.maxConnsPerIP,
		MetricsElsewhere: metricsLn != nil,
		AuthSecret:       secret,
		AuthLoginURL:     o.authLoginURL,
		Backend:          o.backend,
	})
	if err != nil {
		return explainStoreError(o.data, err)
	}
	scheme := "http"
	if cert != nil {
		scheme = "https"
		ln = tls.NewListener(ln, cert.config())
		if wsLn != nil {
			wsLn = tls.NewListener(wsLn, cert.config())
		}
		log.Info("TLS certificate loaded", cert.logAttrs()...)
	}
	// SIGHUP reloads the certificate (systemd's ExecReload, or after a
	// renewal); without TLS there is nothing to reload, and a stray SIGHUP
	// must not stop a service.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	go func() {
		for {
			select {
			case <-hup:
				if cert == nil {
					log.Info("SIGHUP: nothing to reload (no -tls-cert)")
					continue
				}
				cert.reloadLogged(log)
			case <-hctx.Done():
				return
			}
		}
	}()
	// Listening before the address is printed: whoever reads it may
	// connect at once.
	if err := srv.Listen(ln, wsLn); err != nil {
		return err
	}
	urls := reachableURLs(scheme, ln.Addr())
	data := o.data
	switch {
	case o.cluster.nats != "":
		data = "(NATS JetStream)"
	case data == "" || o.history == 0:
		data = "(memory only)"
	}
	attrs := []any{"url", urls[0], "data", data, "history", o.history, "backend", o.backend}
	if o.cluster.nats != "" {
		attrs = append(attrs, "nats", o.cluster.nats)
	}
	if wsLn != nil {
		attrs = append(attrs, "ws_addr", wsLn.Addr().String())
	}
	log.Info("chat listening", attrs...)
	fmt.Fprintf(stdout, "chat: open %s in a browser\n", urls[0])
	if len(urls) > 1 {
		fmt.Fprintf(stdout, "chat: also reachable at %s\n", strings.Join(urls[1:], " "))
	} else if ip := listenIP(ln.Addr()); ip != nil && ip.IsLoopback() {
		fmt.Fprintf(stdout, "chat: only this machine can connect; to serve others, listen on every interface with -addr :%s (or put it behind a reverse proxy)\n", portOf(ln.Addr()))
	}
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(metricsLn)
		defer ms.Close()
		fmt.Fprintf(stdout, "chat: metrics at http://%s/metrics\n", metricsLn.Addr())
	}
	return srv.Serve(ctx, nil, nil)
}

// authSecret returns the sign-in secret from -auth-secret or
// -auth-secret-file, or nil when sign-in is off.
func authSecret(o *options) ([]byte, error) {
	secret := o.authSecret
	switch {
	case o.authSecret != "" && o.authSecretFile != "":
		return nil, errors.New("-auth-secret and -auth-secret-file both given: use one")
	case o.authSecretFile != "":
		b, err := os.ReadFile(o.authSecretFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-secret-file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if secret == "" {
		return nil, nil
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("the sign-in secret is %d bytes; use at least 32 random bytes, e.g. from: openssl rand -base64 48", len(secret))
	}
	return []byte(secret), nil
}

func listenIP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
