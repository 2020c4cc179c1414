package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Keepalive and Ping. A connection whose peer vanished without closing TCP
// (a machine switched off, a NAT that forgot the flow) looks idle for ever:
// nothing arrives, and nothing fails until a write fills the socket
// buffers. With PingInterval set, the connection pings the peer every
// interval and drops it when nothing at all arrives within PongTimeout of a
// ping: any byte counts, not just the pong, so a pong queued behind a large
// message does not condemn a healthy peer.
//
// The schedule is one runtime timer per connection (time.AfterFunc), which
// holds no goroutine between its firings: a parked event loop (poll.go)
// stays parked, and the poller wakes it when the pong arrives. Each firing
// either sends a ping (the write is bounded by the write and close
// timeouts) or checks that the peer was heard since the last one.

// ErrPongTimeout is the cause of a connection dropped by keepalive: nothing
// arrived from the peer within PongTimeout of a ping. Reads and OnClose
// report StatusAbnormalClosure with a reason naming the missing pong, and
// errors.Is(err, ErrPongTimeout) holds for the *CloseError reads return.
var ErrPongTimeout = errors.New("websocket: no pong from the peer within the pong timeout")

// pingTag starts the payload of the pings that Ping and keepalive send; a
// big-endian sequence number follows. A pong carrying it answers every ping
// up to that number, since RFC 6455 §5.5.3 lets a peer answer only the most
// recent ping.
const pingTag = "wsdriver-ping:"

const pingPayloadLen = len(pingTag) + 8

// keepalive is a connection's keepalive schedule and its Ping waiters.
type keepalive struct {
	interval time.Duration // 0: keepalive is off
	timeout  time.Duration

	heard atomic.Bool // bytes arrived since pingAt

	mu       sync.Mutex
	timer    *time.Timer
	nextPing time.Time // when the next keepalive ping is due
	pingOut  bool      // a keepalive ping is unanswered: nothing was heard since pingAt
	pingAt   time.Time
	stopped  bool
	seq      uint64        // number of the last ping sent by Ping or keepalive
	waiters  []*pingWaiter // Ping calls waiting for their pong
}

// keepalive returns the connection's keepalive state, making it on first
// use: a connection without PingInterval that never calls Ping carries
// none.
func (c *Conn) keepalive() *keepalive {
	if k := c.ka.Load(); k != nil {
		return k
	}
	c.ka.CompareAndSwap(nil, new(keepalive))
	return c.ka.Load()
}

// pingWaiter is a Ping call waiting for its pong.
type pingWaiter struct {
	seq  uint64
	sent time.Time
	rtt  time.Duration
	done chan struct{} // closed once rtt is set
}

// startKeepalive schedules the first keepalive ping once the connection is
// open.
func (c *Conn) startKeepalive() {
	k := c.ka.Load()
	if k == nil || k.interval <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped && k.timer == nil {
		k.nextPing = time.Now().Add(k.interval)
		k.timer = time.AfterFunc(k.interval, c.keepaliveTick)
	}
}

// stopKeepalive ends the schedule; finish calls it.
func (c *Conn) stopKeepalive() {
	k := c.ka.Load()
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

// heardFromPeer records that bytes arrived; the read paths call it.
func (c *Conn) heardFromPeer() {
	if k := c.ka.Load(); k != nil && k.interval > 0 && !k.heard.Load() {
		k.heard.Store(true)
	}
}

// keepaliveTick runs on the timer: it drops the connection if the oldest
// unanswered ping has waited PongTimeout, sends a ping when one is due, and
// sets the timer for whichever of the two comes next.
func (c *Conn) keepaliveTick() {
	k := c.ka.Load()
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	now := time.Now()
	if k.pingOut && k.heard.Load() {
		k.pingOut = false // answered
	}
	if k.pingOut && !now.Before(k.pingAt.Add(k.timeout)) {
		k.stopped = true
		k.mu.Unlock()
		c.finish(&CloseError{
			Code:   StatusAbnormalClosure,
			Reason: "keepalive: no pong within " + k.timeout.String(),
			err:    ErrPongTimeout,
		})
		return
	}
	var p [pingPayloadLen]byte
	send := false
	if !now.Before(k.nextPing) {
		k.nextPing = now.Add(k.interval)
		// Once closing, the close timer bounds the rest of the
		// connection's life.
		if send = c.ReadyState() == Open; send {
			if !k.pingOut {
				// The pong timeout runs from the oldest unanswered ping.
				k.heard.Store(false)
				k.pingOut, k.pingAt = true, now
			}
			k.seq++
			p = pingPayload(k.seq)
		}
	}
	next := k.nextPing
	if k.pingOut && k.pingAt.Add(k.timeout).Before(next) {
		next = k.pingAt.Add(k.timeout)
	}
	k.timer.Reset(next.Sub(now))
	k.mu.Unlock()
	if send {
		// A failed write drops the connection by itself.
		c.writeControl(opPing, p[:])
	}
}

func pingPayload(seq uint64) [pingPayloadLen]byte {
	var p [pingPayloadLen]byte
	copy(p[:], pingTag)
	binary.BigEndian.PutUint64(p[len(pingTag):], seq)
	return p
}

// pongReceived completes the Ping calls that a pong answers; the reading
// goroutine calls it for every pong.
func (c *Conn) pongReceived(p []byte) {
	c.heardFromPeer()
	if len(p) != pingPayloadLen || !bytes.HasPrefix(p, []byte(pingTag)) {
		return
	}
	seq := binary.BigEndian.Uint64(p[len(pingTag):])
	now := time.Now()
	k := c.ka.Load()
	if k == nil {
		return // no ping was sent
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if seq > k.seq {
		return // not a ping of ours
	}
	kept := k.waiters[:0]
	for _, w := range k.waiters {
		if w.seq <= seq {
			w.rtt = now.Sub(w.sent)
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(k.waiters[len(kept):])
	k.waiters = kept
}

// Ping sends a ping and waits for the peer's pong, returning the round-trip
// time. Each call's ping carries its own payload, and a pong for a later
// ping also answers earlier ones (a peer may answer only the most recent,
// RFC 6455 §5.5.3). Pongs are seen only while the connection is read: the
// event loop always reads, but with the blocking API another goroutine must
// be in Read, ReadMessage or NextReader. The write is bounded by ctx and
// the write timeout; the wait by ctx, and by the connection's end, which
// returns its error. Ping needs an open connection (ErrClosed otherwise;
// it is not queued while connecting). To send a ping without waiting, or
// with a payload of your own, use SendPing.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	if c.ReadyState() != Open {
		return 0, ErrClosed
	}
	k := c.keepalive()
	w := &pingWaiter{done: make(chan struct{})}
	k.mu.Lock()
	k.seq++
	w.seq = k.seq
	w.sent = time.Now()
	k.waiters = append(k.waiters, w)
	k.mu.Unlock()
	p := pingPayload(w.seq)
	if err := c.writeFrame(ctx, true, 0, opPing, p[:]); err != nil {
		c.dropWaiter(w)
		return 0, err
	}
	select {
	case <-w.done:
		return w.rtt, nil
	case <-ctx.Done():
	case <-c.doneChan():
	}
	c.dropWaiter(w)
	select {
	case <-w.done: // the pong won the race
		return w.rtt, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 0, c.doneErr()
}

// dropWaiter forgets a Ping call that gave up.
func (c *Conn) dropWaiter(w *pingWaiter) {
	k := c.ka.Load()
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, x := range k.waiters {
		if x == w {
			k.waiters = slices.Delete(k.waiters, i, i+1)
			return
		}
	}
}
