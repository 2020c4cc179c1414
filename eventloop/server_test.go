package eventloop_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// start serves h on a new event-loop server and returns its ws:// URL.
func start(t *testing.T, s *eventloop.Server) string {
	t.Helper()
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "ws://" + s.Addr().String()
}

func eventEcho(opts *websocket.ServerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, opts)
		c.OnMessage(func(m websocket.Message) {
			if m.Type == websocket.TextMessage {
				c.SendText(string(m.Data))
			} else {
				c.SendBinary(m.Data)
			}
		})
		c.Start()
	})
}

func blockingEcho(opts *websocket.ServerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		for {
			typ, p, err := c.ReadMessage(context.Background(), nil)
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, p); err != nil {
				return
			}
		}
	})
}

func TestEcho(t *testing.T) {
	for _, inline := range []bool{false, true} {
		for name, h := range map[string]http.Handler{"event": eventEcho(nil), "blocking": blockingEcho(nil)} {
			t.Run(fmt.Sprintf("%s/inline=%v", name, inline), func(t *testing.T) {
				url := start(t, &eventloop.Server{Handler: h, HandlersOnLoop: inline})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int{0, 1, 125, 126, 5000, 70000, 1 << 20} {
					msg := strings.Repeat("x", size)
					if err := c.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					typ, p, err := c.ReadMessage(ctx, nil)
					if err != nil || typ != websocket.TextMessage || string(p) != msg {
						t.Fatalf("size %d: %v %v %d bytes", size, typ, err, len(p))
					}
				}
				if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestPlainRequest(t *testing.T) {
	url := start(t, &eventloop.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, "hello")
	})})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws") + "/page")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("X-Path") != "/page" {
		t.Fatalf("%s %q %v", resp.Status, body, resp.Header)
	}
}
