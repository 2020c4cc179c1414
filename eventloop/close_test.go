package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// closeServer serves the event API: "close" closes from the handler with
// 4000, "closenow" drops the connection; every connection is also handed
// to conns, for closing from another goroutine.
func closeServer(t *testing.T, inline bool, opts *websocket.ServerOptions, rec *closeRecorder, conns chan *websocket.Conn) *eventloop.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, opts)
		c.OnMessage(func(m websocket.Message) {
			switch m.Text() {
			case "close":
				c.Close(4000, "from the handler")
			case "closenow":
				c.CloseNow()
			default:
				c.SendText(m.Text())
			}
		})
		c.OnClose(rec.onClose)
		if conns != nil {
			c.OnOpen(func() { conns <- c })
		}
		c.Start()
	})
	s := &eventloop.Server{Handler: h, HandlersOnLoop: inline}
	start(t, s)
	return s
}

// TestClosingHandshake runs the closing handshake both ways, in both
// handler modes: OnClose runs exactly once with the code the peer sent
// (or 1006 when the connection was dropped), and the peer gets the close
// frame.
func TestClosingHandshake(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v/client", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			s := closeServer(t, inline, nil, rec, nil)
			c := dial(t, s.Addr().String(), nil)
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("the client's Close: %v (no close frame back?)", err)
			}
			if ev := rec.wait(t); ev != (closeEvent{websocket.StatusNormalClosure, "bye"}) {
				t.Fatalf("OnClose%v", ev)
			}
			waitNoConns(t, s)
			s.Close()
			rec.once(t)
		})
		t.Run(fmt.Sprintf("inline=%v/handler", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			s := closeServer(t, inline, nil, rec, nil)
			c := dialRaw(t, s.Addr().String())
			c.upgrade("/")
			c.writeFrame(0x81, []byte("close"))
			if code, reason := c.readClose(); code != 4000 || reason != "from the handler" {
				t.Fatalf("close frame %d %q", code, reason)
			}
			c.writeFrame(0x88, []byte{0x0f, 0xa0}) // 4000, echoed
			c.expectEOF()
			if ev := rec.wait(t); ev.code != 4000 {
				t.Fatalf("OnClose%v", ev)
			}
			waitNoConns(t, s)
			s.Close()
			rec.once(t)
		})
		t.Run(fmt.Sprintf("inline=%v/other goroutine", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			conns := make(chan *websocket.Conn, 1)
			s := closeServer(t, inline, nil, rec, conns)
			c := dial(t, s.Addr().String(), nil)
			sc := <-conns
			if err := sc.Close(4001, "from outside"); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.ReadMessage(testCtx(t), nil)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "from outside" {
				t.Fatalf("client read %v", err)
			}
			if ev := rec.wait(t); ev.code != 4001 {
				t.Fatalf("OnClose%v", ev)
			}
			waitNoConns(t, s)
			s.Close()
			rec.once(t)
		})
		t.Run(fmt.Sprintf("inline=%v/CloseNow", inline), func(t *testing.T) {
			rec := newCloseRecorder()
			s := closeServer(t, inline, nil, rec, nil)
			c := dial(t, s.Addr().String(), nil)
			if err := c.Write(testCtx(t), websocket.TextMessage, []byte("closenow")); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.ReadMessage(testCtx(t), nil)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusAbnormalClosure {
				t.Fatalf("client read %v", err)
			}
			if ev := rec.wait(t); ev.code != websocket.StatusAbnormalClosure {
				t.Fatalf("OnClose%v", ev)
			}
			waitNoConns(t, s)
			s.Close()
			rec.once(t)
		})
	}
}

