//go:build linux && !evloop_portable

package evloop

import "time"

// wheelSlots is the number of slots of a timer wheel: with the default
// resolution it spans 25.6s; a later deadline waits in the last slot and
// moves on when that slot comes round.
const wheelSlots = 256

// wheel is a loop's hashed timer wheel. A connection is in at most one
// slot at a time in effect: moving its deadline later leaves it where it
// is (it moves on when its slot comes round, at most once per turn), and
// moving it earlier adds an entry in the earlier slot, which makes the old
// one stale (its wheelAt no longer matches). So a timeout reset on every
// message costs no wheel work.
type wheel struct {
	res   time.Duration
	start time.Time
	now   int32 // the last tick processed
	slots [wheelSlots][]*Conn
	count int // entries in the slots, stale ones included
}

func (w *wheel) init(res time.Duration) {
	w.res = res
	w.start = time.Now()
}

func (w *wheel) tick() int32 { return int32(time.Since(w.start) / w.res) }

// waitMillis is epoll_wait's timeout: until the next tick, or forever
// when the wheel is empty.
func (w *wheel) waitMillis() int {
	if w.count == 0 {
		return -1
	}
	next := w.start.Add(time.Duration(w.now+1) * w.res)
	ms := (time.Until(next) + time.Millisecond - 1) / time.Millisecond
	return int(max(ms, 0))
}

// nextTick returns the time of the next tick.
func (w *wheel) nextTick() time.Time {
	return w.start.Add(time.Duration(w.now+1) * w.res)
}

func (w *wheel) schedule(c *Conn, d time.Duration) {
	if w.count == 0 {
		w.now = w.tick() // the wheel was idle: catch up without walking it
	}
	// The first tick at or after now+d: counting from the current tick
	// instead would fire up to one resolution early.
	at := int32((time.Since(w.start) + d + w.res - 1) / w.res)
	if at <= w.now {
		at = w.now + 1
	}
	c.deadline = at
	if c.wheelAt != 0 && c.wheelAt <= at {
		return // its entry comes round first and moves it on
	}
	w.insert(c, at)
}

func (w *wheel) insert(c *Conn, at int32) {
	if at-w.now >= wheelSlots {
		at = w.now + wheelSlots - 1
	}
	c.wheelAt = at // >= 1, since at > w.now >= 0
	i := at % wheelSlots
	w.slots[i] = append(w.slots[i], c)
	w.count++
}

// advance processes the slots up to now: expires the connections whose
// deadline has come and moves the others on.
func (w *wheel) advance(l *loop) {
	if w.count == 0 {
		return
	}
	now := w.tick()
	for w.now < now {
		w.now++
		i := w.now % wheelSlots
		list := w.slots[i]
		w.slots[i] = nil
		w.count -= len(list)
		for _, c := range list {
			if c.wheelAt != w.now || c.fd < 0 {
				continue // stale, or closed
			}
			c.wheelAt = 0
			switch {
			case c.deadline == 0:
			case c.deadline <= w.now:
				c.deadline = 0
				c.mu.Lock()
				if c.reason == reasonNone {
					c.reason = reasonTimeout
				}
				c.mu.Unlock()
				l.closeConn(c, ErrTimeout)
			default:
				w.insert(c, c.deadline)
			}
		}
		if w.count == 0 {
			w.now = now
			break
		}
	}
}
