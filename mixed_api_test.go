package websocket

import (
	"errors"
	"net/http"
	"testing"
)

// TestBlockingReadOnEventConn checks that the blocking reads refuse a
// connection whose event loop runs, at once, instead of waiting for ever
// for the loop's hold on the read side.
func TestBlockingReadOnEventConn(t *testing.T) {
	ready := make(chan *Conn, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, nil)
		if ws.Start() == nil {
			ready <- ws
		}
	})
	client := dialTest(t, url, nil)
	ws := wait(t, ready, "the server connection")
	ctx := testContext(t)
	if _, _, err := ws.ReadMessage(ctx, nil); !errors.Is(err, ErrEventLoopReads) {
		t.Errorf("ReadMessage = %v, want ErrEventLoopReads", err)
	}
	if _, _, err := ws.Read(ctx); !errors.Is(err, ErrEventLoopReads) {
		t.Errorf("Read = %v, want ErrEventLoopReads", err)
	}
	if _, _, err := ws.NextReader(ctx); !errors.Is(err, ErrEventLoopReads) {
		t.Errorf("NextReader = %v, want ErrEventLoopReads", err)
	}
	// The event loop still owns the connection and closes it normally.
	client.Close(StatusNormalClosure, "")
	wait(t, ws.Done(), "the server connection to close")
}
