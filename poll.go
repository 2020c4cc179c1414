package websocket

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Parking idle event loops. A goroutine blocked in read costs its stack
// (4 KiB once it has run a handler) for as long as its connection is idle,
// and most connections of a busy server are idle at any moment. So where
// the library has a poller (poll_linux.go), a connection started with the
// event API is registered with one process-wide poller, and an event loop
// that has waited for a whole idle sweep without a message parks (as does
// a new connection with nothing to read right after the handshake): its
// goroutine ends, the socket joins the poller's epoll set, and the Conn is
// all that remains. When bytes arrive the poller starts a goroutine that
// takes the loop up where it stopped.
//
// A busy connection never parks, so it pays nothing per message for this:
// its loop waits in the Go runtime's poller as any blocking read does. Only
// the sweep (one goroutine, every idleSweep) looks at the connections, and
// interrupts the wait of one that had no message since the last sweep by
// moving its read deadline to the past.
//
// Handlers still run on the connection's own goroutine, one at a time, so a
// handler that blocks delays only its connection. A loop parks only between
// messages with its read buffer fully parsed; the decoder keeps any partial
// frame header in the Conn, so nothing else needs saving.

// idleSweep is how often the poller looks for idle event loops; a loop
// parks after one to two sweeps without a message. Tests shorten it.
var idleSweep atomic.Int64

func init() { idleSweep.Store(int64(time.Second)) }

// loopState says who runs a polled connection's event loop. The poller, the
// loop and finish hand the connection over with compare-and-swap, so
// exactly one goroutine runs the loop at a time.
type loopState = int32

const (
	loopRunning loopState = iota // a goroutine runs the loop
	loopParked                   // no goroutine; the poller starts one when bytes arrive
	loopDone                     // the loop has ended and OnClose has run
)

// pollLink is a connection's registration with the poller.
type pollLink struct {
	poller atomic.Pointer[poller] // set while registered
	state  atomic.Int32           // a loopState
	active atomic.Bool            // a message arrived since the last sweep

	// The sweep and the loop agree under mu on whether the loop's wait was
	// interrupted, so that a deadline meant to end an idle wait never cuts
	// a read in the middle of a message.
	mu          sync.Mutex
	waiting     bool // the loop waits for a message to start
	interrupted bool // the sweep moved the read deadline to end that wait

	// Guarded by the poller's lock.
	fd    int32 // the socket's descriptor
	inSet bool  // added to the epoll set (on the first park)
}

// attachPoller registers the connection with the process's poller so that
// its event loop can park. It does nothing where there is no poller or the
// connection is not a plain TCP socket (TLS reads for itself): the loop then
// keeps its goroutine, which works everywhere.
func (c *Conn) attachPoller() {
	if c.rd == nil || c.rd.idle == nil || !pollSupported {
		return
	}
	p, err := sharedPoller()
	if err != nil {
		return
	}
	fd := -1
	if c.rd.idle.raw.Control(func(s uintptr) { fd = int(s) }) != nil || fd < 0 {
		return
	}
	c.poll.Store(new(pollLink))
	p.add(c, fd)
	c.pollReg().poller.Store(p)
}

// pollReg returns the connection's registration with the poller, or nil
// if it never had one: a connection that cannot park carries none.
func (c *Conn) pollReg() *pollLink { return c.poll.Load() }

// detachPoller takes the socket out of the poller. It must run before the
// socket is closed: a closed descriptor's number is soon reused by another
// connection.
func (c *Conn) detachPoller() {
	if l := c.pollReg(); l != nil {
		if p := l.poller.Load(); p != nil {
			p.remove(c)
		}
	}
}

// polled reports whether the event loop may park.
func (c *Conn) polled() bool {
	l := c.pollReg()
	return l != nil && l.poller.Load() != nil
}

// awaitMessage is the polled event loop's wait for the next message to
// start: a blocking read that the sweep may interrupt. It returns idle when
// the sweep did, and the loop should park.
func (c *Conn) awaitMessage() (idle bool, err error) {
	if err := c.beforeWait(); err != nil {
		return false, err
	}
	c.pollReg().mu.Lock()
	c.pollReg().waiting = true
	c.pollReg().mu.Unlock()
	n, err := c.readNet()
	c.pollReg().mu.Lock()
	c.pollReg().waiting = false
	interrupted := c.pollReg().interrupted
	c.pollReg().interrupted = false
	c.pollReg().mu.Unlock()
	if interrupted {
		c.netConn.SetReadDeadline(time.Time{})
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			return true, nil
		}
	}
	c.pollReg().active.Store(true)
	return false, c.filled(n, err)
}

// sweep is called by the poller's sweep: a loop that waited for a message
// since the previous sweep and got none is told to park.
func (c *Conn) sweep() {
	if c.pollReg().active.Swap(false) {
		return
	}
	c.pollReg().mu.Lock()
	if c.pollReg().waiting && !c.pollReg().interrupted {
		c.pollReg().interrupted = true
		c.netConn.SetReadDeadline(aLongTimeAgo)
	}
	c.pollReg().mu.Unlock()
}

// parkLoop hands the idle loop to the poller and reports whether the
// calling goroutine must now leave it (another may already run it). False
// means the connection is leaving the poller (it is being closed) and the
// caller should go on running the loop.
func (c *Conn) parkLoop() bool {
	c.pollReg().state.Store(loopParked)
	if c.pollReg().poller.Load().arm(c) {
		return true
	}
	// Not armed: take the loop back unless finish already woke it.
	return !c.pollReg().state.CompareAndSwap(loopParked, loopRunning)
}

// wakeLoop starts a parked loop again on a new goroutine. The poller calls
// it when the socket has bytes (or has hung up), finish when the
// connection has ended, so that OnClose runs.
func (c *Conn) wakeLoop() {
	if c.pollReg().state.CompareAndSwap(loopParked, loopRunning) {
		go c.serveEvents()
	}
}
