package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/wsdriver/websocket"
)

// hub is the usual broadcast hub: the set of open connections, guarded by a
// mutex. With the event API no read or write goroutine per client is
// needed: the library runs each connection's reads, and sends are safe
// from any goroutine.
type hub struct {
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

func (h *hub) add(c *websocket.Conn) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(c *websocket.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// broadcast encodes text once and writes the same frame to every
// connection. A connection that fails is dropped by the library and leaves
// the hub through its OnClose handler.
func (h *hub) broadcast(ctx context.Context, text string) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(text))
	if err != nil {
		return
	}
	h.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.WritePrepared(ctx, pm)
	}
}

// Broadcast to every client of a hub: each message a client sends is
// encoded once with NewPreparedMessage and written to all.
func ExampleNewPreparedMessage() {
	h := &hub{conns: map[*websocket.Conn]struct{}{}}
	joined := make(chan struct{}, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, nil)
		ws.OnOpen(func() { h.add(ws); joined <- struct{}{} })
		ws.OnMessage(func(m websocket.Message) { h.broadcast(context.Background(), m.Text()) })
		ws.OnClose(func(websocket.StatusCode, string) { h.remove(ws) })
		ws.Start()
	}))
	defer srv.Close()

	ctx := context.Background()
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close(websocket.StatusNormalClosure, "")
		clients = append(clients, c)
		<-joined
	}
	clients[0].Write(ctx, websocket.TextMessage, []byte("hello, everyone"))
	for i, c := range clients {
		_, msg, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("client %d got %q\n", i, msg)
	}
	// Output:
	// client 0 got "hello, everyone"
	// client 1 got "hello, everyone"
	// client 2 got "hello, everyone"
}
