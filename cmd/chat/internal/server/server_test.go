package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

type testServer struct {
	t      *testing.T
	srv    *Server
	url    string // http://127.0.0.1:port
	wsURL  string // ws:// on the WebSocket-only port, or on the main port
	cancel context.CancelFunc
	done   chan error
}

// backends are the servers the chat runs on; the tests that start a chat
// run on each (eachBackend).
var backends = []string{BackendHTTP, BackendEventLoop}

// eachBackend runs test once per backend, as a subtest named after it.
func eachBackend(t *testing.T, test func(t *testing.T, backend string)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { test(t, b) })
	}
}

func start(t *testing.T, cfg Config, twoPorts bool) *testServer {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wsLn net.Listener
	ts := &testServer{t: t, srv: srv, url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	ts.wsURL = "ws://" + ln.Addr().String()
	if twoPorts {
		if wsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		ts.wsURL = "ws://" + wsLn.Addr().String()
	}
	if err := srv.Listen(ln, wsLn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- srv.Serve(ctx, nil, nil) }()
	t.Cleanup(func() { ts.stop() })
	return ts
}

func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err
		return err
	case <-time.After(15 * time.Second):
		ts.t.Fatal("server did not stop within 15s")
		return nil
	}
}

func dial(t *testing.T, url string, opts *websocket.ClientOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (ts *testServer) waitClients(n int) {
	ts.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, _ := ts.srv.Hub().Counts(); c == n {
			return
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("want %d clients connected", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSeedOverWebSocket(t *testing.T) { eachBackend(t, testSeedOverWebSocket) }

func testSeedOverWebSocket(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{History: 0}}, false)
	for _, path := range []string{"/", "/chat"} {
		a := dial(t, ts.wsURL+path, nil)
		// The handshake ends before the server has put a in the room;
		// b's join notice is only for those already there.
		ts.waitClients(1)
		b := dial(t, ts.wsURL+path, nil)
		joined := read(t, a)
		nb, ok := strings.CutPrefix(joined, " .... ")
		nb, ok2 := strings.CutSuffix(nb, " has joined.")
		if !ok || !ok2 || !strings.HasPrefix(nb, "user-") {
			t.Fatalf("join notice %q", joined)
		}
		write(t, b, "hello")
		if got := read(t, b); got != nb+": hello" {
			t.Fatalf("%s: sender got %q", path, got)
		}
		if got := read(t, a); got != nb+": hello" {
			t.Fatalf("%s: other got %q", path, got)
		}
		b.Close(websocket.StatusNormalClosure, "")
		if got := read(t, a); got != " .... "+nb+" has left." {
			t.Fatalf("%s: leave notice %q", path, got)
		}
		a.Close(websocket.StatusNormalClosure, "")
		ts.waitClients(0)
	}
}

func TestPageAndEndpoints(t *testing.T) { eachBackend(t, testPageAndEndpoints) }

func testPageAndEndpoints(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{History: 10}}, false)
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, `<meta name="chat-ws-port" content="">`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("page: %d %q", resp.StatusCode, resp.Header)
	}
	if resp, body = get("/static/app.js"); resp.StatusCode != 200 || !strings.Contains(body, "chat.v1.json") {
		t.Fatalf("app.js: %d", resp.StatusCode)
	}
	if resp, body = get("/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	c := dial(t, ts.wsURL+"/chat/dev", nil)
	write(t, c, "m")
	read(t, c)
	// The writer counts a message after its write returned, which can be
	// after the client read it: look again for a while.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, body = get("/metrics")
		missing := ""
		for _, want := range []string{"chat_connections 1\n", "chat_rooms 1\n", "chat_messages_in_total 1\n", "chat_messages_out_total 1\n", `chat_drops_total{reason="slow_consumer"} 0`} {
			if !strings.Contains(body, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", missing, body)
		}
	}
	if resp, _ = get("/chat/dev"); resp.Request.URL.Fragment != "dev" {
		t.Fatalf("/chat/dev without upgrade should redirect to /#dev, got %s", resp.Request.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := websocket.Dial(ctx, ts.wsURL+"/chat/Bad%20Room", nil)
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Fatalf("bad room: %v", err)
	}
}

func TestOriginPolicy(t *testing.T) { eachBackend(t, testOriginPolicy) }

func testOriginPolicy(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, AllowOrigins: []string{"*.example.com"}}, true)
	pagePort := strings.TrimPrefix(ts.url, "http://127.0.0.1:")
	try := func(origin string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, ts.wsURL+"/chat", &websocket.ClientOptions{Header: h})
		if err == nil {
			c.CloseNow()
			return 101
		}
		if resp == nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		return resp.StatusCode
	}
	for origin, want := range map[string]int{
		"":                                101, // not a browser
		"http://localhost:" + pagePort:    101, // the server's own page on the other port
		"http://127.0.0.1:" + pagePort:    101,
		"https://chat.example.com":        101, // -allow-origin
		"http://evil.test":                403,
		"http://localhost:1":              403,
		"http://evil.test:" + pagePort:    403,
		"null":                            403,
		"http://chat.example.com.evil.io": 403,
	} {
		if got := try(origin); got != want {
			t.Errorf("origin %q: status %d, want %d", origin, got, want)
		}
	}
	// The WebSocket-only port answers plain GETs with 426.
	resp, err := http.Get(strings.Replace(ts.wsURL, "ws://", "http://", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("ws port GET: %d", resp.StatusCode)
	}
}

