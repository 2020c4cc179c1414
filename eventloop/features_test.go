package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// TestKeepalive checks PingInterval and PongTimeout on this backend: a
// peer that answers the pings stays connected, one that does not is
// dropped with 1006, in both handler modes.
func TestKeepalive(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := websocket.NewServer(w, r, &websocket.ServerOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 200 * time.Millisecond})
				c.OnClose(rec.onClose)
				c.Start()
			})
			s := &eventloop.Server{Handler: h, HandlersOnLoop: inline}
			start(t, s)

			// A peer that answers: five pings, each answered, and the
			// connection still open (it answers our close).
			c := dialRaw(t, s.Addr().String())
			c.upgrade("/")
			for range 5 {
				f, err := c.readFrame()
				if err != nil || f.op != 9 {
					t.Fatalf("want a ping: %v %v", f, err)
				}
				c.writeFrame(0x8a, f.payload)
			}
			c.writeFrame(0x88, []byte{3, 232})
			if code, _ := c.readClose(); code != websocket.StatusNormalClosure {
				t.Fatalf("close %d", code)
			}
			c.expectEOF()
			if ev := rec.wait(t); ev.code != websocket.StatusNormalClosure {
				t.Fatalf("answering peer: OnClose%v", ev)
			}

			// A peer that reads but never answers: dropped.
			c = dialRaw(t, s.Addr().String())
			c.upgrade("/")
			for {
				if _, err := c.readFrame(); err != nil {
					break // the server dropped us
				}
			}
			if ev := rec.wait(t); ev.code != websocket.StatusAbnormalClosure {
				t.Fatalf("silent peer: OnClose%v", ev)
			}
		})
	}
}

// TestCompression runs permessage-deflate on this backend, in both
// handler modes and both APIs, with and without context takeover.
func TestCompression(t *testing.T) {
	for _, noTakeover := range []bool{false, true} {
		for _, inline := range []bool{false, true} {
			for _, api := range []string{"event", "blocking"} {
				t.Run(fmt.Sprintf("%s/inline=%v/noContextTakeover=%v", api, inline, noTakeover), func(t *testing.T) {
					opts := &websocket.ServerOptions{Compression: &websocket.CompressionOptions{NoContextTakeover: noTakeover, Threshold: -1}}
					h := eventEcho(opts)
					if api == "blocking" {
						h = blockingEcho(opts)
					}
					s := &eventloop.Server{Handler: h, HandlersOnLoop: inline}
					start(t, s)
					c := dial(t, s.Addr().String(), &websocket.ClientOptions{Compression: &websocket.CompressionOptions{NoContextTakeover: noTakeover, Threshold: -1}})
					ext := c.Extensions()
					if !strings.Contains(ext, "permessage-deflate") || strings.Contains(ext, "no_context_takeover") != noTakeover {
						t.Fatalf("negotiated %q", ext)
					}
					ctx := testCtx(t)
					for i, size := range []int{1, 200, 5000, 70000, 1 << 20} {
						msg := strings.Repeat(fmt.Sprintf("message %d, ", i), size)[:size]
						if err := c.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
							t.Fatal(err)
						}
						if _, p, err := c.ReadMessage(ctx, nil); err != nil || string(p) != msg {
							t.Fatalf("size %d: %d bytes, %v", size, len(p), err)
						}
					}
					if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// TestServerClose checks that Close ends every connection, running each
// OnClose (with 1006: Close drops them, as http.Server.Close does), and
// that ListenAndServe then returns ErrServerClosed; and that Shutdown
// waits for the running handlers, returning ErrServerClosed from Serve.
func TestServerClose(t *testing.T) {
	for _, how := range []string{"Close", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			const n = 5
			rec := newCloseRecorder()
			rec.ch = make(chan closeEvent, n)
			opened := make(chan struct{}, n)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := websocket.NewServer(w, r, nil)
				c.OnOpen(func() { opened <- struct{}{} })
				c.OnClose(rec.onClose)
				c.Start()
			})
			s := &eventloop.Server{Handler: h}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }() // connections wait in ln's backlog until it serves
			for range n {
				dial(t, ln.Addr().String(), nil)
				<-opened
			}
			if how == "Close" {
				err = s.Close()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				err = s.Shutdown(ctx)
				cancel()
			}
			if err != nil {
				t.Fatal(err)
			}
			// Every OnClose has run when Close returns.
			if len(rec.calls) != n {
				t.Fatalf("%d OnClose calls when %s returned, want %d", len(rec.calls), how, n)
			}
			for range n {
				if ev := <-rec.ch; ev.code != websocket.StatusAbnormalClosure {
					t.Errorf("OnClose%v", ev)
				}
			}
			if err := <-served; !errors.Is(err, eventloop.ErrServerClosed) || !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve returned %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("a second Close: %v", err)
			}
		})
	}
}

// TestListenErrors checks that the errors of Listen say what is wrong.
func TestListenErrors(t *testing.T) {
	a := &eventloop.Server{Handler: http.NotFoundHandler()}
	start(t, a)
	b := &eventloop.Server{Handler: http.NotFoundHandler()}
	err := b.ListenAndServe(a.Addr().String())
	if err == nil || errors.Is(err, eventloop.ErrServerClosed) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("ListenAndServe on a used address: %v", err)
	}
	if err := (&eventloop.Server{}).Listen("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "Handler") {
		t.Fatalf("no handler: %v", err)
	}
	if err := a.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("Listen twice: no error")
	}
	if err := (&eventloop.Server{Handler: http.NotFoundHandler()}).Listen("127.0.0.1:bad"); err == nil {
		t.Fatal("bad address: no error")
	}
}

// TestShutdownWhileRequestsArrive races Shutdown against requests that
// complete their heads on connections already open: Shutdown must not
// race with the start of a handler (the race detector flags it if it
// does), every connection must end with a response or its close, and
// Shutdown must return without an error.
func TestShutdownWhileRequestsArrive(t *testing.T) {
	const rounds, n = 10, 16
	for range rounds {
		s := &eventloop.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		})}
		start(t, s)
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		sent := make(chan error, 1)
		go func() {
			for _, c := range conns {
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		<-sent // a write may fail once the server has closed the connection
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			b, err := io.ReadAll(c)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection %d: %v (read %q)", i, err, b)
			}
			if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
				t.Fatalf("connection %d got %q", i, b)
			}
		}
	}
}
