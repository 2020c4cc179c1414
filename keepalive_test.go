package websocket

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPingReturnsRTT(t *testing.T) {
	url := serve(t, echoHandler(nil))
	c := dialTest(t, url, nil)
	ctx := testContext(t)
	go c.Read(ctx) // pongs are seen only while someone reads
	for range 3 {
		rtt, err := c.Ping(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 {
			t.Fatalf("Ping returned RTT %v", rtt)
		}
	}
}

// A pong answers every ping up to its own, since a peer may answer only the
// most recent one.
func TestPongAnswersEarlierPings(t *testing.T) {
	c := newConn(true, 0, 0)
	c.state.Store(int32(Open))
	w1 := &pingWaiter{seq: 1, sent: time.Now(), done: make(chan struct{})}
	w2 := &pingWaiter{seq: 2, sent: time.Now(), done: make(chan struct{})}
	w3 := &pingWaiter{seq: 3, sent: time.Now(), done: make(chan struct{})}
	k := c.keepalive()
	k.seq = 3
	k.waiters = []*pingWaiter{w1, w2, w3}
	p := pingPayload(2)
	c.pongReceived(p[:])
	for _, w := range []*pingWaiter{w1, w2} {
		select {
		case <-w.done:
		default:
			t.Fatalf("ping %d not answered by the pong for ping 2", w.seq)
		}
	}
	select {
	case <-w3.done:
		t.Fatal("ping 3 answered by the pong for ping 2")
	default:
	}
	// Pongs that are not ours, or name a ping never sent, answer nothing.
	c.pongReceived([]byte("hello"))
	p = pingPayload(9)
	c.pongReceived(p[:])
	if len(k.waiters) != 1 || k.waiters[0] != w3 {
		t.Fatalf("waiters left: %d", len(k.waiters))
	}
}

func TestPingContextCancel(t *testing.T) {
	url := deafServer(t) // answers nothing
	c := dialTest(t, url, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Ping(ctx)
		errc <- err
	}()
	cancel()
	if err := wait(t, errc, "Ping"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping = %v, want context.Canceled", err)
	}
	k := c.ka.Load()
	k.mu.Lock()
	n := len(k.waiters)
	k.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d waiters left after a cancelled Ping", n)
	}
}

// A peer that never answers is dropped within the pong timeout: with the
// blocking API while a read waits, and the read reports 1006 naming the
// missing pong.
func TestKeepaliveDropsSilentPeer(t *testing.T) {
	c := dialTest(t, deafServer(t), &ClientOptions{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond})
	ctx := testContext(t)
	_, _, err := c.Read(ctx)
	if !errors.Is(err, ErrPongTimeout) || CloseStatus(err) != StatusAbnormalClosure {
		t.Fatalf("Read = %v, want 1006 caused by ErrPongTimeout", err)
	}
	if !strings.Contains(err.Error(), "pong") {
		t.Fatalf("reason %q does not name the pong", err)
	}
	if rtt, err := c.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping on the dropped connection = %v, %v", rtt, err)
	}
}

// Keepalive works on a parked event loop: a live peer's pongs wake the loop
// and keep the connection up across several intervals; once the peer stops
// answering the connection is dropped and OnClose reports it once.
func TestKeepaliveParkedEventLoop(t *testing.T) {
	var closes atomic.Int32
	ws, seen := deafEventServer(t, &ServerOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 300 * time.Millisecond}, &closes)
	cs := wait(t, seen, "OnClose")
	if cs.code != StatusAbnormalClosure || !strings.Contains(cs.reason, "pong") {
		t.Fatalf("OnClose(%v, %q), want 1006 naming the pong", cs.code, cs.reason)
	}
	if !errors.Is(ws.Err(), ErrPongTimeout) {
		t.Fatalf("Err = %v, want ErrPongTimeout", ws.Err())
	}
	if n := closes.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
}

func TestKeepaliveLivePeer(t *testing.T) {
	conns := make(chan *Conn, 1)
	closes := make(chan closeSeen, 1)
	url := eventServer(t, &ServerOptions{PingInterval: 150 * time.Millisecond, PongTimeout: 5 * time.Second}, conns, closes)
	c := dialTest(t, url, nil)
	ws := wait(t, conns, "server conn")
	pings := make(chan struct{}, 100)
	c.OnPing(func([]byte) {
		select {
		case pings <- struct{}{}:
		default:
		}
	})
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	// Several keepalive rounds, with the server's loop parked between
	// them (the tests' idle sweep is 10 ms): the timer pings, and the
	// pong wakes the loop.
	for range 4 {
		waitParked(t, ws)
		wait(t, pings, "keepalive ping")
	}
	if rtt, err := ws.Ping(testContext(t)); err != nil || rtt <= 0 {
		t.Fatalf("server Ping = %v, %v", rtt, err)
	}
	if err := ws.Err(); err != nil {
		t.Fatalf("live connection dropped: %v", err)
	}
	c.Close(StatusNormalClosure, "")
	if err := wait(t, readErr, "read end"); CloseStatus(err) != StatusNormalClosure {
		t.Fatalf("Read = %v", err)
	}
	if cs := wait(t, closes, "OnClose"); cs.code != StatusNormalClosure {
		t.Fatalf("server OnClose %v %q", cs.code, cs.reason)
	}
}
