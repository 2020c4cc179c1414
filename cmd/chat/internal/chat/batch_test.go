package chat

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// batchConn is a Conn that also takes a writer's backlog whole
// (BatchWriter), recording the size of each batch.
type batchConn struct {
	*fakeConn
	mu      sync.Mutex
	batches []int
}

func (b *batchConn) WriteTexts(ctx context.Context, ps []*Payload) error {
	b.mu.Lock()
	b.batches = append(b.batches, len(ps))
	b.mu.Unlock()
	for _, p := range ps {
		if err := b.fakeConn.WriteText(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// TestWriterSendsBacklogWhole: a writer that finds several messages
// queued hands them to a BatchWriter in one call, in order, and counts
// every one of them.
func TestWriterSendsBacklogWhole(t *testing.T) {
	h := newTestHub(t, Config{Queue: 64})
	a := connect(t, h, ConnectOptions{Room: "r", Nick: "ann"})
	f := newFake()
	f.block = make(chan struct{}) // bob's writer waits until the backlog is queued
	bob := &batchConn{fakeConn: f}
	bc, err := h.Connect(bob, ConnectOptions{Room: "r", Nick: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- bc
	a.expect(" .... bob has joined.")
	// bob's writer takes the first message and waits in its write; what
	// follows piles up in his queue meanwhile.
	a.say("first")
	a.expect("ann: first")
	<-f.entered
	const n = 20
	for i := range n {
		a.say(fmt.Sprintf("m%d", i))
		a.expect(fmt.Sprintf("ann: m%d", i))
	}
	before := h.Metrics.MessagesOut.Load()
	close(f.block)
	bobs := &tc{t: t, f: f, c: bc}
	for m := bobs.next(); m != "ann: first"; m = bobs.next() {
	}
	for i := range n {
		bobs.expect(fmt.Sprintf("ann: m%d", i))
	}
	bob.mu.Lock()
	batches := append([]int(nil), bob.batches...)
	bob.mu.Unlock()
	biggest := 0
	for _, k := range batches {
		biggest = max(biggest, k)
	}
	// The writer may have taken m0 with "first" before it blocked: what
	// queued behind it, at least n-1 messages, goes out in one call.
	if biggest < n-1 {
		t.Fatalf("batches %v: the backlog of at least %d messages was not sent in one call", batches, n-1)
	}
	waitFor(t, "messages counted", func() bool { return h.Metrics.MessagesOut.Load()-before >= n })
	if h.Metrics.SlowConsumers.Load() != 0 {
		t.Fatal("a reader that kept up was counted as slow")
	}
}

// TestDirectClientBatches: a direct client whose transport is a
// BatchWriter gets the room's broadcasts through WriteTexts, one call per
// drain of the room, each message once and in order.
func TestDirectClientBatches(t *testing.T) {
	h := newTestHub(t, Config{Queue: 64})
	a := connect(t, h, ConnectOptions{Room: "r", Nick: "ann"})
	f := newFake()
	bob := &batchConn{fakeConn: f}
	bc, err := h.Connect(bob, ConnectOptions{Room: "r", Nick: "bob", Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- bc
	a.expect(" .... bob has joined.")
	const n = 50
	for i := range n {
		a.say(fmt.Sprintf("m%d", i)) // no wait: posts pile up in the room's inbox
	}
	bobs := &tc{t: t, f: f, c: bc}
	for m := bobs.next(); m != "ann: m0"; m = bobs.next() {
	}
	for i := 1; i < n; i++ {
		bobs.expect(fmt.Sprintf("ann: m%d", i))
	}
	bob.mu.Lock()
	batches := append([]int(nil), bob.batches...)
	bob.mu.Unlock()
	total := 0
	for _, k := range batches {
		total += k
	}
	// The welcome burst goes out with single writes (force); every
	// broadcast went through WriteTexts.
	if total < n {
		t.Fatalf("batches %v carried %d messages, want at least the %d broadcasts", batches, total, n)
	}
}
