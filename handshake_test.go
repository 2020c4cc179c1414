package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
	if !validHandshakeKey(newHandshakeKey()) {
		t.Fatal("newHandshakeKey is not valid")
	}
	for _, k := range []string{"", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==x", "!!!!!!!!!!!!!!!!!!!!!!=="} {
		if validHandshakeKey(k) {
			t.Errorf("validHandshakeKey(%q) = true", k)
		}
	}
}

func TestHeaderHasToken(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive, Upgrade", "x"}}
	if !headerHasToken(h, "Connection", "upgrade") || headerHasToken(h, "Connection", "close") {
		t.Fatal("headerHasToken")
	}
}

// rawHandshake sends req over TCP to the server behind url and returns the
// response.
func rawHandshake(t *testing.T, url string, mutate func(*http.Request)) *http.Response {
	t.Helper()
	addr := strings.TrimPrefix(url, "ws://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if mutate != nil {
		mutate(req)
	}
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(newBufReader(nc), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAcceptRefusals(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{OriginPatterns: []string{"*.example.com"}}))
	cases := []struct {
		name       string
		mutate     func(*http.Request)
		wantStatus int
		wantInBody string
	}{
		{"POST", func(r *http.Request) { r.Method = "POST" }, 405, "GET"},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, 400, "Upgrade"},
		{"no Connection upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, 400, "Connection"},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, 426, "13"},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, 400, "Sec-WebSocket-Key"},
		{"short key", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, 400, "Sec-WebSocket-Key"},
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }, 403, "evil.test"},
		{"null origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, 403, "origin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawHandshake(t, url, tc.mutate)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantInBody) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.wantStatus, tc.wantInBody)
			}
			if tc.wantStatus == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("426 without Sec-WebSocket-Version: 13: %v", resp.Header)
			}
			if tc.wantStatus == 405 && resp.Header.Get("Allow") != "GET" {
				t.Fatalf("405 without Allow: GET")
			}
		})
	}
}

func TestAcceptOrigins(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{OriginPatterns: []string{"*.example.com", "https://exact.test"}}))
	host := strings.TrimPrefix(url, "ws://")
	for _, origin := range []string{"", "http://" + host, "https://app.example.com", "https://exact.test"} {
		resp := rawHandshake(t, url, func(r *http.Request) {
			if origin != "" {
				r.Header.Set("Origin", origin)
			}
		})
		if resp.StatusCode != 101 {
			t.Errorf("origin %q: status %d", origin, resp.StatusCode)
		}
	}
	resp := rawHandshake(t, url, func(r *http.Request) { r.Header.Set("Origin", "http://exact.test") })
	if resp.StatusCode != 403 {
		t.Errorf("scheme mismatch on a full-origin pattern: %d", resp.StatusCode)
	}
}

func TestAcceptResponseHeaders(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{
		Protocols: []string{"chat", "superchat"},
		Header:    http.Header{"X-Extra": {"1"}, "Sec-Websocket-Accept": {"forged"}},
	}))
	resp := rawHandshake(t, url, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "other, superchat, chat") })
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q", got)
	}
	if got := resp.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != "superchat" {
		t.Fatalf("protocol %q, want the client's first acceptable one", got)
	}
	if resp.Header.Get("X-Extra") != "1" {
		t.Fatalf("additional header missing: %v", resp.Header)
	}
	resp = rawHandshake(t, url, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "nope") })
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
		t.Fatalf("no matching protocol: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestDialProtocol(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{Protocols: []string{"b"}}))
	c := dialTest(t, url, &ClientOptions{Protocols: []string{"a", "b"}})
	if c.Protocol() != "b" || c.Version() != "hybi-13" || c.ReadyState() != Open {
		t.Fatalf("protocol %q version %q state %v", c.Protocol(), c.Version(), c.ReadyState())
	}
}

func TestDialHandshakeErrors(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/forbidden":
			http.Error(w, "go away", http.StatusForbidden)
		case "/badaccept", "/badprotocol":
			nc, brw, _ := http.NewResponseController(w).Hijack()
			defer nc.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
			if r.URL.Path == "/badaccept" {
				brw.WriteString("Sec-WebSocket-Accept: wrong\r\n\r\n")
			} else {
				brw.WriteString("Sec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\nSec-WebSocket-Protocol: unoffered\r\n\r\n")
			}
			brw.Flush()
		}
	})
	ctx := testContext(t)
	_, resp, err := Dial(ctx, url+"/forbidden", nil)
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 403 || !strings.Contains(he.Reason, "go away") || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("403: %v %v", err, resp)
	}
	for _, path := range []string{"/badaccept", "/badprotocol"} {
		if _, _, err := Dial(ctx, url+path, nil); !errors.As(err, &he) || he.StatusCode != 101 {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if _, _, err := Dial(ctx, "ftp://x", nil); err == nil {
		t.Fatal("ftp scheme accepted")
	}
}

func TestDialContextTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if _, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", nil); err == nil {
		t.Fatal("Dial succeeded against a silent server")
	}
}

func TestDialTLS(t *testing.T) {
	srv := httptest.NewTLSServer(echoHandler(nil))
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	c := dialTest(t, url, &ClientOptions{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	ctx := testContext(t)
	if err := c.Write(ctx, TextMessage, []byte("over TLS")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "over TLS" {
		t.Fatalf("%q %v", msg, err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}
