package interop

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsnet"
)

// TestNetConnConformance runs golang.org/x/net/nettest's TestConn, the
// standard check of net.Conn semantics (I/O, deadlines in the past,
// present and future, concurrent methods, Close), on wsnet.NetConn at
// both ends of a WebSocket over 127.0.0.1. It lives here, not in the
// library's module, so that the library's go.mod requires nothing. The
// messages are binary: the tests send random bytes, which text messages
// may not carry.
func TestNetConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		return netConnPipe(websocket.BinaryMessage)
	})
}

// netConnPipe dials a WebSocket to a new local server and wraps both ends
// with NetConn.
func netConnPipe(typ websocket.MessageType) (c1, c2 net.Conn, stop func(), err error) {
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			close(accepted)
			return
		}
		accepted <- ws
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		srv.Close()
		return nil, nil, nil, err
	}
	var server *websocket.Conn
	select {
	case server = <-accepted:
	case <-ctx.Done():
	}
	if server == nil {
		client.CloseNow()
		srv.Close()
		return nil, nil, nil, ctx.Err()
	}
	c1 = wsnet.NetConn(context.Background(), client, typ)
	c2 = wsnet.NetConn(context.Background(), server, typ)
	stop = func() {
		c1.Close()
		c2.Close()
		// Both closing handshakes must be over before the next test, so
		// that none of their goroutines outlive the run.
		for _, ws := range []*websocket.Conn{client, server} {
			select {
			case <-ws.Done():
			case <-time.After(2 * websocket.DefaultCloseTimeout):
				ws.CloseNow()
			}
		}
		srv.Close()
	}
	return c1, c2, stop, nil
}
