// Command wscat is the seed's client as a command. It connects to a
// WebSocket URL, sends each line of standard input as a text message and
// prints each message received (text as is, binary as hex), one per line.
// When standard input ends it closes the connection (1000) and exits once
// the server has answered, so it works in pipes:
//
//	echo hello | wscat ws://127.0.0.1:9001/
//
// With -echo it sends every message it receives back unchanged (text stays
// text, binary stays binary) until the server closes, which is what client
// conformance suites drive.
//
// It connects through the proxy that HTTP_PROXY (ws://), HTTPS_PROXY
// (wss://) and NO_PROXY name, as Go's net/http does, or through the one
// -proxy gives (http://, socks5:// or socks5h://, with user:password@ if
// the proxy wants them; "none" connects directly). -v prints the proxy, the
// subprotocol and the extensions to standard error once connected. Flags
// may come before or after the URL.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wscat:", err)
	}
	os.Exit(code)
}

type config struct {
	url       string
	echo      bool
	protocols cli.List
	headers   cli.Headers
	insecure  bool
	maxLength int64
	timeout   time.Duration
	compress  cli.Compression
	verbose   bool
	proxy     string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("wscat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wscat [flags] ws://host:port/path   (or wss://; flags may also follow the URL)")
		fs.PrintDefaults()
	}
	env := cli.Env{FlagSet: fs, Prefix: "WSCAT_"}
	env.Bool(&cfg.echo, "echo", false, "send every received message back unchanged until the server closes")
	env.Var(&cfg.protocols, "protocol", "subprotocol to offer (comma-separated or repeated)")
	env.Var(&cfg.headers, "header", "extra request header 'Name: value' (repeatable)")
	env.Bool(&cfg.insecure, "insecure", false, "do not verify the server's TLS certificate (wss:// test servers)")
	env.Int64(&cfg.maxLength, "max-length", websocket.DefaultMaxLength, "largest message accepted, in bytes (-1: no limit)")
	env.Duration(&cfg.timeout, "timeout", 10*time.Second, "bound on connecting and on the handshake")
	env.Bool(&cfg.verbose, "v", false, "print the proxy, subprotocol and extensions to standard error once connected")
	env.String(&cfg.proxy, "proxy", "", "proxy URL (http://, socks5:// or socks5h://, with user:password@ if needed); "+
		"empty: from HTTP_PROXY, HTTPS_PROXY and NO_PROXY; none: connect directly")
	cfg.compress.Register(&env)
	if err := env.Parse(args); err != nil {
		return nil, err
	}
	urls, err := parseInterspersed(fs)
	if err != nil {
		return nil, err
	}
	if len(urls) != 1 {
		fs.Usage()
		return nil, fmt.Errorf("give exactly one URL, such as ws://127.0.0.1:9001/ (got %d: %q)", len(urls), urls)
	}
	if cfg.url, err = checkURL(urls[0], stderr); err != nil {
		return nil, err
	}
	if err := checkProxy(cfg.proxy); err != nil {
		return nil, err
	}
	if cfg.maxLength == 0 {
		return nil, errors.New("-max-length must be positive, or -1 for no limit")
	}
	return cfg, nil
}

// parseInterspersed returns the arguments that are not flags, parsing the
// flags among and after them too: Go's flag package stops at the first
// non-flag, and "wscat URL -v" should work. After "--" all are arguments.
func parseInterspersed(fs *flag.FlagSet) ([]string, error) {
	var args []string
	for fs.NArg() > 0 {
		args = append(args, fs.Arg(0))
		rest := fs.Args()[1:]
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if n := len(rest) - fs.NArg(); n > 0 && rest[n-1] == "--" {
			return append(args, fs.Args()...), nil
		}
	}
	return args, nil
}

// checkURL checks that s is a ws:// or wss:// URL. An http:// or https:// URL
// is taken as the ws:// or wss:// one at the same place, with a note on
// stderr; anything else is refused with what to type instead.
func checkURL(s string, stderr io.Writer) (string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	switch strings.ToLower(scheme) {
	case "ws", "wss":
		if ok {
			return s, nil
		}
	case "http", "https":
		if ok {
			ws := "ws"
			if strings.EqualFold(scheme, "https") {
				ws = "wss"
			}
			fmt.Fprintf(stderr, "wscat: note: %s is an HTTP URL; connecting to %s://%s\n", s, ws, rest)
			return ws + "://" + rest, nil
		}
	}
	if ok {
		return "", fmt.Errorf("URL %q: scheme %q is not WebSocket; use ws:// (or wss:// for TLS)", s, scheme)
	}
	return "", fmt.Errorf("URL %q has no scheme; try ws://%s (or wss://%s for TLS)", s, s, s)
}

