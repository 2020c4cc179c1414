package websocket

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// Connections waiting for their peers hold no read buffer (on platforms
// with idle reads), yet read what arrives afterwards.
func TestIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	if !idleReadSupported {
		t.Skip("idle reads need a Unix TCP connection")
	}
	var out atomic.Int64
	hook := func(delta int) { out.Add(int64(delta)) }
	readBufHook.Store(&hook)
	defer readBufHook.Store(nil)

	got := make(chan string, 10)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			_, msg, err := c.Read(testContext(t))
			if err != nil {
				return
			}
			got <- string(msg)
		}
	})
	var clients []*Conn
	for i := 0; i < 10; i++ {
		c := dialTest(t, url, nil)
		if err := c.Write(testContext(t), TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		wait(t, got, "message")
		clients = append(clients, c)
	}
	// All 10 server goroutines now wait for more: no buffer is out.
	deadline := time.Now().Add(5 * time.Second)
	for out.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d read buffers held by idle connections", out.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range clients {
		c.Write(testContext(t), TextMessage, []byte("again"))
		if m := wait(t, got, "message after idling"); m != "again" {
			t.Fatalf("got %q", m)
		}
	}
}
