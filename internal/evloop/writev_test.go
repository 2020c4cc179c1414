package evloop

import (
	"bytes"
	"io"
	"testing"
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
