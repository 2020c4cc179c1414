package websocket

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/xconnect"
)

// h2Server serves h over TLS with HTTP/2 on 127.0.0.1 and counts the TCP
// connections it accepted.
type h2Server struct {
	*httptest.Server
	conns atomic.Int32
	mu    sync.Mutex
	seen  []string // "proto method :protocol" of each request
}

func newH2Server(t testing.TB, h http.HandlerFunc) *h2Server {
	t.Helper()
	if !xconnect.Enabled() {
		t.Fatal("the test binary runs without GODEBUG=" + xconnect.Setting + " (see TestMain)")
	}
	s := &h2Server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Proto+" "+r.Method+" "+r.Header.Get(":protocol"))
		s.mu.Unlock()
		h(w, r)
	}))
	s.EnableHTTP2 = true
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *h2Server) wsURL() string { return "wss" + strings.TrimPrefix(s.URL, "https") }

func (s *h2Server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// h2Client returns an HTTP2Client that trusts s, closed with the test.
func (s *h2Server) h2Client(t testing.TB) *HTTP2Client {
	h := &HTTP2Client{}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

// opts returns client options that dial s over HTTP/2 through h.
func (s *h2Server) opts(h *HTTP2Client) *ClientOptions {
	return &ClientOptions{HTTP2: h, TLSConfig: s.tlsConfig()}
}

func (s *h2Server) tlsConfig() *tls.Config {
	return s.Client().Transport.(*http.Transport).TLSClientConfig
}

// goH2Client returns net/http's own HTTP/2 client on a new connection to
// s. http.Transport.RoundTrip refuses the :protocol pseudo-header; the
// round tripper its TLSNextProto hook returns for a connection sends it.
func (s *h2Server) goH2Client(t *testing.T) http.RoundTripper {
	t1 := &http.Transport{ForceAttemptHTTP2: true}
	t1.CloseIdleConnections() // sets HTTP/2 up
	t.Cleanup(t1.CloseIdleConnections)
	cfg := s.tlsConfig().Clone()
	cfg.NextProtos = []string{"h2"}
	tc, err := tls.Dial("tcp", s.Listener.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	return t1.TLSNextProto["h2"](s.Listener.Addr().String(), tc)
}

// TestHTTP2ServerWithGoClient drives the server side with net/http's own
// HTTP/2 client and hand-made frames: the extended CONNECT gets 200 with no
// Sec-WebSocket-Accept, a masked text frame comes back unmasked, and a
// close frame is echoed before the server ends the stream.
func TestHTTP2ServerWithGoClient(t *testing.T) {
	s := newH2Server(t, echoHandler(&ServerOptions{Protocols: []string{"chat"}}))
	tr := s.goH2Client(t)

	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodConnect, s.URL+"/echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", "x, chat")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("response %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Errorf("Sec-WebSocket-Protocol = %q, want chat", got)
	}
	if v := resp.Header.Get("Sec-WebSocket-Accept"); v != "" {
		t.Errorf("Sec-WebSocket-Accept = %q over HTTP/2", v)
	}
	mask := [4]byte{1, 2, 3, 4}
	masked := func(op byte, payload []byte) []byte {
		f := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
		for i, b := range payload {
			f = append(f, b^mask[i%4])
		}
		return f
	}
	if _, err := pw.Write(masked(0x1, []byte("hello h2"))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2+len("hello h2"))
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if want := append([]byte{0x81, byte(len("hello h2"))}, "hello h2"...); !bytes.Equal(got, want) {
		t.Fatalf("echo = %x, want %x", got, want)
	}
	if _, err := pw.Write(masked(0x8, []byte{0x03, 0xe8})); err != nil {
		t.Fatal(err)
	}
	// Like browsers, end our half once the close frame is out; the server
	// ends the stream once it has seen that (its echo of the close first).
	pw.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading to the end of the stream: %v", err)
	}
	if want := []byte{0x88, 2, 0x03, 0xe8}; !bytes.Equal(rest, want) {
		t.Fatalf("after the close frame: %x, want %x (then END_STREAM)", rest, want)
	}
	if r := s.requests(); len(r) != 1 || r[0] != "HTTP/2.0 CONNECT websocket" {
		t.Errorf("server saw %q", r)
	}
}

// TestHTTP2Echo dials over HTTP/2 with the library's client: messages of
// every size flow both ways, with and without compression.
func TestHTTP2Echo(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "deflate"}[compress], func(t *testing.T) {
			var sopts ServerOptions
			var copts ClientOptions
			if compress {
				sopts.Compression = &CompressionOptions{}
				copts.Compression = &CompressionOptions{}
			}
			s := newH2Server(t, echoHandler(&sopts))
			copts.HTTP2, copts.TLSConfig = s.h2Client(t), s.tlsConfig()
			c, resp, err := Dial(testContext(t), s.wsURL(), &copts)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Fatalf("handshake response %s %s", resp.Proto, resp.Status)
			}
			if compress != (resp.Header.Get("Sec-WebSocket-Extensions") != "") {
				t.Fatalf("extensions %q", resp.Header.Get("Sec-WebSocket-Extensions"))
			}
			ctx := testContext(t)
			for _, n := range []int{0, 1, 125, 126, 4095, 4096, 65535, 65536, 1 << 20} {
				msg := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
				if err := c.Write(ctx, BinaryMessage, msg); err != nil {
					t.Fatalf("Write %d: %v", n, err)
				}
				typ, got, err := c.ReadMessage(ctx, nil)
				if err != nil || typ != BinaryMessage || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes: %v %d bytes, %v", n, typ, len(got), err)
				}
			}
			if err := c.Close(StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if code := CloseStatus(c.Err()); code != StatusNormalClosure {
				t.Fatalf("closed with %v (%v)", code, c.Err())
			}
			if r := s.requests(); len(r) != 1 || r[0] != "HTTP/2.0 CONNECT websocket" {
				t.Errorf("server saw %q", r)
			}
		})
	}
}

