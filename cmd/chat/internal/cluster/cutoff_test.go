package cluster_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/cluster"
	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
)

// cutter is a TCP proxy to a NATS server that the test can cut: while cut
// it drops every connection, so the node behind it is off NATS.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	c.wg.Add(1)
	go c.serve()
	t.Cleanup(func() { ln.Close(); c.setCut(true); c.wg.Wait() })
	return c
}

func (c *cutter) url() string { return "nats://" + c.ln.Addr().String() }

func (c *cutter) serve() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			c.mu.Unlock()
			in.Close()
			continue
		}
		c.conns[in], c.conns[out] = struct{}{}, struct{}{}
		c.mu.Unlock()
		c.wg.Add(2)
		go func() { defer c.wg.Done(); io.Copy(out, in); out.Close() }()
		go func() { defer c.wg.Done(); io.Copy(in, out); in.Close() }()
	}
}

// setCut drops every proxied connection (and refuses new ones) or lets
// them through again.
func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for conn := range c.conns {
			conn.Close()
		}
		clear(c.conns)
	}
}

// TestNodeCutOffCatchesUp: a node cut off from NATS while another node's
// clients post more than -history messages gets, once back, every one of
// them for its clients, in order. (Regression: with the stream's
// per-subject limit equal to -history, the messages its feed had not read
// yet were deleted from the stream meanwhile and never reached them.)
func TestNodeCutOffCatchesUp(t *testing.T) {
	ns := natstest.Start(t)
	proxy := newCutter(t, ns.Addr().String())
	a := startNodeWith(t, ns.URL(), 1, chat.Config{History: 5})
	b := startNodeWith(t, proxy.url(), 1, chat.Config{History: 5})
	s := join(t, a.ws+"/chat/cut")
	r := join(t, b.ws+"/chat/cut")
	s.say("first")
	if e := r.next(isMessage); e.Text != "first" {
		t.Fatalf("before the cut: %q", e.Text)
	}
	proxy.setCut(true)
	waitStatus(t, b, 503)
	const n = 40
	for i := range n {
		s.say(fmt.Sprintf("m%d", i))
		s.next(func(e chat.Event) bool { return isMessage(e) && e.Text == fmt.Sprintf("m%d", i) })
	}
	proxy.setCut(false)
	waitStatus(t, b, 200)
	for i := range n {
		if e := r.next(isMessage); e.Text != fmt.Sprintf("m%d", i) {
			t.Fatalf("after the cut, message %d: %q, want m%d", i, e.Text, i)
		}
	}
}

// TestResumeTakesNicknameBack: a client whose node is cut off (its
// nickname still held there, long before the node would be presumed dead)
// reconnects to another node with its resume token and gets its nickname
// back at once; a client with another token or none does not.
func TestResumeTakesNicknameBack(t *testing.T) {
	ns := natstest.Start(t)
	proxy := newCutter(t, ns.Addr().String())
	slow := func(c *cluster.Config) { c.DeadAfter = time.Minute }
	a := startNodeWith(t, proxy.url(), 1, chat.Config{History: 10}, slow)
	b := startNodeWith(t, ns.URL(), 1, chat.Config{History: 10}, slow)
	x := join(t, a.ws+"/chat/t?nick=xavier&resume=tab-secret")
	if x.nick != "xavier" {
		t.Fatalf("first claim: %q", x.nick)
	}
	w := join(t, b.ws+"/chat/t?nick=watcher")
	w.say("/who")
	w.next(func(e chat.Event) bool { return e.Type == "presence" && strings.Join(e.Users, ",") == "watcher,xavier" })
	proxy.setCut(true)
	waitStatus(t, a, 503)
	for _, q := range []string{"nick=xavier", "nick=xavier&resume=another-secret"} {
		if z := join(t, b.ws+"/chat/t?"+q); z.nick == "xavier" {
			t.Fatalf("?%s took a nickname held by another client", q)
		}
	}
	y := join(t, b.ws+"/chat/t?nick=xavier&resume=tab-secret")
	if y.nick != "xavier" {
		t.Fatalf("the same client, back on another node, got %q", y.nick)
	}
	// The others see the old connection leave and the new one join, in
	// either order (the take-over reaches this node through the presence
	// bucket, the join directly), and one xavier in the room.
	seen := map[string]bool{}
	for !seen["leave"] || !seen["join"] {
		e := w.next(func(e chat.Event) bool { return (e.Type == "leave" || e.Type == "join") && e.Nick == "xavier" })
		seen[e.Type] = true
	}
	w.say("/who")
	p := w.next(func(e chat.Event) bool { return e.Type == "presence" })
	if n := strings.Count(","+strings.Join(p.Users, ",")+",", ",xavier,"); n != 1 {
		t.Fatalf("xavier %d times in the presence list %q", n, p.Users)
	}
}
