package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEchoSizes(t *testing.T) {
	url := serve(t, echoHandler(nil))
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	for _, n := range []int{0, 1, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20, 3 << 20} {
		for _, typ := range []MessageType{TextMessage, BinaryMessage} {
			msg := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
			if err := c.Write(ctx, typ, msg); err != nil {
				t.Fatal(err)
			}
			gotTyp, got, err := c.Read(ctx)
			if err != nil || gotTyp != typ || !bytes.Equal(got, msg) {
				t.Fatalf("%v of %d bytes: got %v of %d bytes, %v", typ, n, gotTyp, len(got), err)
			}
		}
	}
}

func TestStreamingReaderWriter(t *testing.T) {
	url := serve(t, echoHandler(nil))
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	w, err := c.NextWriter(ctx, BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(io.MultiWriter(w, &want), "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	typ, r, err := c.NextReader(ctx)
	if err != nil || typ != BinaryMessage {
		t.Fatal(typ, err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes (%v), want %d", len(got), err, want.Len())
	}
	// A reader left half-read is skipped by the next read.
	c.Write(ctx, TextMessage, bytes.Repeat([]byte("z"), 10000))
	c.Write(ctx, TextMessage, []byte("next"))
	_, r, _ = c.NextReader(ctx)
	io.ReadFull(r, make([]byte, 10))
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "next" {
		t.Fatalf("after a partial reader: %q %v", msg, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	url := serve(t, echoHandler(nil))
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				msg := strings.Repeat(fmt.Sprintf("w%d-m%d;", g, i), 300)
				if i%5 == 0 {
					c.SendPing([]byte("p"))
				}
				if err := c.Write(ctx, TextMessage, []byte(msg)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := map[string]bool{}
	for len(seen) < writers*each {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		unit := string(msg[:strings.IndexByte(string(msg), ';')+1])
		if string(msg) != strings.Repeat(unit, 300) {
			t.Fatalf("interleaved message: %.60q", msg)
		}
		seen[unit] = true
	}
	wg.Wait()
}

func TestPingPong(t *testing.T) {
	url := serve(t, echoHandler(nil))
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	pongs := make(chan string, 1)
	c.OnPong(func(p []byte) { pongs <- string(p) })
	if err := c.SendPing([]byte("are you there")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendPing(make([]byte, 126)); err == nil {
		t.Fatal("126-byte ping accepted")
	}
	c.Write(ctx, TextMessage, []byte("after ping"))
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "after ping" {
		t.Fatal(msg, err)
	}
	if got := wait(t, pongs, "pong"); got != "are you there" {
		t.Fatalf("pong %q", got)
	}
}

func TestCloseHandshakeFromServer(t *testing.T) {
	serverDone := make(chan error, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			serverDone <- err
			return
		}
		c.Write(context.Background(), TextMessage, []byte("last words"))
		serverDone <- c.Close(4000, "bye now")
	})
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	if _, msg, err := c.Read(ctx); string(msg) != "last words" {
		t.Fatal(msg, err)
	}
	_, _, err := c.Read(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye now" {
		t.Fatalf("client read: %v", err)
	}
	if err := wait(t, serverDone, "server Close"); err != nil {
		t.Fatalf("server Close: %v", err)
	}
	<-c.Done()
	if c.ReadyState() != Closed {
		t.Fatalf("state %v", c.ReadyState())
	}
	if err := c.Write(ctx, TextMessage, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := c.Close(StatusNormalClosure, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

func TestCloseHandshakeFromClient(t *testing.T) {
	serverErr := make(chan error, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		_, _, err = c.Read(context.Background())
		serverErr <- err
	})
	c := dialTest(t, url, nil)
	if err := c.Close(StatusGoingAway, "leaving"); err != nil {
		t.Fatal(err)
	}
	err := wait(t, serverErr, "server read")
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Reason != "leaving" {
		t.Fatalf("server saw %v", err)
	}
	// The client reports the server's echo of its code.
	if CloseStatus(c.Err()) != StatusGoingAway {
		t.Fatalf("client Err %v", c.Err())
	}
}

// A peer that never answers the close frame cannot hold Close longer than
// the close timeout.
func TestCloseTimeout(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		nc, brw, _ := http.NewResponseController(w).Hijack()
		defer nc.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, nc) // read everything, answer nothing
	})
	c := dialTest(t, url, &ClientOptions{CloseTimeout: 100 * time.Millisecond})
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if CloseStatus(c.Err()) != StatusAbnormalClosure {
		t.Fatalf("Err = %v, want 1006", c.Err())
	}
}

func TestReadContextKeepsConnection(t *testing.T) {
	release := make(chan struct{})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		<-release
		c.Write(context.Background(), TextMessage, []byte("late"))
		c.Read(context.Background())
	})
	c := dialTest(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want DeadlineExceeded", err)
	}
	close(release)
	if _, msg, err := c.Read(testContext(t)); err != nil || string(msg) != "late" {
		t.Fatalf("Read after a timed-out read: %q %v", msg, err)
	}
}

// rawClient opens a TCP connection to url and does the handshake by hand,
// for tests that need to send what the library never would.
func rawClient(t *testing.T, url string) net.Conn {
	t.Helper()
	nc, _ := rawDeflateClient(t, url, "")
	return nc
}

// readCloseCode reads server frames until a close frame and returns its code.
func readCloseCode(t *testing.T, nc net.Conn) StatusCode {
	t.Helper()
	var code StatusCode
	readServerEvents(t, nc, "no close frame", func(ev event) bool {
		code = ev.code
		return ev.kind == eventClose
	})
	return code
}

// readServerEvents decodes the server frames arriving on nc and hands each
// event to done until it returns true; a read error fails the test with
// what.
func readServerEvents(t *testing.T, nc net.Conn, what string, done func(event) bool) {
	t.Helper()
	d := &decoder{}
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b := buf[:n]
		for len(b) > 0 {
			k, ev, err := d.parse(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[k:]
			if done(ev) {
				return
			}
		}
	}
}

func TestEventsServer(t *testing.T) {
	type closed struct {
		code   StatusCode
		reason string
	}
	closes := make(chan closed, 2)
	errs := make(chan error, 2)
	opened := make(chan ReadyState, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, &ServerOptions{MaxLength: 100})
		if ws.ReadyState() != Connecting {
			t.Errorf("state before Start: %v", ws.ReadyState())
		}
		ws.Send("queued before open")
		ws.OnOpen(func() { opened <- ws.ReadyState() })
		ws.OnMessage(func(m Message) {
			if m.Type == TextMessage {
				ws.Send(m.Text())
			} else {
				ws.Send(append([]byte(nil), m.Data...))
			}
		})
		ws.OnError(func(err error) { errs <- err })
		ws.OnClose(func(code StatusCode, reason string) { closes <- closed{code, reason} })
		if err := ws.Start(); err != nil {
			t.Error(err)
		}
	})

	// Echo with types kept, and the queued message first.
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	if s := wait(t, opened, "open"); s != Open {
		t.Fatalf("state in OnOpen: %v", s)
	}
	if _, msg, _ := c.Read(ctx); string(msg) != "queued before open" {
		t.Fatalf("first message %q", msg)
	}
	c.Write(ctx, BinaryMessage, []byte{1, 2, 3})
	if typ, msg, err := c.Read(ctx); typ != BinaryMessage || !bytes.Equal(msg, []byte{1, 2, 3}) {
		t.Fatal(typ, msg, err)
	}
	c.Close(StatusNormalClosure, "done")
	if got := wait(t, closes, "OnClose"); got.code != StatusNormalClosure || got.reason != "done" {
		t.Fatalf("OnClose %+v", got)
	}

	// A message over MaxLength: OnError, then OnClose with 1009.
	c2 := dialTest(t, url, nil)
	c2.Read(ctx) // the queued message
	c2.Write(ctx, TextMessage, make([]byte, 101))
	var pe *ProtocolError
	if err := wait(t, errs, "OnError"); !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Fatalf("OnError %v", err)
	}
	if _, _, err := c2.Read(ctx); CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("client saw %v", err)
	}
	if got := wait(t, closes, "OnClose"); got.code != StatusMessageTooBig {
		t.Fatalf("OnClose %+v", got)
	}
}

