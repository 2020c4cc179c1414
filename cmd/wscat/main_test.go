package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// Lines of standard input go out as text messages; what comes back is
// printed, one message a line; end of input closes the connection.
func TestPipe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, bytes.ToUpper(msg))
			if string(msg) == "bin" {
				c.Write(r.Context(), websocket.BinaryMessage, []byte{1, 2})
			}
		}
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := run(ctx, []string{wsURL(srv)}, strings.NewReader("hello\nbin\n"), &out, &errOut)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; stderr %s", code, err, errOut.String())
	}
	if got, want := out.String(), "HELLO\nBIN\n[binary 2 bytes] 0102\n"; got != want {
		t.Fatalf("stdout %q, want %q; stderr %q", got, want, errOut.String())
	}
	if !strings.Contains(errOut.String(), "1000") {
		t.Fatalf("stderr %q does not report the close", errOut.String())
	}
}

// -echo sends everything back with its type until the server closes.
func TestEchoMode(t *testing.T) {
	type echoed struct {
		typ  websocket.MessageType
		data string
	}
	got := make(chan []echoed, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.ServerOptions{Protocols: []string{"p2"}})
		if err != nil {
			return
		}
		ctx := r.Context()
		sent := []echoed{{websocket.TextMessage, "ünïcode"}, {websocket.BinaryMessage, "\x00\x01\xff"}, {websocket.TextMessage, ""}}
		var back []echoed
		for _, m := range sent {
			c.Write(ctx, m.typ, []byte(m.data))
			typ, msg, err := c.Read(ctx)
			if err != nil {
				break
			}
			back = append(back, echoed{typ, string(msg)})
		}
		got <- back
		c.Close(websocket.StatusNormalClosure, "done")
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := run(ctx, []string{"-echo", "-protocol", "p1,p2", wsURL(srv)}, strings.NewReader(""), &out, &errOut)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; stderr %s", code, err, errOut.String())
	}
	back := <-got
	want := []echoed{{websocket.TextMessage, "ünïcode"}, {websocket.BinaryMessage, "\x00\x01\xff"}, {websocket.TextMessage, ""}}
	if len(back) != len(want) {
		t.Fatalf("echoed %v", back)
	}
	for i := range want {
		if back[i] != want[i] {
			t.Fatalf("echo %d: %+v, want %+v", i, back[i], want[i])
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"-max-length", "0", "ws://x"}, {"-header", "bad", "ws://x"}} {
		var errOut bytes.Buffer
		code, err := run(context.Background(), args, strings.NewReader(""), &bytes.Buffer{}, &errOut)
		if code != 2 || err == nil {
			t.Errorf("%v: exit %d, %v", args, code, err)
		}
	}
	code, err := run(context.Background(), []string{"ws://127.0.0.1:1/"}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if code != 1 || err == nil {
		t.Errorf("unreachable server: exit %d, %v", code, err)
	}
}

// A URL without ws:// or wss:// gets a hint; an http(s):// one is taken as
// ws(s):// with a note.
func TestURLHints(t *testing.T) {
	for _, c := range []struct{ url, says string }{
		{"localhost:9001/", `has no scheme; try ws://localhost:9001/ (or wss://localhost:9001/ for TLS)`},
		{"127.0.0.1:9001", `try ws://127.0.0.1:9001`},
		{"ftp://h/", `scheme "ftp" is not WebSocket; use ws:// (or wss:// for TLS)`},
	} {
		code, err := run(context.Background(), []string{c.url}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: exit %d, %v; want an error saying %q", c.url, code, err, c.says)
		}
	}
	var errOut bytes.Buffer
	code, err := run(context.Background(), []string{"http://127.0.0.1:1/x"}, strings.NewReader(""), &bytes.Buffer{}, &errOut)
	if note := "connecting to ws://127.0.0.1:1/x"; code != 1 || !strings.Contains(errOut.String(), note) {
		t.Errorf("http URL: exit %d, %v, stderr %q; want a note saying %q", code, err, errOut.String(), note)
	}
}

// Flags may follow the URL; -v says what was agreed.
func TestFlagsAfterURLAndVerbose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.ServerOptions{Protocols: []string{"p2"}, Compression: &websocket.CompressionOptions{}})
		if err != nil {
			return
		}
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, msg)
		}
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := run(ctx, []string{"-compress", wsURL(srv), "-v", "-protocol", "p1,p2"}, strings.NewReader("hi\n"), &out, &errOut)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; stderr %s", code, err, errOut.String())
	}
	if out.String() != "hi\n" {
		t.Errorf("stdout %q", out.String())
	}
	for _, want := range []string{"connected: " + wsURL(srv) + "\n", "subprotocol: p2\n", "extensions: permessage-deflate"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q does not say %q", errOut.String(), want)
		}
	}
	// The environment never proxies loopback addresses.
	if strings.Contains(errOut.String(), "proxy:") {
		t.Errorf("stderr %q names a proxy", errOut.String())
	}

	// Without -v nothing of that is said; after "--" a dash is a URL.
	errOut.Reset()
	code, err = run(ctx, []string{"-protocol", "p1", "--", "-v"}, strings.NewReader(""), &bytes.Buffer{}, &errOut)
	if code != 2 || err == nil || !strings.Contains(err.Error(), `URL "-v" has no scheme`) {
		t.Errorf(`"-- -v": exit %d, %v`, code, err)
	}
}

// -proxy (or WSCAT_PROXY) is checked before dialing, and used.
func TestProxyFlag(t *testing.T) {
	for _, c := range []struct{ proxy, says string }{
		{"127.0.0.1:3128", `has no scheme; try http://127.0.0.1:3128 (or socks5://127.0.0.1:3128)`},
		{"https://u:secret@p:443", `scheme "https" is not supported; use http://, socks5:// or socks5h://`},
		{"http://", `has no host`},
	} {
		code, err := run(context.Background(), []string{"ws://127.0.0.1:1/", "-proxy", c.proxy}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("-proxy %s: exit %d, %v; want an error saying %q", c.proxy, code, err, c.says)
		}
	}
	// Nothing listens on port 1: the error is about the proxy, not the
	// server, which shows the proxy was dialed.
	t.Setenv("WSCAT_PROXY", "socks5://u:secret@127.0.0.1:1")
	code, err := run(context.Background(), []string{"ws://127.0.0.1:2/"}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if want := "dial proxy socks5://u:xxxxx@127.0.0.1:1"; code != 1 || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("WSCAT_PROXY: exit %d, %v; want an error saying %q", code, err, want)
	}
	// -proxy none wins over the environment and dials directly.
	code, err = run(context.Background(), []string{"-proxy", "none", "ws://127.0.0.1:2/"}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if want := "websocket: dial 127.0.0.1:2"; code != 1 || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("-proxy none: exit %d, %v; want an error saying %q", code, err, want)
	}
}
