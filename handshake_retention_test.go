package websocket

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"
)

// TestHandshakeRequestNotRetained opens event-API connections with a large
// handshake header and checks that, once the handler has returned, the
// request and its headers can be collected while the connection is still
// open and in use: an upgraded connection keeps nothing of its handshake.
func TestHandshakeRequestNotRetained(t *testing.T) {
	filler := strings.Repeat("x", 256<<10)
	// A long list of offered subprotocols: the one chosen must not keep
	// the header value alive.
	offered := []string{strings.Repeat("p", 64<<10), "chat"}

	type refs struct {
		req      weak.Pointer[http.Request]
		filler   weak.Pointer[byte] // the big header value's bytes
		protocol weak.Pointer[byte] // the Sec-WebSocket-Protocol value's bytes
	}
	got := make(chan refs, 1)
	handlerDone := make(chan struct{})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		ws := NewServer(w, r, &ServerOptions{Protocols: []string{"chat"}})
		ws.OnMessage(func(m Message) { ws.SendBinary(m.Data) })
		got <- refs{
			req:      weak.Make(r),
			filler:   weak.Make(unsafe.StringData(r.Header.Get("X-Filler"))),
			protocol: weak.Make(unsafe.StringData(r.Header.Get("Sec-WebSocket-Protocol"))),
		}
		ws.Start()
	})
	c := dialTest(t, url, &ClientOptions{
		Protocols: offered,
		Header:    http.Header{"X-Filler": {filler}},
	})
	if c.Protocol() != "chat" {
		t.Fatalf("protocol = %q", c.Protocol())
	}
	r := wait(t, got, "the handshake")
	wait(t, handlerDone, "the handler to return")

	ctx := testContext(t)
	echo := func() {
		t.Helper()
		if err := c.Write(ctx, BinaryMessage, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping" {
			t.Fatalf("echo = %q, %v", msg, err)
		}
	}
	echo()

	// net/http's serving goroutine ends a little after the handler
	// returns; collect until the request is gone, within a generous bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if r.req.Value() == nil && r.filler.Value() == nil && r.protocol.Value() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still reachable after the handshake: request %v, X-Filler header %v, Sec-WebSocket-Protocol header %v",
				r.req.Value() != nil, r.filler.Value() != nil, r.protocol.Value() != nil)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The connection is still open and works.
	echo()
	if s := c.ReadyState(); s != Open {
		t.Fatalf("client state = %v", s)
	}
}
