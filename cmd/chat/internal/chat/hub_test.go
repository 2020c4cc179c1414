package chat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSeedChat(t *testing.T) {
	h := newTestHub(t, Config{})
	a := connect(t, h, ConnectOptions{})
	b := connect(t, h, ConnectOptions{})
	for _, x := range []*tc{a, b} {
		if !isSeedNick(x.c.Nick()) {
			t.Fatalf("nickname %q is not user-N with N in 0..99999", x.c.Nick())
		}
	}
	if a.c.Nick() == b.c.Nick() {
		t.Fatalf("two clients share nickname %q", a.c.Nick())
	}
	a.expect(" .... " + b.c.Nick() + " has joined.")
	a.say("hello")
	a.expect(a.c.Nick() + ": hello")
	b.expect(a.c.Nick() + ": hello")
	b.say("") // the seed broadcasts even an empty line
	a.expect(b.c.Nick() + ": ")
	b.expect(b.c.Nick() + ": ")
	b.f.hangUp()
	a.expect(" .... " + b.c.Nick() + " has left.")
	a.quiet(50 * time.Millisecond)
}

func TestRandomNickUniqueWhenCrowded(t *testing.T) {
	h := NewHub(Config{})
	for i := range 100000 {
		if i != 4242 {
			h.nicks[fmt.Sprintf("user-%d", i)] = &Client{}
		}
	}
	if got := h.randomNickLocked(); got != "user-4242" {
		t.Fatalf("got %q, want the only free nickname user-4242", got)
	}
	h.nicks["user-4242"] = &Client{}
	if got := h.randomNickLocked(); got != "" {
		t.Fatalf("got %q with every nickname taken", got)
	}
}

func TestNickCommand(t *testing.T) {
	h := newTestHub(t, Config{})
	a := connect(t, h, ConnectOptions{})
	b := connect(t, h, ConnectOptions{})
	a.expect(" .... " + b.c.Nick() + " has joined.")
	old := a.c.Nick()
	a.say("/nick alice")
	a.expect(" .... " + old + " is now known as alice.")
	b.expect(" .... " + old + " is now known as alice.")
	b.say("/nick Alice")
	b.expect(` .... error: nickname "Alice" is taken`)
	b.say("/nick <b>")
	if m := b.next(); !strings.Contains(m, "error: nickname \"<b>\" may only contain") {
		t.Fatalf("invalid nickname: got %q", m)
	}
	b.say("/nick " + strings.Repeat("x", 25))
	if m := b.next(); !strings.Contains(m, "longer than 24") {
		t.Fatalf("long nickname: got %q", m)
	}
	b.say("/nick")
	b.expect(" .... error: usage: /nick NAME")
	a.say("after")
	b.expect("alice: after")
	// The old nickname is free again.
	c := connect(t, h, ConnectOptions{Nick: old})
	if c.c.Nick() != old {
		t.Fatalf("requested free nickname %q, got %q", old, c.c.Nick())
	}
	// A taken one falls back to user-N with an explanation.
	d := connect(t, h, ConnectOptions{Nick: "ALICE"})
	if !isSeedNick(d.c.Nick()) {
		t.Fatalf("taken nickname: got %q", d.c.Nick())
	}
	d.expect(` .... nickname "ALICE" is taken; you are ` + d.c.Nick())
}

