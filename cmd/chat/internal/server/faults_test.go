package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// TestTransportReportsClosing: once the peer's close frame has arrived, a
// write through the chat's transport reports chat.ErrConnClosing, which
// tells the client's writer to leave the closing handshake to the library
// instead of aborting the connection.
func TestTransportReportsClosing(t *testing.T) {
	conns := make(chan *websocket.Conn, 1)
	closed := make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, nil)
		ws.OnClose(func(websocket.StatusCode, string) { close(closed) })
		if ws.Start() == nil {
			conns <- ws
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := dial(t, "ws://"+ln.Addr().String()+"/", nil)
	ws := <-conns
	go c.Close(websocket.StatusNormalClosure, "bye")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not see the close")
	}
	tr := &transport{ws: ws}
	err = tr.WriteText(context.Background(), &chat.Payload{Data: []byte("late")})
	if !errors.Is(err, chat.ErrConnClosing) {
		t.Fatalf("write after the peer's close: %v, want chat.ErrConnClosing", err)
	}
	if err := tr.Ping(context.Background()); !errors.Is(err, chat.ErrConnClosing) {
		t.Fatalf("ping after the peer's close: %v, want chat.ErrConnClosing", err)
	}
}

// TestCloseUnderTrafficGetsCloseFrame: clients that close while their room
// is busy each get the server's close frame (their Close ends with the
// code they sent echoed, not 1006). Before the fix some got a bare FIN
// because the room's writer aborted the connection on its failed write.
// The race needs traffic to show, so the test counts over many clients.
func TestCloseUnderTrafficGetsCloseFrame(t *testing.T) {
	eachBackend(t, testCloseUnderTrafficGetsCloseFrame)
}

func testCloseUnderTrafficGetsCloseFrame(t *testing.T, backend string) {
	const clients = 60
	ts := start(t, Config{Backend: backend, Hub: chat.Config{Queue: 0, History: 0}}, false)
	sender := dial(t, ts.wsURL+"/chat/busy?nick=sender", nil)
	// The sender's own echoes must be read, or it becomes a slow consumer.
	go func() {
		for {
			if _, _, err := sender.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	stop := make(chan struct{})
	var sendWG sync.WaitGroup
	sendWG.Add(1)
	go func() {
		defer sendWG.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := sender.Write(ctx, websocket.TextMessage, fmt.Appendf(nil, "traffic %d", i))
			cancel()
			if err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); sendWG.Wait() }()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var cut []string
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, ts.wsURL+"/chat/busy", nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			// Read until traffic is flowing to this client, then close
			// in the middle of it.
			for n := 0; n < 20; {
				_, b, err := c.Read(ctx)
				if err != nil {
					t.Errorf("client %d read: %v", i, err)
					return
				}
				if len(b) > 8 && string(b[:8]) == "sender: " {
					n++
				}
			}
			c.Close(websocket.StatusNormalClosure, "leaving")
			var ce *websocket.CloseError
			if err := c.Err(); !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure {
				mu.Lock()
				cut = append(cut, fmt.Sprint(err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(cut) > 0 {
		t.Fatalf("%d of %d clients closing under traffic got no close frame from the server: %q", len(cut), clients, cut)
	}
}
