package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// Keepalive against Node's ws, a peer that answers pings by itself: our
// keepalive pings are answered and the connection stays up over several
// intervals; Ping returns a round trip; and once the Node process is
// frozen (SIGSTOP: its kernel still takes the bytes, but nothing answers)
// our side drops the connection within the pong timeout, with 1006 and a
// reason naming the missing pong.

const (
	kaInterval = 200 * time.Millisecond
	kaTimeout  = time.Second
	kaRounds   = 4
	kaSlack    = 15 * time.Second // a busy machine's scheduling, generously
)

// nodeForKeepalive returns the Node peer, skipping (failing in CI) when it
// is not installed.
func nodeForKeepalive(t *testing.T) *procPeer {
	p := nodePeer()
	if err := p.Setup(t); err != nil {
		if inCI() {
			t.Fatalf("Node ws is not available (CI requires every peer; run scripts/install-deps.sh): %v", err)
		}
		t.Skipf("Node ws is not available: %v", err)
	}
	return p
}

// freeze stops the peer's process group until the test ends.
func freeze(t *testing.T, pr *proc) {
	pgid := pr.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGCONT) })
}

// keepaliveConn is one of our connections with keepalive on, watched
// through the event API.
type keepaliveConn struct {
	c      *websocket.Conn
	pongs  chan struct{}
	closed chan closeEvent
	nClose atomic.Int32
}

type closeEvent struct {
	code   websocket.StatusCode
	reason string
}

func watchKeepalive(c *websocket.Conn) *keepaliveConn {
	k := &keepaliveConn{c: c, pongs: make(chan struct{}, 1000), closed: make(chan closeEvent, 2)}
	c.OnPong(func([]byte) {
		select {
		case k.pongs <- struct{}{}:
		default:
		}
	})
	c.OnClose(func(code websocket.StatusCode, reason string) {
		k.nClose.Add(1)
		k.closed <- closeEvent{code, reason}
	})
	return k
}

// check runs the scenario on an open connection: Ping, live keepalive,
// then the frozen peer.
func (k *keepaliveConn) check(t *testing.T, pr *proc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rtt, err := k.c.Ping(ctx)
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
	t.Logf("Ping round trip to Node ws: %v", rtt)
	// The Ping's pong, then keepalive's: the connection lives through
	// several intervals, each ping answered.
	for i := range kaRounds + 1 {
		select {
		case <-k.pongs:
		case ce := <-k.closed:
			t.Fatalf("connection to a live peer closed after %d pongs: %v %q", i, ce.code, ce.reason)
		case <-time.After(kaSlack):
			t.Fatalf("only %d pongs from a live peer", i)
		}
	}
	if s := k.c.ReadyState(); s != websocket.Open {
		t.Fatalf("ReadyState %v after %d keepalive rounds", s, kaRounds)
	}

	freeze(t, pr)
	frozen := time.Now()
	var ce closeEvent
	select {
	case ce = <-k.closed:
	case <-time.After(kaInterval + kaTimeout + kaSlack):
		t.Fatal("frozen peer not dropped")
	}
	t.Logf("frozen peer dropped after %v: %v %q", time.Since(frozen).Round(time.Millisecond), ce.code, ce.reason)
	if ce.code != websocket.StatusAbnormalClosure || !strings.Contains(ce.reason, "pong") {
		t.Fatalf("OnClose(%v, %q), want 1006 naming the pong", ce.code, ce.reason)
	}
	if !errors.Is(k.c.Err(), websocket.ErrPongTimeout) {
		t.Fatalf("Err = %v, want ErrPongTimeout", k.c.Err())
	}
	if n := k.nClose.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
}

func TestKeepaliveOurClientNodeServer(t *testing.T) {
	p := nodeForKeepalive(t)
	pr, err := startProc(t, p.argv, []string{"server"}, func(peerResult) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready, err := pr.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d/idle/keepalive", ready.Ports[PeerDeflateDefault])
	c := websocket.NewClient(url, &websocket.ClientOptions{PingInterval: kaInterval, PongTimeout: kaTimeout})
	k := watchKeepalive(c)
	if err := c.StartContext(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	k.check(t, pr)
}

func TestKeepaliveOurServerNodeClient(t *testing.T) {
	p := nodeForKeepalive(t)
	conns := make(chan *keepaliveConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, &websocket.ServerOptions{PingInterval: kaInterval, PongTimeout: kaTimeout})
		k := watchKeepalive(c)
		if err := c.Start(); err != nil {
			t.Error(err)
			return
		}
		conns <- k
	}))
	defer srv.Close()
	pr, err := startProc(t, p.argv, []string{"client", "ws://" + srv.Listener.Addr().String(), "idle:keepalive:default"}, func(peerResult) {})
	if err != nil {
		t.Fatal(err)
	}
	var k *keepaliveConn
	select {
	case k = <-conns:
	case <-time.After(30 * time.Second):
		t.Fatalf("Node ws client did not connect; stderr: %s", pr.stderr)
	}
	defer k.c.CloseNow()
	k.check(t, pr)
}
