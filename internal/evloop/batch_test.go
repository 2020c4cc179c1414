//go:build linux && !evloop_portable

package evloop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireRing skips the test when this kernel cannot give a loop a ring,
// and has the ring used from two sends on (the default needs more
// connections than the tests make).
func requireRing(t *testing.T) {
	t.Helper()
	t.Setenv("EVLOOP_BATCH_MIN", "2")
	r, err := newURing()
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	r.close()
}

// ringStats sums the io_uring_enter calls and sends of s's loops; call it
// after s.Close, which orders the loops' counts before it.
func ringStats(s *Server) (enters, sends uint64, rings int) {
	for _, l := range s.loops {
		if r := l.batch.ring; r != nil {
			enters += r.enters
			sends += r.submitted
			rings++
		}
	}
	return
}

// fanout is a server whose connections are receivers, except the one
// that sends a byte: its OnData writes to every receiver, round after
// round, on its loop (from where the batch is gathered).
type fanout struct {
	mu        sync.Mutex
	receivers []*Conn
	control   *Conn
	onTrigger func(rs []*Conn)
}

func (f *fanout) onOpen(c *Conn) {
	f.mu.Lock()
	f.receivers = append(f.receivers, c)
	f.mu.Unlock()
}

func (f *fanout) onData(c *Conn, b []byte) {
	f.mu.Lock()
	var rs []*Conn
	for _, r := range f.receivers {
		if r != c {
			rs = append(rs, r)
		}
	}
	f.mu.Unlock()
	f.onTrigger(rs)
}

// message is the k-th message of receiver id: its size varies from one
// byte to past maxGather and the socket's buffers, so that entries start,
// grow, move, are sent in part (EAGAIN, short sends) and are bypassed by
// large writes.
func message(id, k int) []byte {
	sizes := []int{100, 3000, maxGather + 1, 1, maxGather, 70000, 128}
	return pattern(sizes[(id+k)%len(sizes)], id*131+k)
}

// runFanout dials receivers, then a control connection whose byte makes
// the server call onTrigger on its loop; each receiver reads to the end
// of the stream and must get exactly want(id).
func runFanout(t *testing.T, s *Server, f *fanout, receivers int, want func(id int) []byte) {
	t.Helper()
	conns := make([]net.Conn, receivers)
	for i := range conns {
		conns[i] = dial(t, s)
	}
	waitFor(t, func() bool { return s.NumConns() == receivers })
	ctl := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == receivers+1 })

	var wg sync.WaitGroup
	errs := make(chan error, receivers)
	got := make([][]byte, receivers)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := io.ReadAll(c)
			got[i] = b
			if err != nil {
				errs <- err
			}
		}()
	}
	if _, err := ctl.Write([]byte{'G'}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The server numbered the receivers in its own order: match each
	// stream to a receiver's by content.
	for i := range got {
		found := false
		for id := 0; id < receivers; id++ {
			if bytes.Equal(got[i], want(id)) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("receiver %d got %d bytes that match no receiver's stream", i, len(got[i]))
		}
	}
}

// waitFor polls cond until it holds, failing after the generous wait.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchOrdering writes many rounds of messages of mixed sizes to many
// connections from the loop, and closes them in the same callback: every
// receiver must get its bytes whole, in order, then the end of the
// stream. With io_uring the writes go through the batch (the ring must
// have been used), without it (EVLOOP_IOURING=0) straight to write; with
// two loops, half the receivers are another loop's.
func TestBatchOrdering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ring  bool
		loops int
	}{
		{"iouring", true, 1},
		{"iouring-2loops", true, 2},
		{"fallback", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ring {
				requireRing(t)
			} else {
				t.Setenv("EVLOOP_IOURING", "0")
			}
			const receivers, rounds = 20, 24
			ids := make(map[*Conn]int)
			f := &fanout{}
			f.onTrigger = func(rs []*Conn) {
				for i, c := range rs {
					if _, ok := ids[c]; !ok {
						ids[c] = i
					}
				}
				for k := 0; k < rounds; k++ {
					for _, c := range rs {
						if err := c.Write(message(ids[c], k)); err != nil {
							t.Error(err)
						}
					}
				}
				for _, c := range rs {
					c.Close()
				}
			}
			s := listen(t, Config{Loops: tc.loops, MaxWriteQueue: 64 << 20, OnOpen: f.onOpen, OnData: f.onData})
			runFanout(t, s, f, receivers, func(id int) []byte {
				var b []byte
				for k := 0; k < rounds; k++ {
					b = append(b, message(id, k)...)
				}
				return b
			})
			s.Close()
			enters, sends, rings := ringStats(s)
			t.Logf("%d rings, %d io_uring_enter, %d sends", rings, enters, sends)
			if tc.ring && (rings != tc.loops || sends == 0) {
				t.Fatalf("the batch was not used: %d rings, %d sends", rings, sends)
			}
			if !tc.ring && rings != 0 {
				t.Fatal("EVLOOP_IOURING=0 did not turn io_uring off")
			}
		})
	}
}

