//go:build linux && !evloop_portable

package evloop

import (
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Batched writes across connections.
//
// While a loop serves the events of one wake-up (its callbacks run, and
// with the backend's HandlersOnLoop so do the handlers, a broadcast among
// them), a Write to one of its connections that has nothing queued is not
// made at once: its bytes are copied into the loop's batch, and when the
// wake-up's work is done the loop sends the whole batch with one
// io_uring_enter that carries an IORING_OP_SEND per connection, instead of
// one write system call each. The batch is open only while the loop is
// awake and will flush it, so a Write from any goroutine, on the loop or
// not, and to a connection of this loop or of another, may join it: the
// loop that owns the connection is the one that sends. A Write made while
// the loop waits for events goes out at once, as before.
//
// The sends are non-blocking (MSG_DONTWAIT): the kernel completes each
// during the call, with the bytes it took, or EAGAIN. What a socket did
// not take is put at the front of the connection's queue, which the loop
// sends when the socket is writable, as for any write (Write keeps the
// order: while a connection's bytes are in the batch, its later writes are
// gathered after them or queued). An error fails the connection as a
// write error does. A batch of fewer than EVLOOP_BATCH_MIN (default
// defaultBatchMin) sends is made with a write each: the ring costs more
// than that many writes.
//
// Without io_uring (a kernel before 5.6, io_uring disabled by sysctl or a
// seccomp filter, EVLOOP_IOURING=0 in the environment, or the portable
// build) nothing is gathered: every Write is a write system call.

// maxGather is the largest write that starts a batch entry: a larger one
// is made at once, which spares copying it (a write that joins an entry
// already gathered is copied whatever its size, to keep the order).
const maxGather = 16 << 10

// defaultBatchMin is the fewest sends that go through the ring; fewer
// are made with write. Measured (BenchmarkFanout, BenchmarkEchoCPU, one
// server core): io_uring costs the server more CPU than writes for
// batches of about 10 (echo with 1,000 connections: 10% more), is even at
// about 32, and saves 12 to 25% from 128 receivers on.
const defaultBatchMin = 32

// gathered is a connection's bytes in the batch: arena[off:off+n], with
// room up to off+room for more.
type gathered struct {
	c            *Conn
	off, n, room int
}

// batch is a loop's gathered writes.
type batch struct {
	ring *uring // nil: no batching; set at the loop's creation
	min  int    // the fewest sends for which the ring is used (EVLOOP_BATCH_MIN)

	mu    sync.Mutex
	open  bool       // the loop is serving events and will flush
	ents  []gathered // in the order the connections joined
	arena []byte
	at    []int32 // by connection slot: index+1 of its entry in ents; stale values are checked

	// Used by the loop only, while flushing.
	fds  []int32
	bufs [][]byte
	res  []int32
}

// initBatch sets up the loop's ring, unless EVLOOP_IOURING=0 or the
// kernel cannot; either way the loop works, with or without batching.
func (l *loop) initBatch() {
	if os.Getenv("EVLOOP_IOURING") == "0" {
		return
	}
	r, err := newURing()
	if err != nil {
		slog.Debug("evloop: no io_uring, writes are not batched", "err", err)
		return
	}
	l.batch.ring = r
	l.batch.min = envInt("EVLOOP_BATCH_MIN", defaultBatchMin)
}

func (l *loop) closeBatch() {
	g := &l.batch
	g.mu.Lock()
	g.open = false
	g.mu.Unlock()
	if g.ring != nil {
		g.ring.close()
	}
}

// openBatch starts gathering writes: the loop is awake and will call
// flushBatch.
func (l *loop) openBatch() {
	if l.batch.ring == nil {
		return
	}
	l.batch.mu.Lock()
	l.batch.open = true
	l.batch.mu.Unlock()
}

// gatherLocked adds b to c's entry in its loop's batch, if the batch is
// open and c has nothing queued, and reports whether it did (c.mu held).
// The error is Write's.
func (l *loop) gatherLocked(c *Conn, b []byte) (bool, error) {
	g := &l.batch
	if g.ring == nil || c.out != nil {
		return false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return false, nil
	}
	if c.flags&flagGathered == 0 {
		if len(b) > maxGather {
			return false, nil
		}
		off := len(g.arena)
		g.arena = append(g.arena, b...)
		g.ents = append(g.ents, gathered{c: c, off: off, n: len(b), room: len(b)})
		for int(c.slot) >= len(g.at) {
			g.at = append(g.at, 0)
		}
		g.at[c.slot] = int32(len(g.ents))
		c.flags |= flagGathered
		return true, nil
	}
	// c joined this batch before (a gathered connection has an entry in
	// the open batch: flushBatch clears the flag before it reopens).
	e := &g.ents[g.at[c.slot]-1]
	n := e.n + len(b)
	if n > l.s.cfg.MaxWriteQueue {
		c.failLocked(reasonQueueFull, nil)
		return true, ErrWriteQueueFull
	}
	switch {
	case e.off+e.room == len(g.arena): // the last entry: grow it in place
		g.arena = append(g.arena[:e.off+e.n], b...)
		e.room = n
	case n <= e.room:
		copy(g.arena[e.off+e.n:], b)
	default:
		// Move the entry to the end, with as much room again, so that a
		// connection written to many times costs linear copying.
		off, room := len(g.arena), 2*n
		g.arena = append(g.arena, g.arena[e.off:e.off+e.n]...)
		g.arena = append(g.arena, b...)
		g.arena = append(g.arena, make([]byte, room-n)...)
		e.off, e.room = off, room
	}
	e.n = n
	return true, nil
}

// flushBatch sends the gathered writes, ringEntries connections per
// io_uring_enter (or a write each when they are few), and closes the
// batch until the next openBatch.
func (l *loop) flushBatch() {
	g := &l.batch
	if g.ring == nil {
		return
	}
	g.mu.Lock()
	g.open = false
	ents, arena := g.ents, g.arena // nobody else touches them while closed
	g.mu.Unlock()
	if len(ents) == 0 {
		return
	}
	for start := 0; start < len(ents); start += ringEntries {
		chunk := ents[start:min(start+ringEntries, len(ents))]
		g.fds, g.bufs = g.fds[:0], g.bufs[:0]
		for i := range chunk {
			e := &chunk[i]
			c := e.c
			c.mu.Lock()
			send := c.fd >= 0 && (c.flags&flagClosing == 0 || c.reason == reasonLocal)
			if !send {
				// Closed, or failing: its bytes are dropped, as a
				// failing connection's queue is.
				c.flags &^= flagGathered
				e.c = nil
			}
			c.mu.Unlock()
			if send {
				g.fds = append(g.fds, c.fd)
				g.bufs = append(g.bufs, arena[e.off:e.off+e.n])
			}
		}
		if cap(g.res) < len(g.fds) {
			g.res = make([]int32, ringEntries)
		}
		res := g.res[:len(g.fds)]
		if len(res) < g.min {
			for i := range res {
				n, err := write(int(g.fds[i]), g.bufs[i])
				res[i] = int32(n)
				if errno, ok := err.(syscall.Errno); ok {
					res[i] = -int32(errno)
				}
			}
		} else {
			g.ring.sendAll(g.fds, g.bufs, res)
		}
		k := 0
		for i := range chunk {
			if c := chunk[i].c; c != nil {
				l.sent(c, g.bufs[k], res[k])
				k++
			}
		}
	}
	clear(g.bufs[:cap(g.bufs)]) // the arena may be dropped below
	for i := range ents {
		if c := ents[i].c; c != nil && int(c.slot) < len(g.at) {
			g.at[c.slot] = 0
		}
	}
	clear(ents) // no Conn is kept alive by the batch
	if cap(arena) > 4<<20 {
		arena = nil // a rare burst does not pin its memory
	}
	g.mu.Lock()
	g.ents, g.arena = ents[:0], arena[:0]
	g.mu.Unlock()
}

// sent finishes c's send of b that had result res (bytes, or -errno).
func (l *loop) sent(c *Conn, b []byte, res int32) {
	c.mu.Lock()
	c.flags &^= flagGathered
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	switch {
	case res >= 0:
		b = b[res:]
	case res == -int32(syscall.EINTR), res == -int32(syscall.EAGAIN):
	default:
		c.failLocked(reasonWrite, syscall.Errno(-res))
		c.mu.Unlock()
		return
	}
	if len(b) > 0 {
		// Put the rest in front of what was written since the batch
		// closed, and wait until the socket can take it.
		if q := c.out; q == nil {
			c.out = &outQueue{buf: append([]byte(nil), b...)}
		} else {
			buf := make([]byte, 0, len(b)+len(q.buf)-q.off)
			buf = append(append(buf, b...), q.buf[q.off:]...)
			q.buf, q.off = buf, 0
		}
		if c.flags&flagOutArmed == 0 {
			c.flags |= flagOutArmed
			l.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
		}
		c.mu.Unlock()
		return
	}
	closing := c.flags&flagClosing != 0 && c.out == nil
	c.mu.Unlock()
	if closing {
		l.flush(c) // nothing left to send: the end of the stream goes out
	}
}
