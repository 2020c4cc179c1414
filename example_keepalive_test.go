package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsdriver/websocket"
)

// Keepalive on a server: every PingInterval it pings each client, and drops
// a client from which nothing arrives within PongTimeout of a ping. A
// client answers pings only while it reads: the event API always does; a
// blocking-API client that stops reading is dropped like a dead one.
func ExampleServerOptions_keepalive() {
	dropped := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, &websocket.ServerOptions{
			PingInterval: 50 * time.Millisecond,
			PongTimeout:  200 * time.Millisecond,
		})
		ws.OnClose(func(code websocket.StatusCode, reason string) {
			if code == websocket.StatusAbnormalClosure {
				dropped <- fmt.Sprintf("%v: %s", code, reason)
			}
		})
		ws.Start()
	}))
	defer srv.Close()
	ctx := context.Background()

	// A live client: its event loop reads, so it answers the server's pings,
	// and its own Ping measures a round trip.
	live := websocket.NewClient(wsURL(srv), nil)
	if err := live.Start(); err != nil {
		log.Fatal(err)
	}
	rtt, err := live.Ping(ctx)
	fmt.Println("pong from a reading peer:", err == nil && rtt > 0)
	live.Close(websocket.StatusNormalClosure, "")

	// A client that never reads never answers: the server drops it.
	deaf, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer deaf.CloseNow()
	fmt.Println(<-dropped)
	// Output:
	// pong from a reading peer: true
	// 1006 (abnormal closure): keepalive: no pong within 200ms
}