// checkProxy refuses a -proxy value the library could not use, before
// anything is dialed.
func checkProxy(s string) error {
	if s == "" || s == "none" {
		return nil
	}
	if !strings.Contains(s, "://") {
		return fmt.Errorf("-proxy %q has no scheme; try http://%s (or socks5://%s)", s, s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("-proxy %q: %v", s, err)
	}
	switch u.Scheme {
	case "http", "socks5", "socks5h":
	default:
		return fmt.Errorf("-proxy %q: scheme %q is not supported; use http://, socks5:// or socks5h://", u.Redacted(), u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("-proxy %q has no host", u.Redacted())
	}
	return nil
}

// proxyFunc returns the ClientOptions.Proxy for the -proxy value, which
// records in *used the proxy it picks, for -v.
func proxyFunc(s string, used **url.URL) func(*http.Request) (*url.URL, error) {
	pick := http.ProxyFromEnvironment
	switch s {
	case "":
	case "none":
		pick = func(*http.Request) (*url.URL, error) { return nil, nil }
	default:
		u, _ := url.Parse(s) // checked by checkProxy
		pick = http.ProxyURL(u)
	}
	return func(r *http.Request) (*url.URL, error) {
		u, err := pick(r)
		*used = u
		return u, err
	}
}

// run returns the process exit code: 0 after a closing handshake, 1 when
// the connection failed or dropped, 2 for bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := &websocket.ClientOptions{
		MaxLength:   cfg.maxLength,
		Protocols:   cfg.protocols,
		Header:      cfg.headers.Header(),
		Compression: cfg.compress.Options(),
	}
	if cfg.insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	var proxy *url.URL
	opts.Proxy = proxyFunc(cfg.proxy, &proxy)
	ws := websocket.NewClient(cfg.url, opts)
	out := bufio.NewWriter(stdout)
	type closed struct {
		code   websocket.StatusCode
		reason string
	}
	done := make(chan closed, 1)
	ws.OnMessage(func(m websocket.Message) {
		if cfg.echo {
			var err error
			if m.Type == websocket.TextMessage {
				err = ws.SendText(string(m.Data))
			} else {
				err = ws.SendBinary(m.Data)
			}
			if err != nil {
				log.Warn("echo failed", "err", err)
			}
			return
		}
		if m.Type == websocket.TextMessage {
			out.Write(m.Data)
		} else {
			fmt.Fprintf(out, "[binary %d bytes] %s", len(m.Data), hex.EncodeToString(m.Data))
		}
		out.WriteByte('\n')
		out.Flush()
	})
	ws.OnError(func(err error) { log.Warn("protocol error", "err", err) })
	ws.OnClose(func(code websocket.StatusCode, reason string) { done <- closed{code, reason} })

	dialCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	err = ws.StartContext(dialCtx)
	cancel()
	if err != nil {
		return 1, err
	}
	if cfg.verbose {
		// The handlers may already be printing messages, but to stdout.
		fmt.Fprintf(stderr, "connected: %s\n", cfg.url)
		if proxy != nil {
			fmt.Fprintf(stderr, "proxy: %s\n", proxy.Redacted())
		}
		fmt.Fprintf(stderr, "subprotocol: %s\n", orNone(ws.Protocol()))
		fmt.Fprintf(stderr, "extensions: %s\n", orNone(ws.Extensions()))
	}
	if !cfg.echo {
		go func() {
			sc := bufio.NewScanner(stdin)
			sc.Buffer(make([]byte, 64<<10), int(min(cfg.maxLength, 1<<30)))
			for sc.Scan() {
				if err := ws.SendText(sc.Text()); err != nil {
					return
				}
			}
			ws.Close(websocket.StatusNormalClosure, "")
		}()
	}
	select {
	case c := <-done:
		fmt.Fprintf(stderr, "closed: %v %s\n", c.code, c.reason)
		if c.code == websocket.StatusAbnormalClosure {
			return 1, nil
		}
		return 0, nil
	case <-ctx.Done():
		ws.Close(websocket.StatusGoingAway, "client interrupted")
		<-ws.Done()
		return 1, nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
