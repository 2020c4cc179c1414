package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/cluster"
	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
	"github.com/wsdriver/websocket/cmd/chat/internal/server"
)

// node is one chat node running in the test process against real NATS.
type node struct {
	t      testing.TB
	eng    *cluster.Engine
	http   string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, urls string, replicas int) *node {
	t.Helper()
	return startNodeWith(t, urls, replicas, chat.Config{History: 100})
}

// startNodeWith starts a node with the hub limits hc; urls "" means a
// single node with its embedded store instead of NATS.
func startNodeWith(t testing.TB, urls string, replicas int, hc chat.Config, opts ...func(*cluster.Config)) *node {
	t.Helper()
	return startServerNode(t, urls, replicas, server.Config{Hub: hc}, opts...)
}

// startServerNode is startNodeWith with the whole server configuration
// (sign-in, say); the data directory, shutdown timeout and engine are
// filled in.
func startServerNode(t testing.TB, urls string, replicas int, sc server.Config, opts ...func(*cluster.Config)) *node {
	t.Helper()
	hc := sc.Hub
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var eng *cluster.Engine
	data := t.TempDir()
	if urls != "" {
		var err error
		cc := cluster.Config{URLs: urls, Replicas: replicas, History: hc.History,
			Heartbeat: 200 * time.Millisecond, DeadAfter: 2 * time.Second, OpTimeout: 3 * time.Second, Logger: testLogger()}
		for _, o := range opts {
			o(&cc)
		}
		eng, err = cluster.Open(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		hc.Engine = eng
	}
	sc.Hub, sc.DataDir, sc.ShutdownTimeout = hc, data, 5*time.Second
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	n := &node{t: t, eng: eng, http: "http://" + ln.Addr().String(), ws: "ws://" + ln.Addr().String(), cancel: scancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(sctx, ln, nil) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	select {
	case <-n.done:
		n.done <- nil
	case <-time.After(20 * time.Second):
		n.t.Error("chat node did not stop")
	}
}

// testLogger logs to stderr when CHAT_TEST_LOG is set, for debugging.
func testLogger() *slog.Logger {
	if os.Getenv("CHAT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// client is a JSON-protocol chat client.
type client struct {
	t    *testing.T
	c    *websocket.Conn
	nick string
}

func join(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Protocols: []string{chat.Subprotocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	cl := &client{t: t, c: c}
	w := cl.next(func(e chat.Event) bool { return e.Type == "welcome" })
	cl.nick = w.Nick
	return cl
}

// next reads events until one satisfies ok, within a generous bound.
func (cl *client) next(ok func(chat.Event) bool) chat.Event {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, b, err := cl.c.Read(ctx)
		if err != nil {
			cl.t.Fatalf("%s reading: %v", cl.nick, err)
		}
		var e chat.Event
		if err := json.Unmarshal(b, &e); err != nil {
			cl.t.Fatalf("bad event %q: %v", b, err)
		}
		if ok(e) {
			return e
		}
	}
}

func (cl *client) say(text string) {
	cl.t.Helper()
	b, _ := json.Marshal(map[string]string{"type": "message", "text": text})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.TextMessage, b); err != nil {
		cl.t.Fatal(err)
	}
}

func isMessage(e chat.Event) bool { return e.Type == "message" }

// messages reads n message events.
func (cl *client) messages(n int) []chat.Event {
	cl.t.Helper()
	out := make([]chat.Event, 0, n)
	for range n {
		out = append(out, cl.next(isMessage))
	}
	return out
}

func healthz(t *testing.T, n *node) int {
	t.Helper()
	r, err := http.Get(n.http + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

// TestCrossNodeOrder: three nodes over one NATS server; a sender on each
// posts at once; every client on every node sees the same messages in the
// same order with the same IDs, and a client resuming on another node
// from the middle gets exactly the rest.
func TestCrossNodeOrder(t *testing.T) {
	ns := natstest.Start(t)
	nodes := []*node{startNode(t, ns.URL(), 1), startNode(t, ns.URL(), 1), startNode(t, ns.URL(), 1)}
	var clients []*client
	for _, n := range nodes {
		clients = append(clients, join(t, n.ws+"/chat/order"), join(t, n.ws+"/chat/order"))
	}
	const per = 20
	var wg sync.WaitGroup
	for i, n := range nodes {
		s := join(t, n.ws+"/chat/order")
		clients = append(clients, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				s.say(fmt.Sprintf("node%d msg%d", i, j))
			}
		}()
	}
	wg.Wait()
	var first []chat.Event
	for k, cl := range clients {
		got := cl.messages(3 * per)
		if k == 0 {
			first = got
			for j := 1; j < len(got); j++ {
				if got[j].ID <= got[j-1].ID {
					t.Fatalf("IDs not increasing: %d then %d", got[j-1].ID, got[j].ID)
				}
			}
			continue
		}
		for j := range got {
			if got[j].ID != first[j].ID || got[j].Text != first[j].Text {
				t.Fatalf("client %d message %d: %d %q, client 0 saw %d %q", k, j, got[j].ID, got[j].Text, first[j].ID, first[j].Text)
			}
		}
	}
	// Resume on another node from the middle: exactly the second half.
	mid := first[len(first)/2-1].ID
	r := join(t, fmt.Sprintf("%s/chat/order?since=%d", nodes[2].ws, mid))
	got := r.messages(len(first) / 2)
	for j, e := range got {
		if want := first[len(first)/2+j]; e.ID != want.ID || e.Text != want.Text {
			t.Fatalf("resumed message %d: %d %q, want %d %q", j, e.ID, e.Text, want.ID, want.Text)
		}
	}
	clients[0].say("after resume")
	if e := r.next(isMessage); e.Text != "after resume" {
		t.Fatalf("after the replay: %q", e.Text)
	}
}

// TestPresenceAcrossNodes: /who, join, nick and leave notices cover every node.
func TestPresenceAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL(), 1), startNode(t, ns.URL(), 1)
	ann := join(t, a.ws+"/chat/p?nick=ann")
	bob := join(t, b.ws+"/chat/p?nick=bob")
	ann.next(func(e chat.Event) bool { return e.Type == "join" && e.Nick == "bob" })
	bob.say("/who")
	bob.next(func(e chat.Event) bool {
		return e.Type == "presence" && strings.Join(e.Users, ",") == "ann,bob"
	})
	ann.say("/nick anna")
	bob.next(func(e chat.Event) bool { return e.Type == "nick" && e.Old == "ann" && e.Nick == "anna" })
	// Ann's own node tells her once the old name is released.
	ann.next(func(e chat.Event) bool { return e.Type == "nick" && e.Old == "ann" && e.Nick == "anna" })
	// The old name is free again, on every node; the new one is not.
	c := join(t, b.ws+"/chat/p?nick=ann")
	if c.nick != "ann" {
		t.Fatalf("freed nickname not given: %q", c.nick)
	}
	d := join(t, b.ws+"/chat/p?nick=ANNA")
	if d.nick == "anna" || d.nick == "ANNA" {
		t.Fatalf("taken nickname given again: %q", d.nick)
	}
	ann.c.CloseNow()
	bob.next(func(e chat.Event) bool { return e.Type == "leave" && e.Nick == "anna" })
}

// TestNickRace: two nodes claim the same nickname at the same moment;
// exactly one gets it.
func TestNickRace(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL(), 1), startNode(t, ns.URL(), 1)
	for round := range 10 {
		nick := fmt.Sprintf("racer%d", round)
		got := make([]string, 2)
		var wg sync.WaitGroup
		for i, n := range []*node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, n.ws+"/chat?nick="+nick, &websocket.ClientOptions{Protocols: []string{chat.Subprotocol}})
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(func() { c.CloseNow() })
				_, m, err := c.Read(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				var e chat.Event
				json.Unmarshal(m, &e)
				got[i] = e.Nick
			}()
		}
		wg.Wait()
		if (got[0] == nick) == (got[1] == nick) {
			t.Fatalf("round %d: nodes gave %q and %q for %q: exactly one must win", round, got[0], got[1], nick)
		}
	}
}

