package websocket

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// eventServer serves the event API: every message is echoed with its type,
// and each server Conn is handed to conns, its OnClose to closes.
func eventServer(t *testing.T, opts *ServerOptions, conns chan<- *Conn, closes chan<- closeSeen) string {
	t.Helper()
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, opts)
		ws.OnMessage(func(m Message) { ws.Write(context.Background(), m.Type, m.Data) })
		ws.OnClose(func(code StatusCode, reason string) {
			if closes != nil {
				closes <- closeSeen{code, reason}
			}
		})
		if err := ws.Start(); err != nil {
			t.Error(err)
			return
		}
		if conns != nil {
			conns <- ws
		}
	})
}

type closeSeen struct {
	code   StatusCode
	reason string
}

// waitParked waits until the server connection's event loop has parked:
// no goroutine serves it any more.
func waitParked(t *testing.T, ws *Conn) {
	t.Helper()
	if !pollSupported {
		return
	}
	if !ws.polled() {
		t.Fatal("event-API connection over TCP is not registered with the poller")
	}
	deadline := time.Now().Add(10 * time.Second)
	for ws.pollReg().state.Load() != loopParked {
		if time.Now().After(deadline) {
			t.Fatalf("event loop never parked (state %d)", ws.pollReg().state.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func echoOnce(t *testing.T, c *Conn, typ MessageType, payload []byte) {
	t.Helper()
	ctx := testContext(t)
	if err := c.Write(ctx, typ, payload); err != nil {
		t.Fatal(err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil || gt != typ || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %v %d bytes %v; want %v %d bytes", gt, len(got), err, typ, len(payload))
	}
}

func TestEventLoopParksAndWakes(t *testing.T) {
	conns := make(chan *Conn, 1)
	url := eventServer(t, &ServerOptions{}, conns, nil)
	c := dialTest(t, url, nil)
	ws := wait(t, conns, "server conn")

	// A new, quiet connection parks; a message wakes it, and it parks
	// again once idle.
	for i := range 3 {
		waitParked(t, ws)
		echoOnce(t, c, TextMessage, []byte(fmt.Sprintf("message %d", i)))
	}
	// Large messages after a park are read whole.
	waitParked(t, ws)
	echoOnce(t, c, BinaryMessage, bytes.Repeat([]byte{7}, 200_000))
	// Pings are answered by a parked connection too.
	waitParked(t, ws)
	pong := make(chan []byte, 1)
	c.OnPong(func(p []byte) { pong <- append([]byte(nil), p...) })
	if err := c.SendPing([]byte("are you there")); err != nil {
		t.Fatal(err)
	}
	go c.Read(testContext(t)) // the client's reader delivers the pong
	if p := wait(t, pong, "pong"); string(p) != "are you there" {
		t.Fatalf("pong %q", p)
	}
}

// A message that arrives in pieces, with pauses of many idle sweeps
// between them, is not cut by the sweep: the loop parks only between
// messages.
func TestEventLoopSlowMessage(t *testing.T) {
	conns := make(chan *Conn, 1)
	url := eventServer(t, &ServerOptions{}, conns, nil)
	nc := rawClient(t, url)
	defer nc.Close()
	ws := wait(t, conns, "server conn")
	waitParked(t, ws)

	payload := bytes.Repeat([]byte("slow "), 100)
	frame := clientFrame(true, 0, opText, payload)
	for _, piece := range [][]byte{frame[:1], frame[1:5], frame[5:200], frame[200:]} {
		if _, err := nc.Write(piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // ten sweeps in the tests
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	readServerEvents(t, nc, "reading the echo", func(ev event) bool {
		if ev.kind == eventData {
			got = append(got, ev.data...)
		}
		return len(got) >= len(payload)
	})
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo differs: %q", got)
	}
}

// Every way a parked connection can end reaches OnClose, once, with the
// right code.
func TestParkedConnectionCloses(t *testing.T) {
	cases := []struct {
		name   string
		opts   ServerOptions
		end    func(t *testing.T, c *Conn, nc net.Conn, ws *Conn)
		code   StatusCode
		reason string
	}{
		{
			name: "peer drops TCP",
			end:  func(t *testing.T, c *Conn, nc net.Conn, ws *Conn) { nc.Close() },
			code: StatusAbnormalClosure,
		},
		{
			name: "peer closes",
			end: func(t *testing.T, c *Conn, nc net.Conn, ws *Conn) {
				if err := c.Close(StatusGoingAway, "bye"); err != nil {
					t.Error(err)
				}
			},
			code: StatusGoingAway, reason: "bye",
		},
		{
			name: "server closes",
			end: func(t *testing.T, c *Conn, nc net.Conn, ws *Conn) {
				if err := ws.Close(StatusPolicyViolation, "go away"); err != nil {
					t.Error(err)
				}
				// The client's read sees the close frame and answers it.
				if _, _, err := c.Read(testContext(t)); CloseStatus(err) != StatusPolicyViolation {
					t.Errorf("client read %v", err)
				}
			},
			// OnClose reports the peer's answer: the code echoed, no reason.
			code: StatusPolicyViolation,
		},
		{
			name: "server drops",
			end:  func(t *testing.T, c *Conn, nc net.Conn, ws *Conn) { ws.CloseNow() },
			code: StatusAbnormalClosure,
		},
		{
			name: "close timeout",
			opts: ServerOptions{CloseTimeout: 200 * time.Millisecond},
			end: func(t *testing.T, c *Conn, nc net.Conn, ws *Conn) {
				// The raw client never answers the close frame.
				if err := ws.Close(StatusNormalClosure, ""); err != nil {
					t.Error(err)
				}
			},
			code: StatusAbnormalClosure,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conns := make(chan *Conn, 1)
			closes := make(chan closeSeen, 2)
			url := eventServer(t, &tc.opts, conns, closes)
			var c *Conn
			var nc net.Conn
			if tc.name == "close timeout" || tc.name == "peer drops TCP" {
				nc = rawClient(t, url)
				defer nc.Close()
			} else {
				c = dialTest(t, url, nil)
			}
			ws := wait(t, conns, "server conn")
			waitParked(t, ws)
			tc.end(t, c, nc, ws)
			got := wait(t, closes, "OnClose")
			if got.code != tc.code || (tc.reason != "" && got.reason != tc.reason) {
				t.Fatalf("OnClose(%v, %q), want %v %q", got.code, got.reason, tc.code, tc.reason)
			}
			select {
			case again := <-closes:
				t.Fatalf("OnClose ran twice: %+v", again)
			case <-time.After(50 * time.Millisecond):
			}
			if ws.ReadyState() != Closed {
				t.Fatalf("state after OnClose: %v", ws.ReadyState())
			}
		})
	}
}

// More parked connections than the poller collects in one go all wake when
// their messages arrive together, and all leave the poller when they close.
func TestManyParkedConnections(t *testing.T) {
	const n = 300
	conns := make(chan *Conn, n)
	closes := make(chan closeSeen, n)
	url := eventServer(t, &ServerOptions{}, conns, closes)
	clients := make([]*Conn, n)
	for i := range clients {
		clients[i] = dialTest(t, url, nil)
	}
	for range n {
		waitParked(t, wait(t, conns, "server conn"))
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoOnce(t, c, TextMessage, []byte(fmt.Sprint("client ", i)))
		}()
	}
	wg.Wait()
	for _, c := range clients {
		c.Close(StatusNormalClosure, "")
	}
	for range n {
		if got := wait(t, closes, "OnClose"); got.code != StatusNormalClosure {
			t.Fatalf("OnClose %+v", got)
		}
	}
}

// A connection without a raw socket (TLS reads for itself; here a pipe)
// keeps its loop's goroutine and is not registered with the poller.
func TestEventLoopNotPolledWithoutRawSocket(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	ws := newConn(false, 0, 0)
	ws.opened(c1, nil)
	ws.startEventLoop()
	if ws.polled() {
		t.Fatal("a pipe was registered with the poller")
	}
	ws.CloseNow()
	<-ws.Done()
}
