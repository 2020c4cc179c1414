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
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
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

// styles are the ways wsecho can serve: each API on each backend, and the
// event API with its handlers on the event loop.
var styles = []struct {
	name string
	args []string
}{
	{"blocking", []string{"-api", "blocking"}},
	{"event", []string{"-api", "event"}},
	{"eventloop/blocking", []string{"-backend", "eventloop", "-api", "blocking"}},
	{"eventloop/event", []string{"-backend", "eventloop", "-api", "event"}},
	{"eventloop/event-on-loop", []string{"-backend", "eventloop", "-api", "event", "-handlers-on-loop"}},
}

func TestEchoKeepsTypes(t *testing.T) {
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) { testEchoKeepsTypes(t, st.args) })
	}
}

func testEchoKeepsTypes(t *testing.T, style []string) {
	url := startEcho(t, append(style, "-protocols", "a,b", "-header", "X-Echo: yes", "-max-length", "100")...)
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
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) { testEchoCompression(t, st.args) })
	}
}

func testEchoCompression(t *testing.T, style []string) {
	url := startEcho(t, append(style, "-compress", "-no-context-takeover")...)
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

// TestBadBackendFlags checks that a flag that does not apply to the
// chosen backend or API is refused with a message saying what to change.
func TestBadBackendFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-backend", "nginx"}, `-backend must be "http" (net/http) or "eventloop"`},
		{[]string{"-handlers-on-loop"}, "-handlers-on-loop applies only to -backend eventloop"},
		{[]string{"-backend", "http", "-api", "event", "-handlers-on-loop"}, "add -backend eventloop or drop -handlers-on-loop"},
		{[]string{"-backend", "eventloop", "-handlers-on-loop"}, "-handlers-on-loop applies only to -api event"},
		{[]string{"-backend", "eventloop", "-idle-timeout", "1m"}, "-idle-timeout does not apply to -backend eventloop"},
	} {
		err := run(context.Background(), c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	t.Setenv("WSECHO_BACKEND", "eventloop")
	t.Setenv("WSECHO_IDLE_TIMEOUT", "5s")
	if err := run(context.Background(), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "-idle-timeout does not apply") {
		t.Errorf("WSECHO_BACKEND=eventloop WSECHO_IDLE_TIMEOUT=5s: %v", err)
	}
}

// TestMain lets the test binary run wsecho's main, so that tests can
// start the program as a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("RUN_WSECHO_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startProcess runs wsecho as a process with args and returns it with
// its stderr, read line by line.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RUN_WSECHO_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, bufio.NewScanner(stderr)
}

// waitExit waits for cmd to end and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("wsecho did not exit")
		return -1
	}
}

// TestEventLoopProcess runs wsecho -backend eventloop as a process: it
// echoes, and on SIGTERM says goodbye (1001) to its connections and exits
// with status 0, with either API.
func TestEventLoopProcess(t *testing.T) {
	for _, st := range styles[2:] {
		t.Run(st.name, func(t *testing.T) {
			cmd, stderr := startProcess(t, append(st.args, "-addr", "127.0.0.1:0")...)
			lines := make(chan string, 64)
			go func() {
				defer close(lines)
				for stderr.Scan() {
					lines <- stderr.Text()
				}
			}()
			var url string
			for url == "" {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("wsecho exited before listening")
					}
					if m := urlRE.FindStringSubmatch(l); m != nil {
						if !strings.Contains(l, "backend=eventloop") {
							t.Fatalf("listening line does not name the backend: %s", l)
						}
						url = m[1]
					}
				case <-time.After(30 * time.Second):
					t.Fatal("wsecho did not start")
				}
			}
			go func() {
				for range lines {
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.Repeat("ü", 40000) // 80 KB: more than one read
			if err := c.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if typ, got, err := c.Read(ctx); err != nil || typ != websocket.TextMessage || string(got) != msg {
				t.Fatalf("echo: %v %d bytes %v", typ, len(got), err)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("after SIGTERM: %v, want a close with 1001", err)
			}
			if code := waitExit(t, cmd); code != 0 {
				t.Fatalf("exit status %d after SIGTERM", code)
			}
		})
	}
}

// TestBadCombinationProcess checks that the program refuses a flag that
// does not apply, on stderr and with exit status 2, before listening.
func TestBadCombinationProcess(t *testing.T) {
	cmd, stderr := startProcess(t, "-addr", "127.0.0.1:0", "-api", "event", "-handlers-on-loop")
	var out strings.Builder
	for stderr.Scan() {
		out.WriteString(stderr.Text() + "\n")
	}
	if code := waitExit(t, cmd); code != 2 {
		t.Fatalf("exit status %d, want 2; stderr:\n%s", code, out.String())
	}
	if want := "wsecho: -handlers-on-loop applies only to -backend eventloop"; !strings.HasPrefix(out.String(), want) || strings.Contains(out.String(), "listening") {
		t.Fatalf("stderr %q, want it to start with %q", out.String(), want)
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
	t.Run("eventloop", func(t *testing.T) {
		// No keep-alive there: a plain request's response ends the
		// connection at once.
		addr := hostOf(t, startEcho(t, "-backend", "eventloop"))
		c, resp := rawRequest(t, addr, "")
		if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Fatalf("plain GET: %s, close %v", resp.Status, resp.Close)
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("read after the response: %d bytes, %v, want EOF", n, err)
		}
	})
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
	for _, backend := range []string{"http", "eventloop"} {
		t.Run(backend, func(t *testing.T) { testOversizedHeader(t, backend) })
	}
}

func testOversizedHeader(t *testing.T, backend string) {
	addr := hostOf(t, startEcho(t, "-backend", backend, "-max-header-bytes", "1024"))
	// net/http allows 4 KiB over MaxHeaderBytes: 8 KiB is over in any case.
	_, resp := rawRequest(t, addr, "X-Big: "+strings.Repeat("b", 8<<10)+"\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("8 KiB header with -max-header-bytes 1024: %s", resp.Status)
	}
	// Between the bound and what net/http allows over it: the event-loop
	// backend has no such slack.
	if backend == "eventloop" {
		_, resp := rawRequest(t, addr, "X-Big: "+strings.Repeat("b", 1<<10)+"\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("1 KiB header with -max-header-bytes 1024: %s", resp.Status)
		}
	}
	// The default bound, 16 KiB, refuses 32 KiB and takes a normal handshake.
	addr = hostOf(t, startEcho(t, "-backend", backend))
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

// TestReadHeaderTimeout checks that -read-header-timeout closes a
// connection that sends no request, on both backends.
func TestReadHeaderTimeout(t *testing.T) {
	for _, backend := range []string{"http", "eventloop"} {
		t.Run(backend, func(t *testing.T) {
			addr := hostOf(t, startEcho(t, "-backend", backend, "-read-header-timeout", "100ms"))
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\n") // and never the rest
			// Well within this deadline, which is half the default
			// timeout, the server must have given up.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection was still open after 5s (-read-header-timeout 100ms)")
			}
		})
	}
}
