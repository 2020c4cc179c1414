// Command chat is a self-hostable chat server: the websocket-driver
// tutorial's chat (random user-N nicknames, "nick: message" to everyone,
// " .... nick has left.") grown into rooms, commands, persistent history, a
// JSON subprotocol and an embedded browser client. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/server"
)

func main() {
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
	history, maxMessage, queue int
	rate                       float64
	burst, maxConns            int
	announceMax                int
	origins                    originList
	ping, writeTimeout         time.Duration
	closeTimeout, shutdown     time.Duration
	logLevel, logFormat        string
	cluster                    clusterOptions
}

// envNames maps each flag to the environment variable that sets its default.
var envNames = map[string]string{}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, envName string) string {
		envNames[name] = envName
		return " (env " + envName + ")"
	}
	fs.StringVar(&o.addr, "addr", ":8080", "address for the page, /healthz, /metrics and the WebSocket"+env("addr", "CHAT_ADDR"))
	fs.StringVar(&o.wsAddr, "ws-addr", "", "if set, also serve the WebSocket alone on this address (the seed's two-port layout, e.g. :12345)"+env("ws-addr", "CHAT_WS_ADDR"))
	fs.StringVar(&o.data, "data", defaultDataDir(getenv), "directory for the history database (history.db), created if missing; empty keeps history in memory only"+env("data", "CHAT_DATA"))
	fs.IntVar(&o.history, "history", 100, "messages kept per room and replayed to newcomers; 0 turns history off"+env("history", "CHAT_HISTORY"))
	fs.IntVar(&o.maxMessage, "max-message", 4096, "largest message text in bytes; longer ones are refused with an error; 0 means unlimited"+env("max-message", "CHAT_MAX_MESSAGE"))
	fs.Float64Var(&o.rate, "rate", 5, "messages per second allowed per connection (excess is dropped with a notice); 0 means unlimited"+env("rate", "CHAT_RATE"))
	fs.IntVar(&o.burst, "burst", 10, "messages a connection may send at once before -rate applies; 0 means -rate rounded up"+env("burst", "CHAT_BURST"))
	fs.IntVar(&o.queue, "queue", 256, "messages held for a slow client before it is disconnected (close 1008); 0 means unlimited"+env("queue", "CHAT_QUEUE"))
	fs.IntVar(&o.announceMax, "announce-max", 0, "send join/leave notices only in rooms with at most this many users; 0 means always"+env("announce-max", "CHAT_ANNOUNCE_MAX"))
	fs.IntVar(&o.maxConns, "max-conns", 0, "most WebSocket connections at once (more get HTTP 503); 0 means unlimited"+env("max-conns", "CHAT_MAX_CONNS"))
	fs.Var(&o.origins, "allow-origin", "allow browser pages from this origin host[:port] (path.Match pattern, e.g. chat.example.com or *.example.com); repeatable; the server's own page is always allowed"+env("allow-origin", "CHAT_ALLOW_ORIGIN, comma-separated"))
	fs.DurationVar(&o.ping, "ping", 30*time.Second, "interval between heartbeat pings; a peer silent for two intervals is dropped; 0 turns pings off"+env("ping", "CHAT_PING"))
	fs.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "longest a write to one client may take before it is dropped; 0 means no limit"+env("write-timeout", "CHAT_WRITE_TIMEOUT"))
	fs.DurationVar(&o.closeTimeout, "close-timeout", 5*time.Second, "longest wait for a client's answer to a close frame; 0 means the library's default (5s)"+env("close-timeout", "CHAT_CLOSE_TIMEOUT"))
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, longest wait for clients to take their close frame before they are dropped; 0 means no limit"+env("shutdown-timeout", "CHAT_SHUTDOWN_TIMEOUT"))
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error"+env("log-level", "CHAT_LOG_LEVEL"))
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json"+env("log-format", "CHAT_LOG_FORMAT"))
	addClusterFlags(fs, &o.cluster, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat [flags]\n\nA chat server with a browser client; open the printed URL.\n"+
			"Every flag's default can be set by the environment variable named with it;\na flag on the command line wins over the environment.\n\n")
		fmt.Fprint(fs.Output(), clusterHelp)
		fs.PrintDefaults()
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
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	switch {
	case o.history < 0, o.maxMessage < 0, o.queue < 0, o.maxConns < 0, o.rate < 0, o.announceMax < 0, o.burst < 0:
		return nil, errors.New("-history, -max-message, -queue, -max-conns, -announce-max, -burst and -rate must not be negative")
	}
	if err := o.cluster.check(); err != nil {
		return nil, err
	}
	if o.burst == 0 {
		o.burst = max(1, int(math.Ceil(o.rate)))
	}
	return o, nil
}

// defaultDataDir follows the XDG base directory convention, so a server
// started from any directory finds its history again.
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "wsdriver-chat")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "wsdriver-chat")
	}
	return "chat-data"
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

// displayURL turns a listen address into a URL a person can open.
func displayURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
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
		DataDir:         o.data,
		AllowOrigins:    o.origins,
		MaxConns:        o.maxConns,
		CloseTimeout:    o.closeTimeout,
		ShutdownTimeout: o.shutdown,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		srv.Hub().Shutdown(context.Background())
		return err
	}
	var wsLn net.Listener
	if o.wsAddr != "" {
		if wsLn, err = net.Listen("tcp", o.wsAddr); err != nil {
			ln.Close()
			srv.Hub().Shutdown(context.Background())
			return err
		}
	}
	url := displayURL(ln.Addr())
	attrs := []any{"url", url, "data", o.data, "history", o.history, "nats", o.cluster.nats}
	if wsLn != nil {
		attrs = append(attrs, "ws_addr", wsLn.Addr().String())
	}
	log.Info("chat listening", attrs...)
	fmt.Fprintf(stdout, "chat: open %s in a browser\n", url)
	return srv.Serve(ctx, ln, wsLn)
}
