package evloop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/upgrade"
)

// TestHandshakeOverEngine runs the two halves of the backend's opening
// handshake together: the engine feeds the parser in pieces, a refusal is
// answered with its status and the connection closed, a parsed request is
// answered, and a client that never finishes its request is dropped by
// the handshake timeout.
func TestHandshakeOverEngine(t *testing.T) {
	closes := make(chan error, 3)
	s := listen(t, Config{
		ReadBufferSize:  5, // the request arrives in many pieces
		TimerResolution: 20 * time.Millisecond,
		OnOpen: func(c *Conn) {
			c.SetContext(new(upgrade.Parser))
			c.SetTimeout(300 * time.Millisecond)
		},
		OnData: func(c *Conn, b []byte) {
			p, _ := c.Context().(*upgrade.Parser)
			if p == nil {
				return // handshake done: the session would take b
			}
			_, done, err := p.Feed(b)
			var e *upgrade.Error
			switch {
			case errors.As(err, &e):
				c.Write(e.AppendResponse(nil))
				c.Close()
			case done:
				r := p.Request(context.Background(), "")
				c.SetTimeout(0)
				c.SetContext(nil)
				c.Write([]byte("HTTP/1.1 204 No Content\r\nX-Path: " + r.URL.Path + "\r\n\r\n"))
			}
		},
		OnClose: func(c *Conn, err error) { closes <- err },
	})

	refused := dial(t, s)
	io.WriteString(refused, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(refused), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Fatalf("refusal: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	if err := <-closes; err != nil {
		t.Fatalf("OnClose(%v) after a refusal", err)
	}

	accepted := dial(t, s)
	io.WriteString(accepted, "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(accepted), nil)
	if err != nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Path") != "/chat" {
		t.Fatalf("accepted: %v, %v", resp, err)
	}

	slow := dial(t, s)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHo")
	if _, err := slow.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("unfinished handshake: read %v, want io.EOF", err)
	}
	if err := <-closes; err != ErrTimeout {
		t.Fatalf("OnClose(%v), want ErrTimeout", err)
	}
	// The accepted connection cancelled its timeout, which was due before
	// the slow one's: it is still open.
	accepted.Close()
	if err := <-closes; err != io.EOF {
		t.Fatalf("OnClose(%v), want io.EOF", err)
	}
}
