package upgrade

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const browserRequest = "GET /chat?room=1 HTTP/1.1\r\n" +
	"Host: example.com:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Upgrade: websocket\r\n" +
	"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Origin: http://example.com\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"X-Custom_Name: a\r\n" +
	"X-Custom_Name: b \t\r\n" +
	"\r\n"

// parse feeds s in pieces of size step (the whole of s if step <= 0).
func parse(t testing.TB, s string, step int) (*http.Request, int, error) {
	t.Helper()
	var p Parser
	consumed := 0
	for off := 0; off < len(s) || off == 0; {
		end := len(s)
		if step > 0 && off+step < end {
			end = off + step
		}
		n, done, err := p.Feed([]byte(s[off:end]))
		if err != nil {
			return nil, 0, err
		}
		if done {
			return p.Request(context.Background(), "127.0.0.1:1"), consumed + n, nil
		}
		consumed += end - off
		off = end
		if off == len(s) {
			break
		}
	}
	return nil, consumed, nil
}

func TestParseBrowserRequest(t *testing.T) {
	for _, step := range []int{0, 1, 2, 7, 64} {
		r, n, err := parse(t, browserRequest+"\x81\x00", step)
		if err != nil || r == nil {
			t.Fatalf("step %d: request %v, error %v", step, r, err)
		}
		if n != len(browserRequest) {
			t.Errorf("step %d: consumed %d bytes, want %d", step, n, len(browserRequest))
		}
		if r.Method != "GET" || r.RequestURI != "/chat?room=1" || r.URL.Path != "/chat" || r.URL.RawQuery != "room=1" {
			t.Errorf("request line: %q %q %+v", r.Method, r.RequestURI, r.URL)
		}
		if r.Proto != "HTTP/1.1" || r.ProtoMajor != 1 || r.ProtoMinor != 1 || !r.ProtoAtLeast(1, 1) {
			t.Errorf("version: %q %d.%d", r.Proto, r.ProtoMajor, r.ProtoMinor)
		}
		if r.Host != "example.com:8080" || r.Header["Host"] != nil {
			t.Errorf("Host %q, Header[Host] %q", r.Host, r.Header["Host"])
		}
		if got := r.Header.Get("Sec-WebSocket-Key"); got != "dGhlIHNhbXBsZSBub25jZQ==" {
			t.Errorf("key %q", got)
		}
		if got := r.Header["X-Custom_name"]; !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("repeated header %q (all: %v)", got, r.Header)
		}
		if r.RemoteAddr != "127.0.0.1:1" || r.Context() == nil || r.Body != http.NoBody {
			t.Errorf("RemoteAddr %q ctx %v body %v", r.RemoteAddr, r.Context(), r.Body)
		}
	}
}

func TestParseNeedMore(t *testing.T) {
	var p Parser
	n, done, err := p.Feed([]byte(browserRequest[:len(browserRequest)-1]))
	if n != 0 || done || err != nil {
		t.Fatalf("partial head: %d %v %v", n, done, err)
	}
	n, done, err = p.Feed([]byte("\n"))
	if n != 1 || !done || err != nil {
		t.Fatalf("last byte: %d %v %v", n, done, err)
	}
	p.Reset()
	if _, done, err := p.Feed([]byte(browserRequest)); !done || err != nil {
		t.Fatalf("after Reset: %v %v", done, err)
	}
}

func TestParseRefusals(t *testing.T) {
	long := strings.Repeat("a", DefaultMaxRequestLine)
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
		{"bare LF in header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Transfer-Encoding", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"relative target", "GET chat HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"long version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"POST", "POST / HTTP/1.1\r\nHost: a\r\n\r\n", 405},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"long URI", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"long URI, unfinished", "GET /" + long, 414},
		{"long header", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long + "\r\n\r\n", 431},
		{"long header, unfinished", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long, 431},
		{"many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: a\r\n", DefaultMaxHeaders) + "\r\n", 431},
		{"large head", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+long[:3000]+"\r\n", 3), 431},
	} {
		for _, step := range []int{0, 1, 5} {
			_, _, err := parse(t, tc.req, step)
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Errorf("%s (step %d): error %v, want status %d", tc.name, step, err, tc.status)
			}
		}
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct{ name, req, host string }{
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", ""},
		{"absolute form", "GET ws://b.example/x HTTP/1.1\r\nHost: a\r\n\r\n", "b.example"},
		{"Content-Length 0", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "a"},
		{"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", "a"},
		{"obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", "a"},
	} {
		r, _, err := parse(t, tc.req, 3)
		if err != nil || r == nil || r.Host != tc.host {
			t.Errorf("%s: %v, %v", tc.name, r, err)
		}
	}
}

func TestAppendErrorResponse(t *testing.T) {
	e := &Error{Status: 405, Reason: "no\r\nSet-Cookie: x"}
	b := e.AppendResponse(nil)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" || !resp.Close ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || resp.Header.Get("Set-Cookie") != "" ||
		string(body[:n]) != "no\r\nSet-Cookie: x\n" {
		t.Errorf("response %+v body %q", resp, body[:n])
	}
	if !errors.Is(errHeadTooLarge, &Error{Status: 431}) || errors.Is(errHeadTooLarge, &Error{Status: 400}) {
		t.Error("errors.Is by status")
	}
}

func TestRequestAllocations(t *testing.T) {
	var p Parser
	b := []byte(browserRequest)
	allocs := testing.AllocsPerRun(100, func() {
		p.Reset()
		p.Feed(b)
		p.Request(context.Background(), "")
	})
	t.Logf("allocations per parsed handshake request: %v", allocs)
}

func BenchmarkParse(b *testing.B) {
	var p Parser
	req := []byte(browserRequest)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		p.Reset()
		p.Feed(req)
		p.Request(context.Background(), "")
	}
}
