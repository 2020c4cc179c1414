package chat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// closingConn is a fakeConn whose writes fail the way a transport's do
// while the peer's close frame is being answered.
type closingConn struct {
	*fakeConn
	tried chan struct{}
}

func (c *closingConn) WriteText(ctx context.Context, p *Payload) error {
	c.tried <- struct{}{}
	return fmt.Errorf("%w: peer closed", ErrConnClosing)
}

// TestWriterLeavesClosingHandshakeAlone: when a write fails because the
// connection is closing (the peer's close frame arrived while the room was
// sending to it), the writer stops without aborting the connection. An
// abort there cut the TCP connection before the close reply went out: under
// traffic, clients that closed got a FIN without the server's close frame.
func TestWriterLeavesClosingHandshakeAlone(t *testing.T) {
	h := newTestHub(t, Config{})
	f := &closingConn{fakeConn: newFake(), tried: make(chan struct{}, 10)}
	c, err := h.Connect(f, ConnectOptions{Nick: "leaving"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- c
	c.Receive([]byte("bye"))
	select {
	case <-f.tried:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not write")
	}
	select {
	case <-c.writerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not stop after ErrConnClosing")
	}
	if f.aborted.Load() {
		t.Fatal("the writer aborted a connection that was closing: its close reply would be lost")
	}
	// The transport finishes the handshake and reports the end.
	f.hangUp()
	f.waitEndedFake(t)
}

// TestWriterAbortsOnWriteFailure: any other write failure still drops the
// connection.
func TestWriterAbortsOnWriteFailure(t *testing.T) {
	h := newTestHub(t, Config{WriteTimeout: 20 * time.Millisecond})
	f := newFake()
	f.block = make(chan struct{})
	c, err := h.Connect(f, ConnectOptions{Nick: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- c
	c.Receive([]byte("x"))
	f.waitEndedFake(t)
	if !f.aborted.Load() {
		t.Fatal("want Abort after a failed write")
	}
}

func (f *fakeConn) waitEndedFake(t *testing.T) {
	t.Helper()
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not ended within 5s")
	}
}

// TestHistoryReplayIsNotSlowness: a newcomer's history replay may be far
// longer than -queue; it must not count against the queue, so the join and
// leave notices that follow it do not get the newcomer disconnected as too
// slow.
func TestHistoryReplayIsNotSlowness(t *testing.T) {
	const history, queue = 50, 5
	st := NewMemStore(history)
	h := newTestHub(t, Config{History: history, Queue: queue, Store: st})
	for i := range history {
		st.Append("busy", []*Record{{Room: "busy", Nick: "old", Text: fmt.Sprint(i)}})
	}
	f := newFake()
	f.block = make(chan struct{})
	n, err := h.Connect(f, ConnectOptions{Nick: "newcomer", Room: "quiet"})
	if err != nil {
		t.Fatal(err)
	}
	f.client <- n
	// Hold the writer inside a write, so that what follows stays queued:
	// the worst case, a newcomer whose first write is slow.
	n.Receive([]byte("/help"))
	<-f.entered
	n.Receive([]byte("/join busy"))
	// Others arrive: a few notices, under -queue.
	for i := range queue - 1 {
		connect(t, h, ConnectOptions{Nick: fmt.Sprint("other", i), Room: "busy"})
	}
	waitFor(t, "the notices to be queued", func() bool { return n.q.len() >= history+2+queue-1 || n.killed.Load() })
	if n.killed.Load() || h.Metrics.SlowConsumers.Load() != 0 {
		t.Fatalf("newcomer disconnected as too slow because of its history replay (%d slow consumers)", h.Metrics.SlowConsumers.Load())
	}
	close(f.block)
	x := &tc{t: t, f: f, c: n}
	if got := x.next(); !strings.HasPrefix(got, " .... commands:") {
		t.Fatalf("first: %q", got)
	}
	x.expect(fmt.Sprintf(" .... earlier messages (%d):", history))
	for i := range history {
		x.expect(fmt.Sprintf("old: %d", i))
	}
	x.expect(" .... end of earlier messages.")
	for i := range queue - 1 {
		x.expect(fmt.Sprintf(" .... other%d has joined.", i))
	}
	// The limit still applies to live traffic beyond the replay.
	if f.aborted.Load() {
		t.Fatal("newcomer aborted")
	}
}
