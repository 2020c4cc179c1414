package wsnet_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsnet"
)

// wsListener is a net.Listener whose connections are WebSockets accepted
// by an HTTP handler and wrapped by NetConn.
type wsListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *wsListener) Addr() net.Addr { return l.addr }

// ServeHTTP accepts a WebSocket and hands it to Accept as a net.Conn.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	nc := wsnet.NetConn(context.Background(), ws, websocket.BinaryMessage)
	select {
	case l.conns <- nc:
	case <-l.closed:
		nc.Close()
	}
}

// HTTP runs over the WebSocket stream: an http.Server serves connections
// that are WebSockets, and an http.Client's Transport dials through
// WebSockets. Keep-alive works (several requests share one connection),
// bodies stream both ways, and everything shuts down cleanly.
func TestHTTPOverWebSocket(t *testing.T) {
	outer := httptest.NewServer(nil)
	defer outer.Close()
	l := &wsListener{conns: make(chan net.Conn), closed: make(chan struct{}), addr: outer.Listener.Addr()}
	outer.Config.Handler = l

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over websocket")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body) // HTTP/1 handlers read the body before answering
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(body)
	})
	inner := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- inner.Serve(l) }()
	defer func() {
		inner.Close()
		if err := wait(t, served, "Serve to return"); err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()

	var dials atomic.Int32
	wsURL := "ws" + strings.TrimPrefix(outer.URL, "http")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		ws, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			return nil, err
		}
		return wsnet.NetConn(context.Background(), ws, websocket.BinaryMessage), nil
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	for range 3 {
		resp, err := client.Get("http://inner.test/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "hello over websocket" {
			t.Fatalf("GET: %d %q, %v", resp.StatusCode, body, err)
		}
	}
	big := bytes.Repeat([]byte("websocket stream "), 20000) // 340 kB, chunked both ways
	resp, err := client.Post("http://inner.test/echo", "application/octet-stream", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, big) {
		t.Fatalf("POST echo: %d bytes, %v", len(body), err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for sequential requests, want 1 (keep-alive)", n)
	}
}