// TestNATSDownThenBack: with NATS gone a node keeps its clients, refuses
// messages clearly in both protocols and reports not ready; when NATS
// returns it recovers by itself.
func TestNATSDownThenBack(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL(), 1), startNode(t, ns.URL(), 1)
	x := join(t, a.ws+"/chat/down")
	y := join(t, b.ws+"/chat/down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, _, err := websocket.Dial(ctx, a.ws+"/chat/down", nil) // plain text
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseNow()
	x.say("before")
	x.next(func(e chat.Event) bool { return isMessage(e) && e.Text == "before" })
	y.next(func(e chat.Event) bool { return isMessage(e) && e.Text == "before" })

	ns.Stop()
	waitStatus(t, a, http.StatusServiceUnavailable)
	// The client library reports the disconnection asynchronously.
	for deadline := time.Now().Add(20 * time.Second); ; {
		m := get(t, a.http+"/metrics")
		if strings.Contains(m, "chat_nats_connected 0") && strings.Contains(m, "chat_nats_disconnects_total 1") &&
			strings.Contains(m, "chat_nats_publish_seconds_count 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics while NATS is down:\n%s", m)
		}
		time.Sleep(20 * time.Millisecond) // polling the node's counters
	}
	// A newcomer cannot get a nickname reserved: close 1013, try again later.
	if nc, _, err := websocket.Dial(ctx, a.ws+"/chat/down", nil); err == nil {
		_, _, err = nc.Read(ctx)
		if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
			t.Errorf("a new connection during the outage ended with %v, want close 1013", err)
		}
		nc.CloseNow()
	}
	x.say("while down")
	e := x.next(func(e chat.Event) bool { return e.Type == "error" || isMessage(e) })
	if e.Type != "error" || e.Code != "unavailable" || !strings.Contains(e.Text, "not sent") {
		t.Fatalf("JSON sender during the outage got %+v", e)
	}
	if err := p.Write(ctx, websocket.TextMessage, []byte("plain while down")); err != nil {
		t.Fatal(err)
	}
	for {
		_, m, err := p.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(string(m), ": plain while down") {
			t.Fatal("a message was shown while NATS was down")
		}
		if strings.HasPrefix(string(m), " .... error: ") && strings.Contains(string(m), "not sent") {
			break
		}
	}

	ns.Restart(t)
	waitStatus(t, a, http.StatusOK)
	waitStatus(t, b, http.StatusOK)
	// The room feeds come back by themselves; a message posted now reaches
	// the other node, and the refused one never appears.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		x.say(fmt.Sprintf("after %d", i))
		e := x.next(func(e chat.Event) bool { return e.Type == "error" || isMessage(e) })
		if isMessage(e) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after NATS came back: %+v", e)
		}
	}
	got := y.next(func(e chat.Event) bool { return isMessage(e) })
	if !strings.HasPrefix(got.Text, "after ") {
		t.Fatalf("after recovery the other node got %q", got.Text)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// waitStatus polls /healthz until it answers want.
func waitStatus(t *testing.T, n *node, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for healthz(t, n) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered %d", want)
		}
		time.Sleep(20 * time.Millisecond) // polling the node's state
	}
}

