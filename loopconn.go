package websocket

import (
	"sync"
	"sync/atomic"

	"github.com/wsdriver/websocket/internal/evloop"
)

// The event API on the event-loop backend (package eventloop). There the
// connection's bytes come from the loop that read them, pushed, and the
// session turns them into events as they come: no goroutine waits for the
// peer. This file is that transport's glue; the protocol is the session's,
// and the replies, sends and closes go through the same code as on every
// other transport (the network connection is an evloop.NetConn, whose
// writes never block and whose Close is graceful).
//
// Handlers run on the loop (the backend's HandlersOnLoop) or, by default,
// on a goroutine that the connection holds only while it has bytes to
// process: the loop appends them to the connection's queue and, if no
// goroutine is working on it, starts one; the connection stops reading
// while its queue is long, so a handler that blocks pushes back on its own
// peer and holds no other connection.

// loopLink is a connection's state on the event-loop backend.
type loopLink struct {
	c      *Conn
	nc     *evloop.NetConn
	msg    *[]byte     // the message being assembled from several chunks (pooled)
	closed atomic.Bool // OnClose has been called
	inline bool

	// The hand-off to a worker goroutine (not inline).
	working bool // a worker goroutine owns the session
	paused  bool // reading is paused until the queue is worked off
	hasEnd  bool // the transport ended while the worker was busy: ended says how
	mu      sync.Mutex
	queue   *[]byte // bytes waiting for the worker (pooled)
	ended   error
}

// loopQueueHigh is how many bytes may wait for a connection's worker
// before the connection stops reading.
const loopQueueHigh = 256 << 10

// loopBufPool holds the queues and message buffers of busy connections;
// an idle one holds none.
var loopBufPool = sync.Pool{New: func() any { return new([]byte) }}

func getLoopBuf() *[]byte { return loopBufPool.Get().(*[]byte) }

func putLoopBuf(bp *[]byte) {
	if cap(*bp) > maxKeptMessageBuffer {
		return
	}
	*bp = (*bp)[:0]
	loopBufPool.Put(bp)
}

// loopNetConn returns nc as an event-loop connection, if it is one.
func loopNetConn(nc any) *evloop.NetConn {
	l, _ := nc.(*evloop.NetConn)
	return l
}

// startLoopEvents runs the event API on an event-loop connection: OnOpen,
// then the loop feeds the session.
func (c *Conn) startLoopEvents(nc *evloop.NetConn) {
	c.loop = &loopLink{c: c, nc: nc, inline: nc.Inline}
	if fn := c.events.get().open; fn != nil {
		c.callOpen(fn)
	}
	nc.TakeOver(c.loop)
}

// Data and End make loopLink the NetConn's evloop.Sink.
func (l *loopLink) Data(b []byte) { l.c.loopData(b) }
func (l *loopLink) End(err error) { l.c.loopEnded(err) }

// loopData takes bytes from the loop.
func (c *Conn) loopData(b []byte) {
	l := c.loop
	if l.inline {
		c.loopFeed(b)
		return
	}
	l.mu.Lock()
	if l.queue == nil {
		l.queue = getLoopBuf()
	}
	*l.queue = append(*l.queue, b...)
	if len(*l.queue) >= loopQueueHigh && !l.paused {
		l.paused = true
		l.nc.Conn().PauseReading()
	}
	start := !l.working
	l.working = true
	l.mu.Unlock()
	if start {
		l.startWork()
		go l.work()
	}
}

// startWork and endWork count the connection's goroutines for the
// server's Close (NetConn.Work).
func (l *loopLink) startWork() {
	if w := l.nc.Work; w != nil {
		w.Add()
	}
}

func (l *loopLink) endWork() {
	if w := l.nc.Work; w != nil {
		w.Done()
	}
}

// work is the goroutine of a busy connection.
func (l *loopLink) work() {
	defer l.endWork()
	l.c.loopWork()
}

// closeOffLoop is the goroutine that reports the end of an idle
// connection.
func (l *loopLink) closeOffLoop(err error) {
	defer l.endWork()
	l.c.loopClosed(err)
}