func TestPageOriginsEscaped(t *testing.T) {
	got := pageOrigins("[::1]:8080")
	if len(got) != 2 || got[0] != `\[::1\]:8080` || got[1] != "localhost:8080" {
		t.Fatalf("pageOrigins = %q", got)
	}
	got = pageOrigins("chat.local:8080")
	if len(got) != 1 || got[0] != "chat.local:8080" {
		t.Fatalf("pageOrigins = %q", got)
	}
}

func TestTooBigAndJSON(t *testing.T) { eachBackend(t, testTooBigAndJSON) }

func testTooBigAndJSON(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{MaxMessage: 4096, History: 10}}, false)
	c := dial(t, ts.wsURL+"/chat?nick=ann", &websocket.ClientOptions{Protocols: []string{chat.Subprotocol}})
	if c.Protocol() != chat.Subprotocol {
		t.Fatalf("protocol %q", c.Protocol())
	}
	var ev chat.Event
	json.Unmarshal([]byte(read(t, c)), &ev)
	if ev.Type != "welcome" || ev.Nick != "ann" {
		t.Fatalf("welcome %+v", ev)
	}
	read(t, c) // presence
	big, _ := json.Marshal(map[string]string{"type": "message", "text": strings.Repeat("a", 4097)})
	write(t, c, string(big))
	json.Unmarshal([]byte(read(t, c)), &ev)
	if ev.Type != "error" || ev.Code != "too_big" {
		t.Fatalf("too big: %+v", ev)
	}
	// Far over the limit the library itself refuses the frame with 1009.
	p := dial(t, ts.wsURL+"/chat", nil)
	write(t, p, strings.Repeat("b", 100<<10))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := p.Read(ctx); err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
				var pe *websocket.ProtocolError
				if !errors.As(err, &pe) || pe.Code != websocket.StatusMessageTooBig {
					t.Fatalf("huge frame: %v", err)
				}
			}
			break
		}
	}
}

// TestSlowConsumerOverNetwork: a reader that never reads is dropped as a
// slow consumer, by whichever comes first: its queue overflows, or a write
// to it outlasts -write-timeout. Both count in SlowConsumers; when only the
// overflow did, a busy machine let the timeout win and the test posted on
// until its deadline.
func TestSlowConsumerOverNetwork(t *testing.T) { eachBackend(t, testSlowConsumerOverNetwork) }

func testSlowConsumerOverNetwork(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{Queue: 16, WriteTimeout: 300 * time.Millisecond, MaxMessage: 0}}, false)
	slow := dial(t, ts.wsURL+"/chat", nil) // never reads
	fast := dial(t, ts.wsURL+"/chat", nil)
	_ = slow
	msg := strings.Repeat("x", 16<<10)
	// Keep posting until the server gives up on the reader that never
	// reads; the fast client must receive every message meanwhile. Each
	// round waits for its own echo (a deadline per round, not one for a
	// number of rounds that depends on the kernel's buffer sizes).
	for i := 0; ; i++ {
		if i > 5000 {
			t.Fatal("slow consumer never dropped")
		}
		write(t, fast, fmt.Sprintf("%d %s", i, msg))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for {
			_, b, err := fast.Read(ctx)
			if err != nil {
				t.Fatalf("fast client: %v", err)
			}
			if strings.Contains(string(b), fmt.Sprintf(": %d x", i)) {
				break
			}
		}
		cancel()
		if ts.srv.Hub().Metrics.SlowConsumers.Load() > 0 {
			break
		}
	}
	waitCount := time.Now().Add(5 * time.Second)
	for {
		if n, _ := ts.srv.Hub().Counts(); n == 1 {
			break
		}
		if time.Now().After(waitCount) {
			t.Fatal("slow consumer still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShutdownSends1001(t *testing.T) { eachBackend(t, testShutdownSends1001) }

func testShutdownSends1001(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{History: 10}, DataDir: t.TempDir()}, false)
	c := dial(t, ts.wsURL+"/chat", nil)
	write(t, c, "before")
	read(t, c)
	go ts.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "server shutting down" {
			t.Fatalf("got %v, want close 1001", err)
		}
		break
	}
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}

// TestDeadPeerOverNetwork: a client that completes the handshake and then
// never answers (no pong, no data) is dropped after two ping intervals.
func TestDeadPeerOverNetwork(t *testing.T) { eachBackend(t, testDeadPeerOverNetwork) }

func testDeadPeerOverNetwork(t *testing.T, backend string) {
	// The event-loop engine ends even a dropped connection gracefully
	// (FIN, then it waits up to CloseTimeout for the peer's), and the
	// client is disconnected only then: a peer that never answers holds
	// it for CloseTimeout.
	ts := start(t, Config{Backend: backend, Hub: chat.Config{PingInterval: 100 * time.Millisecond}, CloseTimeout: time.Second}, false)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.wsURL, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 101") {
		t.Fatalf("handshake: %q %v", buf[:n], err)
	}
	ts.waitClients(1)
	// From here on we read (so pings arrive) but never answer.
	go io.Copy(io.Discard, conn)
	ts.waitClients(0)
	if got := ts.srv.Hub().Metrics.DeadPeers.Load(); got != 1 {
		t.Fatalf("dead peers = %d", got)
	}
}
