package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The Proxy function sees the handshake as net/http would send it: ws://
// as http:// and wss:// as https://, host, port and path unchanged.
func TestProxyRequestScheme(t *testing.T) {
	var seen []string
	record := func(r *http.Request) (*url.URL, error) {
		seen = append(seen, r.URL.String()+" host="+r.Host)
		return nil, nil
	}
	for _, s := range []string{"ws://a.example:81/p?q=1", "wss://b.example/x"} {
		u, _ := url.Parse(s)
		p, err := proxyFor(u, u.Scheme == "wss", record)
		if p != nil || err != nil {
			t.Fatalf("%s: %v, %v; want no proxy", s, p, err)
		}
	}
	want := []string{"http://a.example:81/p?q=1 host=a.example:81", "https://b.example/x host=b.example"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("Proxy saw %q, want %q", seen, want)
	}
}

func TestProxyForChecksTheProxy(t *testing.T) {
	u, _ := url.Parse("ws://a.example/")
	fixed := func(s string) func(*http.Request) (*url.URL, error) {
		p, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return http.ProxyURL(p)
	}
	for _, s := range []string{"http://u:p@proxy:3128", "socks5://proxy", "socks5h://proxy:1"} {
		p, err := proxyFor(u, false, fixed(s))
		if err != nil || p.String() != s {
			t.Errorf("%s: got %v, %v", s, p, err)
		}
	}
	for _, s := range []string{"https://proxy:443", "ftp://proxy", "http://:8080"} {
		if p, err := proxyFor(u, false, fixed(s)); err == nil {
			t.Errorf("%s: accepted as %v", s, p)
		}
	}
	// The password never shows in an error.
	if _, err := proxyFor(u, false, fixed("https://u:secret@proxy")); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
	boom := errors.New("boom")
	if _, err := proxyFor(u, false, func(*http.Request) (*url.URL, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Proxy's error: got %v", err)
	}
	// Dial reports the Proxy function's error before any connection.
	_, _, err := Dial(context.Background(), "ws://a.example/", &ClientOptions{Proxy: func(*http.Request) (*url.URL, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Errorf("Dial: got %v", err)
	}
}

// proxyEnvCases are the environment's rules as net/http applies them, for
// the URL a WebSocket client dials, under the environment that
// TestProxyFromEnvironment gives its child process.
var proxyEnvCases = []struct{ url, proxy string }{
	{"ws://a.example/", "http://hp.example:3128"},
	{"wss://a.example/", "socks5://sp.example:1080"},
	{"ws://a.example:8080/chat", "http://hp.example:3128"},
	{"ws://skip.example/", ""},
	{"wss://deep.inner.example/", ""},
	{"ws://localhost:9001/", ""},
	{"ws://127.0.0.1:9001/", ""},
	{"wss://[::1]:9001/", ""},
	{"ws://10.1.2.3/", ""},
}

// The environment is read once per process by http.ProxyFromEnvironment,
// so the rules are checked in a child process with its own environment.
func TestProxyFromEnvironment(t *testing.T) {
	if os.Getenv("WEBSOCKET_PROXY_ENV_CHILD") != "" {
		t.Skip("in the child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProxyEnvChild$", "-test.v", "-test.count=1")
	env := []string{"WEBSOCKET_PROXY_ENV_CHILD=1",
		"HTTP_PROXY=http://hp.example:3128", "HTTPS_PROXY=socks5://sp.example:1080",
		"NO_PROXY=skip.example,.inner.example,10.0.0.0/8"}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUEST_METHOD":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestProxyEnvChild")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestProxyEnvChild(t *testing.T) {
	if os.Getenv("WEBSOCKET_PROXY_ENV_CHILD") == "" {
		t.Skip("run by TestProxyFromEnvironment")
	}
	for _, c := range proxyEnvCases {
		u, _ := url.Parse(c.url)
		p, err := proxyFor(u, u.Scheme == "wss", nil)
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != c.proxy {
			t.Errorf("%s: proxy %q, %v; want %q", c.url, got, err, c.proxy)
		}
	}
}

func TestConnectRequest(t *testing.T) {
	got := string(connectRequest("a.example:443", nil))
	if want := "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// RFC 7617 §2's example credentials.
	got = string(connectRequest("[::1]:80", url.UserPassword("Aladdin", "open sesame")))
	want := "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadConnectResponse(t *testing.T) {
	anon, _ := url.Parse("http://proxy.example:3128")
	authed, _ := url.Parse("http://user:secret@proxy.example:3128")
	cases := []struct {
		name, resp string
		proxy      *url.URL
		status     int    // 0: success expected, -1: an error that is not a ProxyError
		says       string // in the error
	}{
		{"ok", "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy\r\n\r\n", anon, 0, ""},
		{"ok 1.1", "HTTP/1.1 200 OK\r\n\r\n", authed, 0, ""},
		{"no credentials", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 4\r\n\r\nnope", anon, 407, "proxy authentication is required; put user:password@"},
		{"wrong credentials", "HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", authed, 407, "refused the user and password"},
		{"tinyproxy's wrong credentials", "HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", authed, 401, "401 Unauthorized: proxy authentication is required, and the proxy refused"},
		{"forbidden", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", anon, 403, "403 Forbidden"},
		{"bad gateway", "HTTP/1.1 502 Bad Gateway\r\n\r\n", anon, 502, "refused CONNECT: 502 Bad Gateway"},
		{"length ignored", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", anon, 0, ""},
		{"data after answer with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHELLO", anon, 200, "sent data after"},
		{"data after answer", "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101", anon, 200, "sent data after"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", anon, -1, "reading the answer to CONNECT"},
		{"truncated", "HTTP/1.1 200 OK\r\nX: y", anon, -1, "reading the answer to CONNECT"},
	}
	for _, c := range cases {
		err := readConnectResponse(bufio.NewReader(strings.NewReader(c.resp)), c.proxy)
		if c.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.says)
			continue
		}
		var pe *ProxyError
		if isPE := errors.As(err, &pe); isPE != (c.status > 0) || isPE && pe.StatusCode != c.status {
			t.Errorf("%s: error %#v, want status %d", c.name, err, c.status)
		}
	}
}

func TestSocksGreetingAndAuth(t *testing.T) {
	if got := socksGreeting(nil); !bytes.Equal(got, []byte{5, 1, 0}) {
		t.Errorf("greeting %v", got)
	}
	if got := socksGreeting(url.User("u")); !bytes.Equal(got, []byte{5, 2, 0, 2}) {
		t.Errorf("greeting with user %v", got)
	}
	got, err := socksAuthRequest(url.UserPassword("bob", "pw"))
	if want := []byte{1, 3, 'b', 'o', 'b', 2, 'p', 'w'}; err != nil || !bytes.Equal(got, want) {
		t.Errorf("auth %v, %v; want %v", got, err, want)
	}
	got, err = socksAuthRequest(url.User("bob"))
	if want := []byte{1, 3, 'b', 'o', 'b', 0}; err != nil || !bytes.Equal(got, want) {
		t.Errorf("auth without password %v, %v; want %v", got, err, want)
	}
	for _, u := range []*url.Userinfo{url.User(""), url.User(strings.Repeat("x", 256)), url.UserPassword("u", strings.Repeat("x", 256))} {
		if _, err := socksAuthRequest(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func TestSocksConnectRequest(t *testing.T) {
	cases := []struct {
		host string
		port uint16
		want []byte
	}{
		{"127.0.0.1", 9001, []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x23, 0x29}},
		{"::ffff:10.0.0.1", 80, []byte{5, 1, 0, 1, 10, 0, 0, 1, 0, 80}},
		{"::1", 443, []byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb}},
		{"ws.example", 65535, append(append([]byte{5, 1, 0, 3, 10}, "ws.example"...), 0xff, 0xff)},
	}
	for _, c := range cases {
		got, err := socksConnectRequest(c.host, c.port)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s:%d: %v, %v; want %v", c.host, c.port, got, err, c.want)
		}
	}
	if _, err := socksConnectRequest(strings.Repeat("a", 256), 80); err == nil {
		t.Error("a 256-byte name was accepted")
	}
}

func TestReadSocksReply(t *testing.T) {
	proxy, _ := url.Parse("socks5://u:secret@proxy.example")
	cases := []struct {
		name  string
		reply []byte
		rep   int // 0: success; -1: an error that is not a ProxyError
		says  string
	}{
		{"ipv4", []byte{5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}, 0, ""},
		{"ipv6", append(append([]byte{5, 0, 0, 4}, make([]byte, 16)...), 0, 1), 0, ""},
		{"name", []byte{5, 0, 0, 3, 1, 'h', 0, 1}, 0, ""},
		{"refused", []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, 5, "connection refused (reply 5)"},
		{"ruleset", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, 2, "not allowed by ruleset"},
		{"unknown code", []byte{5, 0x42, 0, 1}, 0x42, "unknown reply (reply 66)"},
		{"bad version", []byte{4, 0, 0, 1}, 0, "not a SOCKS5 reply"},
		{"bad type", []byte{5, 0, 0, 9}, 0, "unknown address type 9"},
		{"truncated", []byte{5, 0, 0, 1, 127}, -1, "reading the reply"},
	}
	for _, c := range cases {
		r := bytes.NewReader(append(c.reply, "after"...))
		err := readSocksReply(r, proxy)
		if c.says == "" {
			rest, _ := io.ReadAll(r)
			if err != nil || string(rest) != "after" {
				t.Errorf("%s: %v, left %q", c.name, err, rest)
			}
			continue
		}
		if c.name == "truncated" {
			err = readSocksReply(bytes.NewReader(c.reply), proxy)
		}
		if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.says)
			continue
		}
		var pe *ProxyError
		if isPE := errors.As(err, &pe); isPE != (c.rep >= 0) || isPE && pe.SOCKSReply != c.rep {
			t.Errorf("%s: error %#v, want reply %d", c.name, err, c.rep)
		}
	}
}

// A proxy that accepts the connection but never answers is bounded by the
// dial's context, for CONNECT and for SOCKS5 alike.
func TestProxyThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for _, scheme := range []string{"http", "socks5h"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		proxy := &url.URL{Scheme: scheme, Host: ln.Addr().String()}
		_, _, err := Dial(ctx, "ws://target.example/", &ClientOptions{Proxy: http.ProxyURL(proxy)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, want the context's deadline", scheme, err)
		}
		if c := <-accepted; c != nil {
			c.Close()
		}
	}
	ln.Close()
	for range accepted {
	}
}
