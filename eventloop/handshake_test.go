package eventloop_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	websocket "github.com/wsdriver/websocket"
)

// policyHandler accepts WebSocket handshakes with the event API (?api=event)
// or the blocking API, with options chosen by path: the same handler for
// both backends, so that their answers can be compared.
func policyHandler() http.Handler {
	opts := map[string]*websocket.ServerOptions{
		"/":      nil,
		"/check": {CheckOrigin: func(r *http.Request) bool { return false }},
		"/auth": {Authorize: func(r *http.Request) error {
			return &websocket.HandshakeError{StatusCode: http.StatusUnauthorized, Reason: "no token"}
		}},
		"/deny":  {Authorize: func(r *http.Request) error { return errors.New("not today") }},
		"/proto": {Protocols: []string{"chat"}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, ok := opts[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("api") == "event" {
			c := websocket.NewServer(w, r, o)
			if c.Start() == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		c, err := websocket.Accept(w, r, o)
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
		}
	})
}

// TestHandshakeRefusals sends the same bad handshakes to net/http and to
// the event-loop backend serving the same handler, and checks that the
// answers agree: the status, the reason (the body) and the headers that
// matter. The refusals made by the library's policy are the same code on
// both backends, so their bodies must be equal; the intended differences
// are those of the HTTP layer, which is net/http's on one side and
// internal/upgrade's on the other:
//
//   - a method other than GET: 405 with "Allow: GET" on both, but the
//     event-loop backend refuses it before any handler runs (it reads no
//     request bodies, so it serves GET only, plain pages included); its
//     reason does not name the method;
//   - a head larger than MaxHeaderBytes: 431 on both, with each HTTP
//     layer's own body (net/http lets a head pass its MaxHeaderBytes by
//     up to 4 KiB; the event-loop backend does not);
//   - a head that does not arrive within ReadHeaderTimeout: both close the
//     connection without an answer.
func TestHandshakeRefusals(t *testing.T) {
	const headTimeout = 300 * time.Millisecond
	backends := bothBackends(t, policyHandler(), backendConfig{ReadHeaderTimeout: headTimeout, MaxHeaderBytes: 8 << 10})

	type want struct {
		status int
		body   string            // "" means compare the body across backends only
		header map[string]string // headers the answer must have
	}
	handshake := func(addr, path string, drop []string, extra string) string {
		req := upgradeRequest(addr, path, extra)
		for _, name := range drop {
			i := strings.Index(req, name+":")
			j := strings.Index(req[i:], "\r\n")
			req = req[:i] + req[i+j+2:]
		}
		return req
	}
	cases := []struct {
		name string
		req  func(addr string) string
		want want
		// sameBody: the body comes from the library's policy and must be
		// the same on both backends.
		sameBody bool
	}{
		{"missing Upgrade", func(a string) string { return handshake(a, "/", []string{"Upgrade"}, "") },
			want{status: 400, body: "websocket: \"Upgrade\" header must include \"websocket\"\n"}, true},
		{"missing Connection", func(a string) string { return handshake(a, "/", []string{"Connection"}, "") },
			want{status: 400, body: "websocket: \"Connection\" header must include \"Upgrade\"\n"}, true},
		{"missing key", func(a string) string { return handshake(a, "/", []string{"Sec-WebSocket-Key"}, "") },
			want{status: 400}, true},
		{"missing version", func(a string) string { return handshake(a, "/", []string{"Sec-WebSocket-Version"}, "") },
			want{status: 426, header: map[string]string{"Sec-WebSocket-Version": "13"}}, true},
		{"wrong version", func(a string) string {
			return handshake(a, "/", []string{"Sec-WebSocket-Version"}, "Sec-WebSocket-Version: 8\r\n")
		}, want{status: 426, header: map[string]string{"Sec-WebSocket-Version": "13"}}, true},
		{"HTTP/1.0", func(a string) string {
			return strings.Replace(handshake(a, "/", nil, ""), "HTTP/1.1", "HTTP/1.0", 1)
		}, want{status: 400}, true},
		{"cross origin", func(a string) string { return handshake(a, "/", nil, "Origin: http://evil.example\r\n") },
			want{status: 403}, true},
		{"CheckOrigin refuses", func(a string) string { return handshake(a, "/check", nil, "Origin: http://"+a+"\r\n") },
			want{status: 403, body: "websocket: origin not allowed\n"}, true},
		{"Authorize refuses with a status", func(a string) string { return handshake(a, "/auth", nil, "") },
			want{status: 401, body: "websocket: no token\n"}, true},
		{"Authorize refuses", func(a string) string { return handshake(a, "/deny", nil, "") },
			want{status: 403, body: "websocket: not today\n"}, true},
		{"bad extension offer", func(a string) string {
			return handshake(a, "/", nil, "Sec-WebSocket-Extensions: permessage-deflate; nonsense\r\n")
		}, want{status: 101}, true},
		{"unknown path", func(a string) string { return handshake(a, "/nowhere", nil, "") },
			want{status: 404, body: "404 page not found\n"}, true},
		{"POST", func(a string) string {
			return strings.Replace(handshake(a, "/", nil, ""), "GET", "POST", 1)
		}, want{status: 405, header: map[string]string{"Allow": "GET"}}, false},
		{"head too large", func(a string) string {
			return handshake(a, "/", nil, strings.Repeat("X-Filler: "+strings.Repeat("x", 1000)+"\r\n", 20))
		}, want{status: 431}, false},
	}
	for _, api := range []string{"blocking", "event"} {
		for _, tc := range cases {
			t.Run(api+"/"+tc.name, func(t *testing.T) {
				bodies := map[string]string{}
				for _, b := range backends {
					c := dialRaw(t, b.addr)
					req := tc.req(b.addr)
					if api == "event" {
						req = strings.Replace(req, " HTTP/1.", "?api=event HTTP/1.", 1)
					}
					resp, body := c.roundTrip(req)
					if resp.StatusCode != tc.want.status {
						t.Fatalf("%s: %s %q, want %d", b.name, resp.Status, body, tc.want.status)
					}
					if tc.want.body != "" && body != tc.want.body {
						t.Errorf("%s: body %q, want %q", b.name, body, tc.want.body)
					}
					for k, v := range tc.want.header {
						if got := resp.Header.Get(k); got != v {
							t.Errorf("%s: %s: %q, want %q", b.name, k, got, v)
						}
					}
					if resp.StatusCode != http.StatusSwitchingProtocols && !resp.Close && b.name != "net/http" {
						t.Errorf("%s: a refusal must end the connection (Connection: close)", b.name)
					}
					// The reason may name the server's own address.
					bodies[b.name] = strings.ReplaceAll(body, b.addr, "ADDR")
				}
				if tc.sameBody {
					for name, body := range bodies {
						if body != bodies["net/http"] {
							t.Errorf("%s answered %q, net/http %q", name, body, bodies["net/http"])
						}
					}
				}
			})
		}
	}

	t.Run("unsupported subprotocol", func(t *testing.T) {
		// The policy is the library's on both: no protocol in common is
		// no protocol, and the handshake succeeds.
		for _, b := range backends {
			c := dialRaw(t, b.addr)
			resp, _ := c.roundTrip(upgradeRequest(b.addr, "/proto", "Sec-WebSocket-Protocol: x, y\r\n"))
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
				t.Errorf("%s: %s, protocol %q", b.name, resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
			}
			c = dialRaw(t, b.addr)
			resp, _ = c.roundTrip(upgradeRequest(b.addr, "/proto", "Sec-WebSocket-Protocol: x, chat\r\n"))
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" {
				t.Errorf("%s: %s, protocol %q", b.name, resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
			}
		}
	})

	t.Run("slow head", func(t *testing.T) {
		for _, b := range backends {
			c := dialRaw(t, b.addr)
			t0 := time.Now()
			io.WriteString(c.nc, "GET / HTTP/1.1\r\nHost: x\r\n")
			rest, err := io.ReadAll(c.br)
			if err != nil || len(rest) != 0 {
				t.Errorf("%s: %q %v, want the connection closed without an answer", b.name, rest, err)
			}
			if d := time.Since(t0); d < headTimeout {
				t.Errorf("%s: closed after %v, before ReadHeaderTimeout", b.name, d)
			}
		}
	})
}
