package chat

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// overflowConn is a direct transport whose queue takes limit messages;
// the next write drops the connection as its transport would
// (ErrSlowConsumer, then Disconnected).
type overflowConn struct {
	*fakeConn
	limit  int32
	writes atomic.Int32
}

func (o *overflowConn) WriteText(ctx context.Context, p *Payload) error {
	if o.writes.Add(1) > o.limit {
		go func() { o.end() }()
		return fmt.Errorf("%w: transport queue full", ErrSlowConsumer)
	}
	return o.fakeConn.WriteText(ctx, p)
}

// TestDirectClient: a direct client (the event-loop backend) gets its
// messages written at once, in order, with no writer of its own; when its
// transport's queue overflows it is counted once as a slow consumer and
// disconnected, and the room goes on.
func TestDirectClient(t *testing.T) {
	h := newTestHub(t, Config{Queue: 4})
	a := connect(t, h, ConnectOptions{Room: "r", Nick: "ann", Direct: true})
	f := newFake()
	slow := &overflowConn{fakeConn: f, limit: 2}
	bc, err := h.Connect(slow, ConnectOptions{Room: "r", Nick: "bob", Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- bc
	a.expect(" .... bob has joined.")
	for i := range 5 {
		a.say(fmt.Sprintf("m%d", i))
	}
	// ann gets her messages in order, and bob's leave wherever his
	// transport's end came between them.
	next, left := 0, false
	for range 6 {
		switch m := a.next(); {
		case m == " .... bob has left." && !left:
			left = true
		case m == fmt.Sprintf("ann: m%d", next):
			next++
		default:
			t.Fatalf("ann got %q (after m%d)", m, next-1)
		}
	}
	waitFor(t, "bob disconnected", func() bool { n, _ := h.Counts(); return n == 1 })
	if got := h.Metrics.SlowConsumers.Load(); got != 1 {
		t.Fatalf("slow consumers = %d, want 1", got)
	}
	// bob's transport took two writes: ann's join notice was before bob,
	// so m0 and m1.
	for i := range 2 {
		if m := <-f.msgs; !strings.HasSuffix(m, fmt.Sprintf("m%d", i)) {
			t.Fatalf("bob got %q", m)
		}
	}
	if n := h.Metrics.MessagesOut.Load(); n < 7 {
		t.Fatalf("messages out = %d, want at least 7", n)
	}
}
