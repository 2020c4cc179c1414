package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// lockedBuffer collects the server's log and reports the URL it listens on.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

var urlRE = regexp.MustCompile(`url=(ws://\S+)`)

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if m := urlRE.FindSubmatch(p); m != nil {
		select {
		case b.url <- string(m[1]):
		default:
		}
	}
	return len(p), nil
}

func startEcho(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{url: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("wsecho did not shut down")
		}
	})
	select {
	case u := <-logs.url:
		return u
	case err := <-done:
		t.Fatalf("wsecho exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("wsecho did not start")
	}
	return ""
}

func TestEchoKeepsTypes(t *testing.T) {
	for _, api := range []string{"blocking", "event"} {
		t.Run(api, func(t *testing.T) { testEchoKeepsTypes(t, api) })
	}
}

func testEchoKeepsTypes(t *testing.T, api string) {
	url := startEcho(t, "-api", api, "-protocols", "a,b", "-header", "X-Echo: yes", "-max-length", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Protocols: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocol() != "b" || resp.Header.Get("X-Echo") != "yes" {
		t.Fatalf("protocol %q, headers %v", c.Protocol(), resp.Header)
	}
	for _, m := range []struct {
		typ  websocket.MessageType
		data string
	}{{websocket.TextMessage, "héllo"}, {websocket.BinaryMessage, "\x00\xff"}, {websocket.TextMessage, ""}, {websocket.BinaryMessage, strings.Repeat("\x01", 100)}} {
		c.Write(ctx, m.typ, []byte(m.data))
		typ, got, err := c.Read(ctx)
		if err != nil || typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, got, err)
		}
	}
	// -max-length 100: a larger message closes with 1009.
	c.Write(ctx, websocket.BinaryMessage, make([]byte, 101))
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("over -max-length: %v", err)
	}
}

func TestEchoCompression(t *testing.T) {
	for _, api := range []string{"blocking", "event"} {
		t.Run(api, func(t *testing.T) { testEchoCompression(t, api) })
	}
}

func testEchoCompression(t *testing.T, api string) {
	url := startEcho(t, "-api", api, "-compress", "-no-context-takeover")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Compression: &websocket.CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q", ext)
	}
	msg := strings.Repeat("compress me ", 200)
	c.Write(ctx, websocket.TextMessage, []byte(msg))
	if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
		t.Fatalf("compressed echo: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-max-length", "0"},
		{"-max-length", "lots"},
		{"-header", "no colon"},
		{"stray"},
		{"-compress-level", "42", "-compress"},
		{"-idle-timeout", "0"},
		{"-max-header-bytes", "-1"},
		{"-read-header-timeout", "soon"},
	} {
		err := run(context.Background(), args, io.Discard)
		if err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestHelpListsEveryFlag checks that -help names every registered flag
// with its environment variable, shows the non-zero defaults and examples.
func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-help"}, &out); err != nil {
		t.Fatalf("-help: %v", err)
	}
	help := out.String()
	env := newFlags(&config{}, io.Discard)
	count := 0
	env.FlagSet.VisitAll(func(f *flag.Flag) {
		count++
		if !regexp.MustCompile(`\n  -` + regexp.QuoteMeta(f.Name) + `( \S+)?\n`).MatchString(help) {
			t.Errorf("-help does not list -%s", f.Name)
		}
		if v := env.VarName(f.Name); !strings.Contains(help, "(env "+v+")") {
			t.Errorf("-help does not name %s for -%s", v, f.Name)
		}
	})
	if count < 12 {
		t.Errorf("only %d flags registered", count)
	}
	for _, s := range []string{"Usage: wsecho", "(default 16384)", "(default 1m0s)", "(default 10s)", "(default blocking)", "Examples:", "WSECHO_API=event"} {
		if !strings.Contains(help, s) {
			t.Errorf("-help lacks %q:\n%s", s, help)
		}
	}
}

// TestBadAPI checks that a wrong -api value says what the choices are.
func TestBadAPI(t *testing.T) {
	for _, args := range [][]string{{"-api", "async"}, {"-api", ""}} {
		err := run(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `-api must be "blocking"`) || !strings.Contains(err.Error(), `"event"`) {
			t.Errorf("%q: %v", args, err)
		}
	}
	t.Setenv("WSECHO_API", "callbacks")
	if err := run(context.Background(), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "WSECHO_API") {
		t.Errorf("WSECHO_API=callbacks: %v", err)
	}
}

// hostOf returns the host:port of a ws:// URL.
func hostOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// rawRequest sends one HTTP/1.1 request on a new TCP connection and reads
// the response, leaving the connection open for the caller.
func rawRequest(t *testing.T, addr, extraHeader string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n"+extraHeader+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, resp
}

// TestIdleKeepAliveClosed checks that the server closes a keep-alive HTTP
// connection left idle after a request (it once kept them all forever).
func TestIdleKeepAliveClosed(t *testing.T) {
	for _, api := range []string{"blocking", "event"} {
		t.Run(api, func(t *testing.T) {
			addr := hostOf(t, startEcho(t, "-api", api, "-idle-timeout", "100ms"))
			c, resp := rawRequest(t, addr, "")
			// A plain GET is refused (400) but the connection stays
			// usable for another request: it is now idle.
			if resp.StatusCode != http.StatusBadRequest || resp.Close {
				t.Fatalf("plain GET: %s, close %v", resp.Status, resp.Close)
			}
			// The server must close it well within the 30 s deadline set
			// by rawRequest; a read that times out means it never did.
			n, err := c.Read(make([]byte, 1))
			if n != 0 || !errors.Is(err, io.EOF) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the idle keep-alive connection was still open after 30s (-idle-timeout 100ms)")
				}
				t.Fatalf("read on the idle connection: %d bytes, %v", n, err)
			}
		})
	}
}

// TestOversizedHeader checks that a request header block over
// -max-header-bytes is refused with 431 before any handshake.
func TestOversizedHeader(t *testing.T) {
	addr := hostOf(t, startEcho(t, "-max-header-bytes", "1024"))
	// net/http allows 4 KiB over MaxHeaderBytes: 8 KiB is over in any case.
	_, resp := rawRequest(t, addr, "X-Big: "+strings.Repeat("b", 8<<10)+"\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("8 KiB header with -max-header-bytes 1024: %s", resp.Status)
	}
	// The default bound, 16 KiB, refuses 32 KiB and takes a normal handshake.
	addr = hostOf(t, startEcho(t))
	if _, resp = rawRequest(t, addr, "X-Big: "+strings.Repeat("b", 32<<10)+"\r\n"); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("32 KiB header by default: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatalf("a normal handshake: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
}