func TestProtocolErrorCodes(t *testing.T) {
	url := serve(t, echoHandler(nil))
	cases := []struct {
		name  string
		frame []byte
		want  StatusCode
	}{
		{"unmasked", appendFrame(nil, true, 0, opText, []byte("x"), false), StatusProtocolError},
		{"invalid UTF-8", clientFrame(true, 0, opText, []byte{0xc0, 0x80}), StatusInvalidFramePayloadData},
		{"close code 1005", clientFrame(true, 0, opClose, []byte{0x03, 0xed}), StatusProtocolError},
		{"reserved opcode", clientFrame(true, 0, 7, nil), StatusProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc := rawClient(t, url)
			nc.Write(tc.frame)
			if got := readCloseCode(t, nc); got != tc.want {
				t.Fatalf("close code %v, want %v", got, tc.want)
			}
			// Then the server closes TCP.
			if _, err := io.Copy(io.Discard, nc); err != nil {
				t.Fatalf("server did not close TCP cleanly: %v", err)
			}
		})
	}
}

func TestPreparedMessage(t *testing.T) {
	pm, err := NewPreparedMessage(TextMessage, []byte("to everyone"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPreparedMessage(9, nil); err == nil {
		t.Fatal("opcode 9 accepted as a message type")
	}
	ready := make(chan *Conn, 3)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		ready <- c
		c.Read(context.Background())
	})
	ctx := testContext(t)
	var clients []*Conn
	for i := 0; i < 3; i++ {
		clients = append(clients, dialTest(t, url, nil))
		srv := wait(t, ready, "server conn")
		if err := srv.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		if typ, msg, err := c.Read(ctx); typ != TextMessage || string(msg) != "to everyone" {
			t.Fatal(typ, msg, err)
		}
		// A client writes a prepared message masked, like any other.
		if err := c.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
	}
}