// TestHTTP2EventServer runs the event API over HTTP/2: Start keeps the
// handler (and so the stream) alive until the connection closes, the
// handlers see the messages and the close, and the server's Close ends the
// stream so that the client sees the close code.
func TestHTTP2EventServer(t *testing.T) {
	closed := make(chan StatusCode, 1)
	returned := make(chan error, 1)
	s := newH2Server(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, nil)
		ws.OnOpen(func() { ws.SendText("welcome") })
		ws.OnMessage(func(m Message) {
			if m.Text() == "quit" {
				ws.Close(StatusGoingAway, "asked to")
				return
			}
			ws.SendText("echo " + m.Text())
		})
		ws.OnClose(func(code StatusCode, _ string) { closed <- code })
		err := ws.Start()
		if err == nil && ws.ReadyState() != Closed {
			err = errors.New("Start returned before the connection closed")
		}
		returned <- err
	})
	c := dialTest(t, s.wsURL(), s.opts(s.h2Client(t)))
	ctx := testContext(t)
	expect := func(want string) {
		t.Helper()
		_, got, err := c.ReadMessage(ctx, nil)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	expect("welcome")
	c.Write(ctx, TextMessage, []byte("one"))
	expect("echo one")
	c.Write(ctx, TextMessage, []byte("quit"))
	_, _, err := c.ReadMessage(ctx, nil)
	if code := CloseStatus(err); code != StatusGoingAway {
		t.Fatalf("read after quit: %v, want close 1001", err)
	}
	if code := wait(t, closed, "OnClose"); code != StatusGoingAway {
		t.Fatalf("OnClose code %v", code)
	}
	if err := wait(t, returned, "Start to return"); err != nil {
		t.Fatal(err)
	}
	wait(t, c.Done(), "the client to close")
}

