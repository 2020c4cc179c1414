package server

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// TestHandshakeRequestNotRetained: once a chat connection is open, nothing
// of the chat keeps its handshake request alive. A handler closure that
// captured the request kept every header of it for the connection's life
// (1,000 connections with 64 KiB of headers held over 100 MiB).
func TestHandshakeRequestNotRetained(t *testing.T) {
	srv, err := New(Config{Hub: chat.Config{History: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Hub().Shutdown(ctx)
	})
	reqs := make(chan weak.Pointer[http.Request], 1)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- weak.Make(r)
		srv.serveWS(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	hdr := http.Header{"X-Big": []string{strings.Repeat("x", 32<<10)}}
	c := dialHeader(t, "ws://"+ln.Addr().String()+"/chat", hdr)
	wp := <-reqs
	write(t, c, "hello")
	if got := read(t, c); !strings.HasSuffix(got, ": hello") {
		t.Fatalf("got %q", got)
	}
	// The connection is open and working; its request must be garbage.
	deadline := time.Now().Add(10 * time.Second)
	for wp.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the handshake request is still reachable while the connection is open")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	write(t, c, "still here")
	if got := read(t, c); !strings.HasSuffix(got, ": still here") {
		t.Fatalf("got %q", got)
	}
}

func dialHeader(t *testing.T, url string, h http.Header) *websocket.Conn {
	t.Helper()
	return dial(t, url, &websocket.ClientOptions{Header: h})
}
