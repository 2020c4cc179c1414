package websocket

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve starts an HTTP server on 127.0.0.1 for the test and returns its
// ws:// URL.
func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// echoHandler echoes messages with the blocking API until the connection
// ends.
func echoHandler(opts *ServerOptions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		var buf []byte
		for {
			typ, msg, err := c.ReadMessage(context.Background(), buf)
			if err != nil {
				return
			}
			buf = msg
			if err := c.Write(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}
}

// testContext is a context that ends with the test, bounded so that no
// test can hang.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialTest(t testing.TB, url string, opts *ClientOptions) *Conn {
	t.Helper()
	c, _, err := Dial(testContext(t), url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// wait receives from ch or fails the test after a bound.
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

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