// TestBatchShortWrites gathers far more than the sockets take for two
// peers that are not reading yet: the sends come back short (and must not
// wait in the kernel, which would stall the loop), the rest is queued,
// and the peers, once they read, get every byte in order.
func TestBatchShortWrites(t *testing.T) {
	requireRing(t)
	const chunks = 2048 // 2048 x 8 KiB = 16 MiB, more than loopback buffers hold
	written := make(chan struct{})
	f := &fanout{}
	f.onTrigger = func(rs []*Conn) {
		for k := 0; k < chunks; k++ {
			for _, c := range rs {
				c.Write(pattern(8<<10, k))
			}
		}
		close(written)
	}
	s := listen(t, Config{Loops: 1, MaxWriteQueue: 64 << 20, OnOpen: f.onOpen, OnData: f.onData})
	peers := []net.Conn{dial(t, s), dial(t, s)}
	waitFor(t, func() bool { return s.NumConns() == 2 })
	f.mu.Lock()
	rcs := f.receivers
	f.mu.Unlock()
	ctl := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == 3 })
	ctl.Write([]byte{'G'})
	<-written
	// The loop flushes the batch; then what the sockets did not take
	// waits in the queues, since the peers read nothing.
	queued := 0
	waitFor(t, func() bool {
		queued = rcs[0].queued() + rcs[1].queued()
		return rcs[0].queued() > 0 && rcs[1].queued() > 0
	})
	var want []byte
	for k := 0; k < chunks; k++ {
		want = append(want, pattern(8<<10, k)...)
	}
	for _, peer := range peers {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(peer, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("bytes out of order or corrupted")
		}
	}
	s.Close()
	enters, sends, _ := ringStats(s)
	t.Logf("queued %d bytes after the flush; %d io_uring_enter, %d sends", queued, enters, sends)
	if sends == 0 {
		t.Fatal("the batch was not used")
	}
}

// TestBatchSendError has a gathered send fail (our end of the socket is
// shut, so the kernel answers EPIPE): the connection fails with that
// error, as with a plain write, and the others of the batch are served.
func TestBatchSendError(t *testing.T) {
	requireRing(t)
	rec := newClosed(3)
	f := &fanout{}
	f.onTrigger = func(rs []*Conn) {
		syscall.Shutdown(int(rs[0].fd), syscall.SHUT_WR)
		for _, c := range rs {
			if err := c.Write([]byte("hello")); err != nil {
				t.Errorf("Write: %v (it is gathered: the error comes later)", err)
			}
		}
		rs[1].Close()
	}
	s := listen(t, Config{Loops: 1, OnOpen: f.onOpen, OnData: f.onData, OnClose: rec.onClose})
	bad := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == 1 })
	good := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == 2 })
	ctl := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == 3 })
	ctl.Write([]byte{'G'})
	if b, err := io.ReadAll(good); err != nil || string(b) != "hello" {
		t.Fatalf("good receiver got %q, %v", b, err)
	}
	good.Close() // our side is done too: its close need not wait for a timeout
	var errs []error
	for i := 0; i < 2; i++ {
		errs = append(errs, rec.next(t))
	}
	if !errors.Is(errs[0], syscall.EPIPE) && !errors.Is(errs[1], syscall.EPIPE) {
		t.Fatalf("OnClose errors %v, want one EPIPE", errs)
	}
	io.ReadAll(bad) // our FIN went out with the shutdown
	s.Close()
	if _, sends, _ := ringStats(s); sends == 0 {
		t.Fatal("the batch was not used")
	}
}

// TestBatchCloseSameWakeup closes connections right after writing to
// them, and has the loop take the close in the same wake-up (as when the
// wake-up event came with the data): a connection whose bytes are still
// in the batch counts as having a queue, so its end of the stream goes
// out after them, not before.
func TestBatchCloseSameWakeup(t *testing.T) {
	requireRing(t)
	f := &fanout{}
	f.onTrigger = func(rs []*Conn) {
		for _, c := range rs {
			c.Write([]byte("last words"))
			c.Close()
		}
		rs[0].loop.wakeup() // what the loop does when the wake-up event is in this round
	}
	s := listen(t, Config{Loops: 1, OnOpen: f.onOpen, OnData: f.onData})
	peers := []net.Conn{dial(t, s), dial(t, s)}
	waitFor(t, func() bool { return s.NumConns() == 2 })
	ctl := dial(t, s)
	waitFor(t, func() bool { return s.NumConns() == 3 })
	ctl.Write([]byte{'G'})
	for _, p := range peers {
		if b, err := io.ReadAll(p); err != nil || string(b) != "last words" {
			t.Fatalf("peer got %q, %v", b, err)
		}
		p.Close()
	}
}