// TestHTTP2Policy checks that the handshake policy is the HTTP/1.1 one:
// origins, Authorize, the version, and the extra headers.
func TestHTTP2Policy(t *testing.T) {
	opts := &ServerOptions{
		OriginPatterns: []string{"good.example"},
		Header:         http.Header{"X-Extra": {"1"}, "Connection": {"close"}, "Transfer-Encoding": {"chunked"}},
		Authorize: func(r *http.Request) error {
			if r.URL.Query().Get("token") != "ok" {
				return &HandshakeError{StatusCode: http.StatusUnauthorized, Reason: "no token"}
			}
			return nil
		},
	}
	s := newH2Server(t, echoHandler(opts))
	h := s.h2Client(t)
	ctx := testContext(t)
	for _, tc := range []struct {
		name, origin, query string
		status              int
	}{
		{"bad origin", "https://evil.example", "?token=ok", 403},
		{"no token", "https://good.example", "", 401},
		{"ok", "https://good.example", "?token=ok", 200},
	} {
		c, resp, err := Dial(ctx, s.wsURL()+"/"+tc.query, &ClientOptions{HTTP2: h, TLSConfig: s.tlsConfig(), Header: http.Header{"Origin": {tc.origin}}})
		if resp == nil || resp.StatusCode != tc.status || resp.ProtoMajor != 2 {
			t.Fatalf("%s: response %v, error %v; want HTTP/2 %d", tc.name, resp, err, tc.status)
		}
		if tc.status != 200 {
			var he *HandshakeError
			if !errors.As(err, &he) || he.StatusCode != tc.status {
				t.Fatalf("%s: error %v", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Header.Get("X-Extra") != "1" {
			t.Errorf("extra header missing: %v", resp.Header)
		}
		c.Close(StatusNormalClosure, "")
	}
	if s.conns.Load() != 1 {
		t.Errorf("%d TCP connections for three handshakes, want 1", s.conns.Load())
	}
}

// TestHTTP2ServerRefusals sends extended CONNECTs that break RFC 8441 with
// net/http's client.
func TestHTTP2ServerRefusals(t *testing.T) {
	s := newH2Server(t, echoHandler(nil))
	tr := s.goH2Client(t)
	for _, tc := range []struct {
		name, method, protocol, version string
		status                          int
	}{
		{"GET over HTTP/2", http.MethodGet, "", "13", 405},
		{"other protocol", http.MethodConnect, "webtransport", "13", 400},
		{"version 8", http.MethodConnect, "websocket", "8", 426},
	} {
		req, _ := http.NewRequestWithContext(testContext(t), tc.method, s.URL+"/", nil)
		if tc.protocol != "" {
			req.Header[":protocol"] = []string{tc.protocol}
		}
		req.Header.Set("Sec-WebSocket-Version", tc.version)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}

// TestHTTP2Multiplex opens many WebSockets through one HTTP2Client: they
// share one TCP connection, and each carries its own messages.
func TestHTTP2Multiplex(t *testing.T) {
	s := newH2Server(t, echoHandler(nil))
	h := s.h2Client(t)
	ctx := testContext(t)
	const n = 50
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = dialTest(t, s.wsURL(), s.opts(h))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				msg := []byte(strings.Repeat(string(rune('a'+i%26)), 100+j))
				if err := c.Write(ctx, TextMessage, msg); err != nil {
					errs <- err
					return
				}
				if _, got, err := c.ReadMessage(ctx, nil); err != nil || !bytes.Equal(got, msg) {
					errs <- errors.New("wrong echo")
					return
				}
			}
			errs <- c.Close(StatusNormalClosure, "")
		}()
	}
	wg.Wait()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Fatalf("%d TCP connections for %d WebSockets, want 1", got, n)
	}
	if a, b := conns[0].LocalAddr().String(), conns[n-1].LocalAddr().String(); a != b {
		t.Errorf("local addresses %s and %s differ", a, b)
	}
}

// TestHTTP2FallbackToHTTP1 dials a TLS server without HTTP/2: the
// HTTP2Client falls back to HTTP/1.1.
func TestHTTP2FallbackToHTTP1(t *testing.T) {
	srv := httptest.NewUnstartedServer(echoHandler(nil))
	srv.StartTLS() // HTTP/1.1 only
	t.Cleanup(srv.Close)
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
	h := &HTTP2Client{}
	t.Cleanup(h.CloseIdleConnections)
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	for range 2 {
		c, resp, err := Dial(testContext(t), url, &ClientOptions{HTTP2: h, TLSConfig: tlsConf})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		ctx := testContext(t)
		c.Write(ctx, TextMessage, []byte("hi"))
		if _, got, err := c.ReadMessage(ctx, nil); err != nil || string(got) != "hi" {
			t.Fatalf("echo: %q %v", got, err)
		}
		c.Close(StatusNormalClosure, "")
	}
}

