package wsnet_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsnet"
)

// wsPair returns the two ends of a WebSocket connection over 127.0.0.1,
// dropped when the test ends.
func wsPair(t testing.TB) (server, client *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(accepted)
			return
		}
		accepted <- c
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	select {
	case server = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.CloseNow(); server.CloseNow() })
	return server, client
}

// netPair returns both ends as net.Conns carrying binary messages, and the
// WebSocket connections under them.
func netPair(t testing.TB) (server, client net.Conn, wsServer, wsClient *websocket.Conn) {
	t.Helper()
	wsServer, wsClient = wsPair(t)
	server = wsnet.NetConn(context.Background(), wsServer, websocket.BinaryMessage)
	client = wsnet.NetConn(context.Background(), wsClient, websocket.BinaryMessage)
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client, wsServer, wsClient
}

// wait receives from ch or fails the test after a generous bound.
func wait[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
