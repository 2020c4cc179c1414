package eventloop_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// TestBlockingHandlerDoesNotStall checks that, in the default mode, an
// OnMessage handler that blocks holds its own connection only: another
// connection on the same (single) loop still gets its echoes. (With
// HandlersOnLoop the handler holds the loop and every connection of it
// waits: documented on Server.HandlersOnLoop, not tested, as it can only
// be shown by timing.)
func TestBlockingHandlerDoesNotStall(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, nil)
		c.OnMessage(func(m websocket.Message) {
			if m.Text() == "block" {
				entered <- struct{}{}
				<-release
			}
			c.SendText(m.Text())
		})
		c.Start()
	})
	s := &eventloop.Server{Handler: h, Loops: 1}
	start(t, s)
	ctx := testCtx(t)
	a := dial(t, s.Addr().String(), nil)
	b := dial(t, s.Addr().String(), nil)
	if err := a.Write(ctx, websocket.TextMessage, []byte("block")); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := range 10 {
		msg := fmt.Sprint("hello ", i)
		if err := b.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, p, err := b.ReadMessage(ctx, nil); err != nil || string(p) != msg {
			t.Fatalf("while another handler blocks: %q %v", p, err)
		}
	}
	close(release)
	if _, p, err := a.ReadMessage(ctx, nil); err != nil || string(p) != "block" {
		t.Fatalf("after the release: %q %v", p, err)
	}
	a.Close(websocket.StatusNormalClosure, "")
	b.Close(websocket.StatusNormalClosure, "")
}

// TestBackpressure checks that a handler that does not keep up makes the
// server stop reading its connection, so that the peer's writes block
// (instead of the server buffering without bound), and that nothing is
// lost: once the handler is released it gets every message, in order.
// Both APIs, and both handler modes.
func TestBackpressure(t *testing.T) {
	for _, api := range []string{"event", "blocking"} {
		for _, inline := range []bool{false, true} {
			if api == "event" && inline {
				continue // a handler on the loop must not block
			}
			t.Run(fmt.Sprintf("%s/inline=%v", api, inline), func(t *testing.T) {
				testBackpressure(t, api, inline)
			})
		}
	}
}

func testBackpressure(t *testing.T, api string, inline bool) {
	const size = 16 << 10
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	// check counts the messages, each numbered, and answers "end" with
	// how many came in order.
	check := func() func(p []byte) (string, bool) {
		next := uint64(0)
		bad := ""
		return func(p []byte) (string, bool) {
			if string(p) == "end" {
				if bad != "" {
					return bad, true
				}
				return fmt.Sprint(next), true
			}
			if next == 0 {
				entered <- struct{}{}
				<-release
			}
			if len(p) != size || binary.BigEndian.Uint64(p) != next {
				if bad == "" {
					bad = fmt.Sprintf("message %d: %d bytes, numbered %d", next, len(p), binary.BigEndian.Uint64(p))
				}
			}
			next++
			return "", false
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := check()
		if api == "event" {
			c := websocket.NewServer(w, r, nil)
			c.OnMessage(func(m websocket.Message) {
				if answer, end := got(m.Data); end {
					c.SendText(answer)
				}
			})
			c.Start()
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			_, p, err := c.ReadMessage(context.Background(), nil)
			if err != nil {
				return
			}
			if answer, end := got(p); end {
				c.Write(context.Background(), websocket.TextMessage, []byte(answer))
			}
		}
	})
	s := &eventloop.Server{Handler: h, HandlersOnLoop: inline}
	start(t, s)
	c := dialRaw(t, s.Addr().String())
	c.upgrade("/")

	// Write until a write does not finish within a second: the server
	// has stopped reading and the socket buffers are full. A server that
	// kept reading would take everything; the bound says it did not.
	const bound = 256 << 20
	payload := make([]byte, size)
	var sent uint64
	var rest []byte // what is left of a frame a timed-out write cut
	for written := 0; ; written += size {
		if written > bound {
			t.Fatalf("the server took %d bytes while its handler was blocked", written)
		}
		binary.BigEndian.PutUint64(payload, sent)
		fr := encodeFrame(0x82, payload)
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.nc.Write(fr)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			rest = fr[n:]
			sent++
			break
		}
		sent++
	}
	<-entered
	close(release)
	c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.nc.Write(rest); err != nil {
		t.Fatal(err)
	}
	c.writeFrame(0x81, []byte("end"))
	f, err := c.readFrame()
	if err != nil || string(f.payload) != fmt.Sprint(sent) {
		t.Fatalf("the handler reported %q (%v), want %d messages in order", f.payload, err, sent)
	}
	c.writeFrame(0x88, []byte{3, 232})
	if code, _ := c.readClose(); code != websocket.StatusNormalClosure {
		t.Fatalf("close code %d", code)
	}
}

// TestSlowReaderDropped checks that sends to a peer that does not read
// drop the connection once MaxWriteQueue is passed: OnClose runs once with
// 1006, in both handler modes.
func TestSlowReaderDropped(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			sendErr := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := websocket.NewServer(w, r, nil)
				c.OnMessage(func(m websocket.Message) {
					p := make([]byte, 64<<10)
					for range 100_000 {
						if err := c.SendBinary(p); err != nil {
							sendErr <- err
							return
						}
					}
					sendErr <- nil
				})
				c.OnClose(rec.onClose)
				c.Start()
			})
			s := &eventloop.Server{Handler: h, HandlersOnLoop: inline, MaxWriteQueue: 256 << 10}
			start(t, s)
			c := dialRaw(t, s.Addr().String())
			c.upgrade("/")
			c.writeFrame(0x81, []byte("flood"))
			if err := <-sendErr; err == nil {
				t.Fatal("6 GiB sent to a peer that does not read")
			}
			if ev := rec.wait(t); ev.code != websocket.StatusAbnormalClosure {
				t.Fatalf("OnClose(%d, %q), want 1006", ev.code, ev.reason)
			}
			waitNoConns(t, s)
			s.Close()
			rec.once(t)
		})
	}
}

// TestCloseTimeoutNonReader checks that closing a connection with bytes
// queued for a peer that does not read ends within the server's
// CloseTimeout instead of waiting for the peer forever.
func TestCloseTimeoutNonReader(t *testing.T) {
	for _, how := range []string{"CloseNow", "Close"} {
		t.Run(how, func(t *testing.T) {
			rec := newCloseRecorder()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := websocket.NewServer(w, r, &websocket.ServerOptions{CloseTimeout: 200 * time.Millisecond})
				c.OnMessage(func(m websocket.Message) {
					p := make([]byte, 64<<10)
					for range 512 { // 32 MiB: more than the socket buffers hold
						c.SendBinary(p)
					}
					if how == "CloseNow" {
						c.CloseNow()
					} else {
						c.Close(websocket.StatusGoingAway, "")
					}
				})
				c.OnClose(rec.onClose)
				c.Start()
			})
			s := &eventloop.Server{Handler: h, MaxWriteQueue: 64 << 20, CloseTimeout: 300 * time.Millisecond}
			start(t, s)
			c := dialRaw(t, s.Addr().String())
			c.upgrade("/")
			c.writeFrame(0x81, []byte("fill"))
			rec.wait(t)
			waitNoConns(t, s) // the client never reads: only the timeout ends it
			s.Close()
			rec.once(t)
		})
	}
}

// waitNoConns waits until the server has no connection open.
func waitNoConns(t *testing.T, s *eventloop.Server) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for s.NumConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) still open", s.NumConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