// TestHTTP2ReadContext: a read whose context ends before a message leaves
// the stream intact, as on TCP.
func TestHTTP2ReadContext(t *testing.T) {
	s := newH2Server(t, echoHandler(nil))
	c := dialTest(t, s.wsURL(), s.opts(s.h2Client(t)))
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.ReadMessage(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read: %v, want the context's deadline", err)
	}
	ctx := testContext(t)
	if err := c.Write(ctx, TextMessage, []byte("still there")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(ctx, nil); err != nil || string(got) != "still there" {
		t.Fatalf("echo after a timed-out read: %q %v", got, err)
	}
	c.Close(StatusNormalClosure, "")
}

// TestHTTP2CloseNow drops a connection without the closing handshake from
// either side: the other side sees 1006 and nothing hangs.
func TestHTTP2CloseNow(t *testing.T) {
	serverConn := make(chan *Conn, 1)
	s := newH2Server(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		serverConn <- c
		<-c.Done()
	})
	h := s.h2Client(t)
	ctx := testContext(t)

	c := dialTest(t, s.wsURL(), s.opts(h))
	sc := wait(t, serverConn, "the server's connection")
	sc.CloseNow()
	if _, _, err := c.ReadMessage(ctx, nil); CloseStatus(err) != StatusAbnormalClosure {
		t.Fatalf("client read after the server's CloseNow: %v", err)
	}

	c = dialTest(t, s.wsURL(), s.opts(h))
	sc = wait(t, serverConn, "the server's connection")
	c.CloseNow()
	if _, _, err := sc.ReadMessage(ctx, nil); CloseStatus(err) != StatusAbnormalClosure {
		t.Fatalf("server read after the client's CloseNow: %v", err)
	}
}

// TestHTTP2WriteTimeout: a server writing to a client that reads nothing
// blocks on HTTP/2 flow control; ServerOptions.WriteTimeout ends the write
// by resetting the stream, and the handler can return.
func TestHTTP2WriteTimeout(t *testing.T) {
	result := make(chan error, 1)
	s := newH2Server(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &ServerOptions{WriteTimeout: 300 * time.Millisecond})
		if err != nil {
			result <- err
			return
		}
		msg := make([]byte, 1<<20)
		for range 64 { // far more than the stream's flow-control window
			if err = c.Write(context.Background(), BinaryMessage, msg); err != nil {
				break
			}
		}
		result <- err
	})
	c := dialTest(t, s.wsURL(), s.opts(s.h2Client(t)))
	err := wait(t, result, "the server's write to time out")
	if !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("server write: %v, want ErrWriteTimeout", err)
	}
	c.CloseNow()
}

// TestHTTP2ClientEvents runs a client with the event API over HTTP/2: its
// event loop reads the stream on its own goroutine while Start has returned.
func TestHTTP2ClientEvents(t *testing.T) {
	s := newH2Server(t, echoHandler(nil))
	ws := NewClient(s.wsURL(), s.opts(s.h2Client(t)))
	got := make(chan string, 4)
	closed := make(chan StatusCode, 1)
	ws.OnMessage(func(m Message) {
		got <- m.Text()
		if m.Text() == "two" {
			ws.Close(StatusNormalClosure, "")
		}
	})
	ws.OnClose(func(code StatusCode, _ string) { closed <- code })
	ws.SendText("one") // queued until open
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	ws.SendText("two")
	if a, b := wait(t, got, "echo one"), wait(t, got, "echo two"); a != "one" || b != "two" {
		t.Fatalf("echoes %q %q", a, b)
	}
	if code := wait(t, closed, "OnClose"); code != StatusNormalClosure {
		t.Fatalf("OnClose %v", code)
	}
}

// TestHTTP2ClientRequest checks the client's extended CONNECT against RFC
// 8441 §4 and §5: :protocol websocket, Sec-WebSocket-Version 13, the
// offers, and none of HTTP/1.1's Connection, Upgrade or Sec-WebSocket-Key.
func TestHTTP2ClientRequest(t *testing.T) {
	got := make(chan http.Header, 1)
	s := newH2Server(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		echoHandler(&ServerOptions{Protocols: []string{"b"}})(w, r)
	})
	opts := s.opts(s.h2Client(t))
	opts.Protocols = []string{"a", "b"}
	opts.Compression = &CompressionOptions{}
	opts.Header = http.Header{"Origin": {s.URL}, "Upgrade": {"h2c"}, "Connection": {"close"}}
	c := dialTest(t, s.wsURL(), opts)
	h := wait(t, got, "the request")
	if h.Get(":protocol") != "websocket" || h.Get("Sec-WebSocket-Version") != "13" ||
		h.Get("Sec-WebSocket-Protocol") != "a, b" || !strings.HasPrefix(h.Get("Sec-WebSocket-Extensions"), "permessage-deflate") ||
		h.Get("Origin") != s.URL {
		t.Fatalf("request headers %v", h)
	}
	for _, name := range []string{"Connection", "Upgrade", "Sec-WebSocket-Key"} {
		if v, ok := h[name]; ok {
			t.Errorf("request has %s: %q", name, v)
		}
	}
	if c.Protocol() != "b" {
		t.Errorf("subprotocol %q", c.Protocol())
	}
	c.Close(StatusNormalClosure, "")
}