// TestProtocolErrors sends frames that break the protocol: the server
// answers with the close code RFC 6455 asks for, the peer gets that close
// frame and then a clean end of stream (no reset losing it), and OnClose
// runs once with the code.
func TestProtocolErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		code  websocket.StatusCode
	}{
		{"unmasked frame", []byte{0x81, 0x02, 'h', 'i'}, websocket.StatusProtocolError},
		{"reserved opcode", encodeFrame(0x83, nil), websocket.StatusProtocolError},
		{"RSV1 without an extension", encodeFrame(0xc1, []byte("x")), websocket.StatusProtocolError},
		{"fragmented ping", encodeFrame(0x09, nil), websocket.StatusProtocolError},
		{"continuation first", encodeFrame(0x80, []byte("x")), websocket.StatusProtocolError},
		{"invalid UTF-8", encodeFrame(0x81, []byte{0xff, 0xfe}), websocket.StatusInvalidFramePayloadData},
		{"invalid UTF-8 close reason", encodeFrame(0x88, []byte{0x03, 0xe8, 0xff}), websocket.StatusInvalidFramePayloadData},
		{"too big", encodeFrame(0x82, make([]byte, 1025)), websocket.StatusMessageTooBig},
		{"too big in fragments", append(encodeFrame(0x02, make([]byte, 1000)), encodeFrame(0x80, make([]byte, 100))...), websocket.StatusMessageTooBig},
	}
	for _, inline := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("inline=%v/%s", inline, tc.name), func(t *testing.T) {
				rec := newCloseRecorder()
				s := closeServer(t, inline, &websocket.ServerOptions{MaxLength: 1024}, rec, nil)
				c := dialRaw(t, s.Addr().String())
				c.upgrade("/")
				if _, err := c.nc.Write(tc.frame); err != nil {
					t.Fatal(err)
				}
				if code, reason := c.readClose(); code != tc.code {
					t.Fatalf("close frame %d %q, want %d", code, reason, tc.code)
				}
				c.expectEOF()
				if ev := rec.wait(t); ev.code != tc.code {
					t.Fatalf("OnClose%v, want %d", ev, tc.code)
				}
				waitNoConns(t, s)
				s.Close()
				rec.once(t)
			})
		}
	}
	t.Run("blocking API", func(t *testing.T) {
		for _, tc := range cases {
			readErr := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, &websocket.ServerOptions{MaxLength: 1024})
				if err != nil {
					readErr <- err
					return
				}
				_, _, err = c.ReadMessage(context.Background(), nil)
				readErr <- err
			})
			s := &eventloop.Server{Handler: h}
			start(t, s)
			c := dialRaw(t, s.Addr().String())
			c.upgrade("/")
			c.nc.Write(tc.frame)
			if code, _ := c.readClose(); code != tc.code {
				t.Fatalf("%s: close frame %d, want %d", tc.name, code, tc.code)
			}
			c.expectEOF()
			err := <-readErr
			var ce *websocket.CloseError
			var pe *websocket.ProtocolError
			if !errors.As(err, &pe) && !(errors.As(err, &ce) && ce.Code == tc.code) {
				t.Fatalf("%s: the handler read %v", tc.name, err)
			}
			s.Close()
		}
	})
}

// TestPanics checks that a panic in the http.Handler before it wrote
// anything gets 500 and a panic after the upgrade drops the connection,
// the server serving on; and that a panic in OnMessage closes with 1011,
// as on net/http.
//
// One intended difference: net/http answers a handler's panic by closing
// the connection without an answer; this backend, which buffers the
// response, sends 500 when nothing was sent yet.
func TestPanics(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			w.Header().Set("X-Lost", "1")
			panic("handler")
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/after-upgrade":
			if _, err := websocket.Accept(w, r, nil); err == nil {
				panic("after the upgrade")
			}
		case "/onmessage":
			c := websocket.NewServer(w, r, &websocket.ServerOptions{Logger: discardLogger()})
			c.OnMessage(func(m websocket.Message) { panic("OnMessage") })
			c.Start()
		default:
			w.Write([]byte("alive"))
		}
	})
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			s := &eventloop.Server{Handler: h, HandlersOnLoop: inline, Logger: discardLogger()}
			start(t, s)
			addr := s.Addr().String()

			c := dialRaw(t, addr)
			resp, body := c.roundTrip("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 500 || resp.Header.Get("X-Lost") != "" {
				t.Errorf("panic: %s %v %q", resp.Status, resp.Header, body)
			}

			c = dialRaw(t, addr)
			c.nc.Write([]byte("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n"))
			c.expectEOF() // nothing sent: closed without an answer

			c = dialRaw(t, addr)
			c.upgrade("/after-upgrade")
			if f, err := c.readFrame(); err != io.EOF {
				t.Errorf("after the handler panicked: frame %v, %v; want the connection closed", f, err)
			}
			c.nc.Close()

			c = dialRaw(t, addr)
			c.upgrade("/onmessage")
			c.writeFrame(0x81, []byte("boom"))
			if code, _ := c.readClose(); code != websocket.StatusInternalError {
				t.Errorf("OnMessage panic: close %d, want 1011", code)
			}

			c = dialRaw(t, addr)
			if resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "alive" {
				t.Errorf("after the panics: %s %q", resp.Status, body)
			}
		})
	}
}