// loopEnded takes the end of the transport from the loop. Unless the
// handlers run on the loop, OnClose runs on a goroutine of its own, as
// every handler does in that mode: it may block (a chat announcing the
// departure, say) and must not hold the loop.
func (c *Conn) loopEnded(err error) {
	l := c.loop
	if !l.inline {
		l.mu.Lock()
		if l.working {
			l.ended, l.hasEnd = err, true // the worker reports it after the queue
			l.mu.Unlock()
			return
		}
		l.working = true // no more bytes come: nothing else starts a worker
		l.mu.Unlock()
		l.startWork()
		go l.closeOffLoop(err)
		return
	}
	c.loopClosed(err)
}

// loopWork is a connection's worker: it feeds the session until the queue
// is empty, then lets go of the connection.
func (c *Conn) loopWork() {
	l := c.loop
	var spare *[]byte
	for {
		l.mu.Lock()
		q := l.queue
		if q == nil || len(*q) == 0 {
			l.working = false
			if q != nil {
				putLoopBuf(q)
				l.queue = nil
			}
			resume := l.paused
			l.paused = false
			ended, hasEnd := l.ended, l.hasEnd
			l.mu.Unlock()
			if spare != nil {
				putLoopBuf(spare)
			}
			if resume {
				l.nc.Conn().ResumeReading()
			}
			if hasEnd {
				c.loopClosed(ended)
			}
			return
		}
		if spare == nil {
			spare = getLoopBuf()
		}
		l.queue, spare = spare, q
		l.mu.Unlock()
		c.loopFeed(*spare)
		*spare = (*spare)[:0]
	}
}

// loopFeed turns bytes into events and runs the handlers, as the event
// API's read loop (serveEvents) does on other transports.
func (c *Conn) loopFeed(b []byte) {
	if c.loop.closed.Load() || c.ReadyState() == Closed {
		return
	}
	c.heardFromPeer()
	for {
		n, ev, err := c.sess.feed(b)
		b = b[n:]
		if err != nil {
			c.failProtocol(err)
			c.loopClosed(nil)
			return
		}
		switch ev.kind {
		case eventNone:
			c.sess.release()
			if c.batching.Load() {
				c.endBatch()
			}
			return
		case eventData:
			c.loopMessageChunk(ev, len(b) > 0 || c.sess.pending())
		case eventPing, eventPong:
			c.handleEvent(ev)
		case eventClose:
			c.handleEvent(ev)
			c.loopClosed(nil)
			return
		}
		if c.ReadyState() == Closed {
			// A handler closed the connection, or a write failed.
			c.endBatch()
			c.loopClosed(nil)
			return
		}
	}
}

// loopMessageChunk adds a data event to the message and delivers the
// message when it is complete. more says that further input is at hand,
// so that what the handler sends may wait for the next ones (batching).
func (c *Conn) loopMessageChunk(ev event, more bool) {
	l := c.loop
	var data []byte
	switch {
	case ev.first && ev.fin:
		data = ev.data // the whole message in one chunk
	case ev.first:
		l.msg = getLoopBuf()
		*l.msg = append(*l.msg, ev.data...)
		return
	default:
		*l.msg = append(*l.msg, ev.data...)
		if !ev.fin {
			return
		}
		data = *l.msg
	}
	if !c.borrow {
		data = append(make([]byte, 0, len(data)), data...)
	}
	if more && !c.batching.Load() {
		c.beginBatch()
	}
	c.deliverMessage(c.events.get().message, Message{Type: ev.typ, Data: data})
	if l.msg != nil {
		putLoopBuf(l.msg)
		l.msg = nil
	}
}

// loopClosed runs once the connection is over: the transport ended (err
// from the engine; nil after our own close), or the protocol ended it.
// It finishes the connection if nothing did yet and calls OnClose, once.
func (c *Conn) loopClosed(err error) {
	l := c.loop
	if err != nil {
		c.finish(&CloseError{Code: StatusAbnormalClosure, Reason: err.Error()})
	}
	if c.ReadyState() != Closed {
		return // the closing handshake is still under way
	}
	if !l.closed.CompareAndSwap(false, true) {
		return
	}
	c.sess.close()
	if l.msg != nil {
		putLoopBuf(l.msg)
		l.msg = nil
	}
	c.fireClose()
}
