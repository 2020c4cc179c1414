package chatref

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// smallBuffers shrinks the send buffer of every accepted connection, so
// that a client that does not read fills the path to it after a few
// messages rather than after megabytes of kernel buffers.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return c, err
}

func dialSmall(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDial: func(network, a string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}}
		return nd.Dial(network, a)
	}}
	c, _, err := d.Dial("ws://"+addr+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowClientDropped checks the reference's two rules: a message goes to
// everyone as "nick: text", and a client that stops reading is dropped with
// 1008 once its queue of QueueLen messages is full, while the others go on.
func TestSlowClientDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, smallBuffers{ln}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := ln.Addr().String()
	slow := dialSmall(t, addr)
	defer slow.Close()
	sender, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	// One message at a time: the sender reads each back before sending
	// the next, so its own queue never holds more than one, and once it
	// has all of them the hub has handled every broadcast.
	const n = 2 * QueueLen
	text := bytes.Repeat([]byte("x"), 4000)
	sender.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i := range n {
		if err := sender.WriteMessage(websocket.TextMessage, text); err != nil {
			t.Fatal(err)
		}
		_, m, err := sender.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if nick, rest, ok := strings.Cut(string(m), ": "); !ok || !strings.HasPrefix(nick, "user-") || rest != string(text) {
			t.Fatalf("message %d is not \"nick: text\": %.40q", i, m)
		}
	}
	// Now the slow client reads: what was queued, then a 1008 close.
	slow.SetReadDeadline(time.Now().Add(60 * time.Second))
	read := 0
	for {
		_, _, err := slow.ReadMessage()
		if err == nil {
			read++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("after %d messages: %v, want a 1008 close", read, err)
		}
		break
	}
	if read >= n {
		t.Fatalf("slow client read all %d messages: not dropped", read)
	}
}
