package evloop

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestWritevSlowReader sends many buffers with Writev to a peer that reads
// only later: the socket takes part of them, the rest is queued from the
// middle of a buffer, later Writes go after it, and the peer gets every
// byte in order. The caller's slice is left as it was.
func TestWritevSlowReader(t *testing.T) {
	var bufs [][]byte
	var want []byte
	for i := 0; i < 300; i++ {
		b := pattern(50000+i*37, i) // sizes that do not line up with the socket buffer
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	tail := pattern(1000, 999)
	want = append(want, tail...)
	saved := append([][]byte(nil), bufs...)
	queued := make(chan int, 1)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 2 * len(want),
		OnOpen: func(c *Conn) {
			if err := c.Writev(bufs); err != nil {
				t.Error(err)
			}
			queued <- c.queued()
			if err := c.Write(tail); err != nil {
				t.Error(err)
			}
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ or are out of order")
	}
	if q := <-queued; hasWriteQueue && q == 0 {
		t.Fatal("the writev did not fill the socket: the test proves nothing about the queue")
	}
	for i := range bufs {
		if &bufs[i][0] != &saved[i][0] || len(bufs[i]) != len(saved[i]) {
			t.Fatalf("Writev changed the caller's slice at %d", i)
		}
	}
	c.Close()
	if err := rec.next(t); err != io.EOF {
		t.Fatalf("OnClose(%v)", err)
	}
}

// TestWritevQueueFull fails the connection when what the socket does not
// take would pass MaxWriteQueue.
func TestWritevQueueFull(t *testing.T) {
	if !hasWriteQueue {
		t.Skip("the portable fallback blocks instead of queueing")
	}
	errs := make(chan error, 1)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 256 << 10,
		OnOpen: func(c *Conn) {
			chunk := make([]byte, 64<<10)
			bufs := [][]byte{chunk, chunk, chunk, chunk}
			for i := 0; i < 1<<12; i++ { // 1 GiB at most
				if err := c.Writev(bufs); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s) // never reads
	defer c.Close()
	if err := <-errs; err != ErrWriteQueueFull {
		t.Fatalf("Writev = %v, want ErrWriteQueueFull", err)
	}
	if err := rec.next(t); err != ErrWriteQueueFull {
		t.Fatalf("OnClose(%v), want ErrWriteQueueFull", err)
	}
}

// TestWriteLargerThanQueue: one write larger than MaxWriteQueue, made when
// nothing is queued, is accepted and reaches a peer that reads; a second
// one while the first is still queued fails the connection.
func TestWriteLargerThanQueue(t *testing.T) {
	if !hasWriteQueue {
		t.Skip("the portable fallback blocks instead of queueing")
	}
	big := pattern(16<<20, 7)
	errs := make(chan error, 2)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 64 << 10,
		OnOpen: func(c *Conn) {
			errs <- c.Write(big)
			errs <- c.Write(big[:128<<10])
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s)
	defer c.Close()
	if err := <-errs; err != nil {
		t.Fatalf("first write: %v", err)
	}
	if err := <-errs; err != ErrWriteQueueFull {
		t.Fatalf("second write while the first is queued: %v, want ErrWriteQueueFull", err)
	}
	got := make([]byte, len(big))
	n, _ := io.ReadFull(c, got)
	// The connection was failed after the second write: what was queued
	// is dropped, so the peer may get only part; what it got is the
	// message's start, intact.
	if !bytes.Equal(got[:n], big[:n]) {
		t.Fatal("bytes differ")
	}
	if err := rec.next(t); err != ErrWriteQueueFull {
		t.Fatalf("OnClose(%v)", err)
	}
}

// TestWaitFlushed: WaitFlushed returns once a queued write reached the
// kernel, and with os.ErrDeadlineExceeded while a peer does not read.
func TestWaitFlushed(t *testing.T) {
	if !hasWriteQueue {
		t.Skip("the portable fallback blocks instead of queueing")
	}
	conns := make(chan *Conn, 1)
	s := listen(t, Config{OnOpen: func(c *Conn) { conns <- c }})
	peer := dial(t, s)
	defer peer.Close()
	c := <-conns
	big := pattern(16<<20, 3)
	if err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	if c.queued() == 0 {
		t.Fatal("16 MiB did not fill the socket: the test proves nothing")
	}
	if err := c.WaitFlushed(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitFlushed with a peer that does not read: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.WaitFlushed(time.Time{}) }()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitFlushed after the peer read all: %v", err)
	}
}
