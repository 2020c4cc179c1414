package websocket

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// recordConn is a net.Conn that records each Write call; its reads block
// until it is closed.
type recordConn struct {
	mu     sync.Mutex
	writes [][]byte
	closed chan struct{}
	once   sync.Once
}

func newRecordConn() *recordConn { return &recordConn{closed: make(chan struct{})} }

func (c *recordConn) Read(p []byte) (int, error) { <-c.closed; return 0, io.EOF }
func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}
func (c *recordConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *recordConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *recordConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recordConn) snapshot() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// awaitWrites waits until something was written to c and returns the
// writes so far; the test fails with what if nothing comes.
func (c *recordConn) awaitWrites(t *testing.T, what string) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(time.Millisecond)
	}
	return c.snapshot()
}

// Messages that arrive together are answered with one write: the event loop
// batches what its handlers send until it would wait for the peer.
func TestEventLoopBatchesReplies(t *testing.T) {
	var in []byte
	for i := 0; i < 10; i++ {
		in = append(in, clientFrame(true, 0, opText, []byte(fmt.Sprintf("message %d", i)))...)
	}
	nc := newRecordConn()
	c := newConn(false, 0, time.Second)
	c.opened(nc, in)
	handled := make(chan struct{}, 10)
	c.OnMessage(func(m Message) {
		c.SendText("echo: " + m.Text())
		handled <- struct{}{}
	})
	c.startEventLoop()
	for i := 0; i < 10; i++ {
		wait(t, handled, "message handler")
	}
	// The loop flushes before it blocks on the (empty) connection.
	writes := nc.awaitWrites(t, "no reply written")
	if len(writes) != 1 {
		t.Fatalf("%d writes for 10 replies, want 1", len(writes))
	}
	d := &decoder{}
	got := decodeAll(d, writes[0], 0)
	if got.err != nil || len(got.events) != 10 || got.events[9] != `text:"echo: message 9"` {
		t.Fatalf("batched frames decode to %v, %v", got.events, got.err)
	}
	c.CloseNow()
	<-c.Done()
}

// A single message is answered at once, not held for a batch.
func TestEventLoopSingleReplyNotDelayed(t *testing.T) {
	nc := newRecordConn()
	c := newConn(false, 0, time.Second)
	c.opened(nc, clientFrame(true, 0, opText, []byte("one")))
	c.OnMessage(func(m Message) { c.SendText(m.Text()) })
	c.startEventLoop()
	nc.awaitWrites(t, "reply never written")
	c.CloseNow()
	<-c.Done()
}

// The blocking API batches too: an echo loop over messages that arrived
// together answers them with one write.
func TestBlockingEchoBatchesReplies(t *testing.T) {
	var in []byte
	for i := 0; i < 10; i++ {
		in = append(in, clientFrame(true, 0, opBinary, []byte{byte(i)})...)
	}
	nc := newRecordConn()
	c := newConn(false, 0, time.Second)
	c.opened(nc, in)
	c.flushed.Store(true)
	ctx := testContext(t)
	var buf []byte
	for i := 0; i < 10; i++ {
		typ, msg, err := c.ReadMessage(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		buf = msg
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatal(err)
		}
	}
	// The next read would wait for the network: the batch goes out first.
	go c.ReadMessage(ctx, nil)
	writes := nc.awaitWrites(t, "no reply written")
	if len(writes) != 1 {
		t.Fatalf("%d writes for 10 replies, want 1", len(writes))
	}
	if got := decodeAll(&decoder{}, writes[0], 0); got.err != nil || len(got.events) != 10 {
		t.Fatalf("batched frames decode to %v, %v", got.events, got.err)
	}
	c.CloseNow()
}

// A reader that stops reading cannot hold a batch back: the batch timer
// sends it.
func TestBatchTimerFlushes(t *testing.T) {
	in := append(clientFrame(true, 0, opText, []byte("a")), clientFrame(true, 0, opText, []byte("b"))...)
	nc := newRecordConn()
	c := newConn(false, 0, time.Second)
	c.opened(nc, in)
	c.flushed.Store(true)
	ctx := testContext(t)
	if _, _, err := c.ReadMessage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !c.batching.Load() {
		t.Fatal("no batch opened with a message still buffered")
	}
	c.Write(ctx, TextMessage, []byte("reply"))
	// No further read: only the timer can send the reply.
	nc.awaitWrites(t, "the batched reply was never sent")
	c.CloseNow()
}
