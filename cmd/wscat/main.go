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
	"os"
	"os/signal"
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
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("wscat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wscat [flags] ws://host:port/path")
		fs.PrintDefaults()
	}
	env := cli.Env{FlagSet: fs, Prefix: "WSCAT_"}
	env.Bool(&cfg.echo, "echo", false, "send every received message back unchanged until the server closes")
	env.Var(&cfg.protocols, "protocol", "subprotocol to offer (comma-separated or repeated)")
	env.Var(&cfg.headers, "header", "extra request header 'Name: value' (repeatable)")
	env.Bool(&cfg.insecure, "insecure", false, "do not verify the server's TLS certificate (wss:// test servers)")
	env.Int64(&cfg.maxLength, "max-length", websocket.DefaultMaxLength, "largest message accepted, in bytes (-1: no limit)")
	env.Duration(&cfg.timeout, "timeout", 10*time.Second, "bound on connecting and on the handshake")
	cfg.compress.Register(&env)
	if err := env.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, errors.New("give exactly one URL, such as ws://127.0.0.1:9001/")
	}
	cfg.url = fs.Arg(0)
	if cfg.maxLength == 0 {
		return nil, errors.New("-max-length must be positive, or -1 for no limit")
	}
	return cfg, nil
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
