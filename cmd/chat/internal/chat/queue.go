package chat

import "sync"

// sendQueue is a client's outgoing queue. Producers (room goroutines, the
// client's own reader) never block on it: push fails when the queue is full,
// which is how a slow consumer is detected without stalling a room.
type sendQueue struct {
	mu    sync.Mutex
	items []*Outgoing
	limit int // 0: unlimited
	// exempt counts the queued items that came through force (a newcomer's
	// welcome, history replay and presence): they are a bounded burst the
	// server chose to send, not a sign that the client reads slowly, so
	// only the items beyond them count against limit.
	exempt int
	closed bool
	code   int // close code for the writer to send; 0: none
	reason string
	notify chan struct{} // capacity 1: "something changed"
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, notify: make(chan struct{}, 1)}
}

// push appends o. It reports false when the queue is full; a closed queue
// swallows o and reports true because nobody will read it anyway.
func (q *sendQueue) push(o *Outgoing) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if q.limit > 0 && len(q.items)-q.exempt >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, o)
	q.mu.Unlock()
	q.signal()
	return true
}

// pressed reports whether the queue is at least half full: its writer has
// fallen behind.
func (q *sendQueue) pressed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit > 0 && len(q.items)-q.exempt >= q.limit/2
}

func (q *sendQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take moves out everything queued so far; buf is reused to avoid garbage.
func (q *sendQueue) take(buf []*Outgoing) (items []*Outgoing, closed bool, code int, reason string) {
	q.mu.Lock()
	items = append(buf[:0], q.items...)
	clear(q.items)
	q.items = q.items[:0]
	q.exempt = 0
	closed, code, reason = q.closed, q.code, q.reason
	q.mu.Unlock()
	return items, closed, code, reason
}

// close makes further pushes no-ops; items already queued stay for the writer
// to drain when discard is false. code and reason (code 0: none) ask the
// writer for a close frame; only the first close decides them.
func (q *sendQueue) close(discard bool, code int, reason string) {
	q.mu.Lock()
	if !q.closed {
		q.closed, q.code, q.reason = true, code, reason
	}
	if discard {
		clear(q.items)
		q.items = q.items[:0]
		q.exempt = 0
	}
	q.mu.Unlock()
	q.signal()
}

// force appends o whatever the limit, as an exempt item (see exempt).
func (q *sendQueue) force(o *Outgoing) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, o)
		q.exempt++
	}
	q.mu.Unlock()
	q.signal()
}

func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