// TestR3ServerLoss: an R3 JetStream cluster loses the server a node is
// connected to; every message acknowledged to its sender is in the history
// afterwards, exactly once and in order, and live readers saw none twice.
func TestR3ServerLoss(t *testing.T) {
	nc := natstest.StartCluster(t, 3)
	a := startNode(t, nc.Servers[0].URL()+","+nc.Servers[1].URL()+","+nc.Servers[2].URL(), 3)
	b := startNode(t, nc.Servers[1].URL()+","+nc.Servers[2].URL()+","+nc.Servers[0].URL(), 3)
	s := join(t, a.ws+"/chat/r3")
	r := join(t, b.ws+"/chat/r3")
	var acked []string
	refused := map[string]bool{}
	seen := map[uint64]bool{}
	post := func(text string) {
		s.say(text)
		e := s.next(func(e chat.Event) bool {
			return e.Type == "error" || isMessage(e) && e.Text == text
		})
		if isMessage(e) {
			acked = append(acked, text)
		} else {
			refused[text] = true
		}
	}
	for i := range 10 {
		post(fmt.Sprintf("m%d", i))
	}
	nc.Servers[0].Stop() // node a's server
	for i := 10; len(acked) < 20 && i < 200; i++ {
		post(fmt.Sprintf("m%d", i))
	}
	if len(acked) < 20 {
		t.Fatalf("only %d messages accepted after losing one of three servers", len(acked))
	}
	for len(seen) < len(acked) {
		e := r.next(isMessage)
		if seen[e.ID] {
			t.Fatalf("message %d shown twice", e.ID)
		}
		seen[e.ID] = true
	}
	// A refusal after a lost acknowledgement may still have been stored
	// (README: the one ambiguous case); every acknowledged message must be
	// there, once, in order.
	h := join(t, b.ws+"/chat/r3")
	h.say("/who")
	var hist []string
	for {
		e := h.next(func(e chat.Event) bool { return isMessage(e) || e.Type == "presence" })
		if e.Type == "presence" {
			break
		}
		if !refused[e.Text] {
			hist = append(hist, e.Text)
		}
	}
	if strings.Join(hist, " ") != strings.Join(acked, " ") {
		t.Fatalf("history %q\nacknowledged %q", hist, acked)
	}
}
