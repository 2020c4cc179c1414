package websocket

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSmokeEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		var buf []byte
		for {
			typ, msg, err := c.ReadMessage(context.Background(), buf)
			if err != nil {
				return
			}
			buf = msg
			if err := c.Write(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		msg := strings.Repeat("x", n)
		if err := c.Write(ctx, TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != TextMessage || string(got) != msg {
			t.Fatalf("n=%d typ=%v len=%d err=%v", n, typ, len(got), err)
		}
	}
	if err := c.Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); CloseStatus(err) != StatusNormalClosure {
		t.Fatalf("after close: %v", err)
	}
}

func TestSmokeEvents(t *testing.T) {
	closed := make(chan StatusCode, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, nil)
		ws.OnMessage(func(m Message) { ws.Send(m.Text()) })
		ws.OnClose(func(code StatusCode, reason string) { closed <- code })
		ws.Start()
	}))
	defer srv.Close()
	cl := NewClient("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	got := make(chan string, 1)
	cl.OnMessage(func(m Message) { got <- m.Text(); cl.Close(StatusNormalClosure, "done") })
	cl.Send("Hi") // queued until open
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "Hi" {
			t.Fatal(s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timeout")
	}
	select {
	case code := <-closed:
		if code != StatusNormalClosure {
			t.Fatal(code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timeout close")
	}
	<-cl.Done()
}