func TestCommands(t *testing.T) {
	h := newTestHub(t, Config{})
	a := connect(t, h, ConnectOptions{Nick: "ann"})
	b := connect(t, h, ConnectOptions{Nick: "bob"})
	a.expect(" .... bob has joined.")
	a.say("/me waves")
	a.expect("* ann waves")
	b.expect("* ann waves")
	a.say("/who")
	a.expect(" .... in lobby (2): ann, bob")
	a.say("//etc/passwd is a path")
	a.expect("ann: /etc/passwd is a path")
	b.expect("ann: /etc/passwd is a path")
	a.say("/frobnicate")
	a.expect(" .... error: unknown command /frobnicate; try /help")
	a.say("/help")
	if m := a.next(); !strings.Contains(m, "/nick NAME") {
		t.Fatalf("help: %q", m)
	}
	a.say("/join Dev")
	b.expect(" .... ann has left.")
	a.say("in dev")
	a.expect("ann: in dev")
	b.quiet(50 * time.Millisecond)
	a.say("/rooms")
	a.expect(" .... rooms: dev (1) lobby (1)")
	a.say("/join no/slash")
	if m := a.next(); !strings.Contains(m, "error: room name") {
		t.Fatalf("bad room: %q", m)
	}
	a.say("/join lobby")
	b.expect(" .... ann has joined.")
	b.say("/who")
	b.expect(" .... in lobby (2): ann, bob")
	waitFor(t, "room dev to close", func() bool { _, r := h.Counts(); return r == 1 })
}

func TestRoomsAreSeparate(t *testing.T) {
	h := newTestHub(t, Config{})
	a := connect(t, h, ConnectOptions{Room: "one", Nick: "a"})
	b := connect(t, h, ConnectOptions{Room: "two", Nick: "b"})
	a.say("x")
	a.expect("a: x")
	b.quiet(50 * time.Millisecond)
}

func TestJSONProtocol(t *testing.T) {
	h := newTestHub(t, Config{History: 10, Store: NewMemStore(10), MaxMessage: 10, Rate: 100, Burst: 5})
	p := connect(t, h, ConnectOptions{Nick: "plain"})
	j := connect(t, h, ConnectOptions{JSON: true, Nick: "js"})
	w := j.nextEvent("welcome")
	if w.Nick != "js" || w.Room != "lobby" || w.Limits == nil || w.Limits.MaxMessage != 10 {
		t.Fatalf("welcome: %+v", w)
	}
	pr := j.nextEvent("presence")
	if strings.Join(pr.Users, ",") != "js,plain" {
		t.Fatalf("presence: %+v", pr)
	}
	p.expect(" .... js has joined.")
	j.sayJSON("hi <b>")
	m := j.nextEvent("message")
	if m.Nick != "js" || m.Text != "hi <b>" || m.ID == 0 || m.Time == 0 || m.Room != "lobby" {
		t.Fatalf("message: %+v", m)
	}
	p.expect("js: hi <b>")
	p.say("yo")
	if m2 := j.nextEvent("message"); m2.ID <= m.ID || m2.Nick != "plain" {
		t.Fatalf("second message %+v after %+v", m2, m)
	}
	j.c.Receive([]byte(`not json`))
	if e := j.nextEvent("error"); e.Code != "bad_request" {
		t.Fatalf("error: %+v", e)
	}
	j.c.Receive([]byte(`{"type":"shout","text":"x"}`))
	if e := j.nextEvent("error"); e.Code != "bad_request" {
		t.Fatalf("error: %+v", e)
	}
	j.sayJSON("/nick jay")
	if e := j.nextEvent("nick"); e.Old != "js" || e.Nick != "jay" {
		t.Fatalf("nick: %+v", e)
	}
	j.sayJSON("/rooms")
	if e := j.nextEvent("rooms"); len(e.Rooms) != 1 || e.Rooms[0].Name != "lobby" || e.Rooms[0].Users != 2 {
		t.Fatalf("rooms: %+v", e)
	}
	p.f.hangUp()
	if e := j.nextEvent("leave"); e.Nick != "plain" {
		t.Fatalf("leave: %+v", e)
	}
}

func TestMaxMessage(t *testing.T) {
	h := newTestHub(t, Config{MaxMessage: 4096})
	a := connect(t, h, ConnectOptions{Nick: "a"})
	j := connect(t, h, ConnectOptions{Nick: "j", JSON: true})
	a.expect(" .... j has joined.")
	a.say(strings.Repeat("x", 4096))
	a.expect("a: " + strings.Repeat("x", 4096))
	a.say(strings.Repeat("x", 4097))
	a.expect(" .... error: message of 4097 bytes refused: the limit is 4096 bytes")
	a.say("still connected")
	a.expect("a: still connected")
	j.sayJSON(strings.Repeat("é", 2049)) // 4098 bytes
	if e := j.nextEvent("error"); e.Code != "too_big" {
		t.Fatalf("got %+v", e)
	}
	if got := h.Metrics.TooBig.Load(); got != 2 {
		t.Fatalf("too_big drops = %d, want 2", got)
	}
}

