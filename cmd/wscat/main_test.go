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