func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := newTestHub(t, Config{Rate: 2, Burst: 3, Now: clock})
	a := connect(t, h, ConnectOptions{Nick: "a"})
	for i := range 3 {
		a.say(fmt.Sprint(i))
		a.expect(fmt.Sprintf("a: %d", i))
	}
	a.say("3")
	a.expect(" .... error: slow down: at most 2 messages per second (burst 3); message dropped")
	a.say("4") // dropped without a second notice in the same second
	a.quiet(50 * time.Millisecond)
	advance(500 * time.Millisecond) // one token back
	a.say("5")
	a.expect("a: 5")
	a.say("6")
	a.quiet(50 * time.Millisecond)
	advance(time.Second)
	a.say("7")
	a.expect("a: 7")
	if got := h.Metrics.RateLimited.Load(); got != 3 {
		t.Fatalf("rate-limited drops = %d, want 3", got)
	}
}

func TestRateLimitOff(t *testing.T) {
	h := newTestHub(t, Config{Rate: 0, Burst: 1})
	a := connect(t, h, ConnectOptions{Nick: "a"})
	for i := range 200 {
		a.say(fmt.Sprint(i))
	}
	for i := range 200 {
		a.expect(fmt.Sprintf("a: %d", i))
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	h := newTestHub(t, Config{Queue: 4, WriteTimeout: 10 * time.Second})
	fast := connect(t, h, ConnectOptions{Nick: "fast"})
	f := newFake()
	f.block = make(chan struct{}) // never drains
	slow, err := h.Connect(f, ConnectOptions{Nick: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- slow
	fast.expect(" .... slow has joined.")
	// One message is in the writer's hands, four wait in the queue; the
	// next overflows. The room must keep going for the fast client.
	for i := range 20 {
		fast.say(fmt.Sprint(i))
		fast.expect(fmt.Sprintf("fast: %d", i))
	}
	if h.Metrics.SlowConsumers.Load() != 1 {
		t.Fatalf("slow consumer count = %d", h.Metrics.SlowConsumers.Load())
	}
	// The write in progress completes (the peer is slow, not stuck); then
	// the close frame goes out instead of the dropped backlog.
	close(f.block)
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("slow consumer was not disconnected")
	}
	if code, reason := f.closeStatus(); code != ClosePolicyViolation || reason != "send queue overflow: client too slow" {
		t.Fatalf("close = %d %q, want 1008 with the overflow reason", code, reason)
	}
	if n := len(f.msgs); n > 1 {
		t.Fatalf("%d messages written to the dropped client after the overflow, want at most the one in flight", n)
	}
	fast.expect(" .... slow has left.")
	if h.Metrics.SlowConsumers.Load() != 1 {
		t.Fatalf("slow consumer count = %d", h.Metrics.SlowConsumers.Load())
	}
	if n := slow.q.len(); n != 0 {
		t.Fatalf("queue of the dropped client still holds %d messages", n)
	}
}

func TestWriteTimeoutDropsStuckPeer(t *testing.T) {
	h := newTestHub(t, Config{Queue: 0, WriteTimeout: 50 * time.Millisecond})
	f := newFake()
	f.block = make(chan struct{})
	c, err := h.Connect(f, ConnectOptions{Nick: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- c
	c.Receive([]byte("x"))
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("stuck writer was not aborted")
	}
	if !f.aborted.Load() {
		t.Fatal("want Abort after a write timeout")
	}
	// A peer that does not read in time is a slow consumer too.
	if n := h.Metrics.SlowConsumers.Load(); n != 1 {
		t.Fatalf("slow consumers = %d after a write timeout, want 1", n)
	}
}

func TestDeadPeerDropped(t *testing.T) {
	h := newTestHub(t, Config{PingInterval: 20 * time.Millisecond})
	// a answers pings, d does not. a answers inside Ping, so that however
	// late the scheduler runs a goroutine, a has answered each ping before
	// the next one checks.
	a := connect(t, h, ConnectOptions{Nick: "alive"})
	a.f.pong.Store(a.c)
	d := connect(t, h, ConnectOptions{Nick: "dead"})
	a.expect(" .... dead has joined.")
	d.waitEnded()
	if !d.f.aborted.Load() {
		t.Fatal("dead peer should be aborted")
	}
	a.expect(" .... dead has left.")
	if d.f.pings.Load() == 0 {
		t.Fatal("no ping was sent")
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case <-a.f.ended:
		t.Fatal("live peer was dropped")
	default:
	}
	if h.Metrics.DeadPeers.Load() != 1 {
		t.Fatalf("dead peers = %d", h.Metrics.DeadPeers.Load())
	}
}

func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenBoltStore(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(Config{History: 100, Store: st})
	a := connect(t, h, ConnectOptions{Nick: "a"})
	b := connect(t, h, ConnectOptions{Nick: "b", Room: "other"})
	a.say("last words")
	a.expect("a: last words")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, x := range []*tc{a, b} {
		x.waitEnded()
		if code, reason := x.f.closeStatus(); code != CloseGoingAway || reason != "server shutting down" {
			t.Fatalf("%s closed with %d %q", x.c.Nick(), code, reason)
		}
	}
	if _, err := h.Connect(newFake(), ConnectOptions{}); err != ErrShuttingDown {
		t.Fatalf("Connect after shutdown: %v", err)
	}
	// The store was closed (the file lock released) with the message in it.
	st2, err := OpenBoltStore(dir, 100)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st2.Close()
	recs, err := st2.Recent("lobby", 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Text != "last words" {
		t.Fatalf("history after shutdown: %v %+v", err, recs)
	}
}

func TestShutdownDrainsQueue(t *testing.T) {
	h := NewHub(Config{})
	f := newFake()
	f.block = make(chan struct{})
	c, err := h.Connect(f, ConnectOptions{Nick: "x"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- c
	for i := range 3 {
		c.Receive([]byte(fmt.Sprint(i)))
	}
	// Shutdown drains what is queued when it starts. The room handles
	// requests in order, so once a later joiner is in, the three posts
	// (and then its join notice) are queued for x.
	connect(t, h, ConnectOptions{Nick: "y"})
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.Shutdown(ctx)
	}()
	close(f.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case m := <-f.msgs:
			if m != fmt.Sprintf("x: %d", i) {
				t.Fatalf("message %d: %q", i, m)
			}
		default:
			t.Fatalf("message %d was not written before the close", i)
		}
	}
	if m := <-f.msgs; m != " .... y has joined." {
		t.Fatalf("last message %q", m)
	}
	if code, _ := f.closeStatus(); code != CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
}

func TestShutdownBoundedByContext(t *testing.T) {
	h := NewHub(Config{})
	f := newFake()
	f.block = make(chan struct{}) // never unblocks: the drain cannot finish
	c, err := h.Connect(f, ConnectOptions{Nick: "x"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- c
	c.Receive([]byte("x"))
	<-f.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if !f.aborted.Load() {
		t.Fatal("stuck client was not aborted")
	}
}

func TestAnnounceMax(t *testing.T) {
	h := newTestHub(t, Config{AnnounceMax: 2})
	a := connect(t, h, ConnectOptions{Nick: "a"})
	b := connect(t, h, ConnectOptions{Nick: "b"})
	a.expect(" .... b has joined.") // 2 members: announced
	c := connect(t, h, ConnectOptions{Nick: "c"})
	c.f.hangUp() // 3 members at join, 2 after the leave
	a.expect(" .... c has left.")
	b.expect(" .... c has left.")
	a.say("x")
	a.expect("a: x") // no join notice for c came before
}
