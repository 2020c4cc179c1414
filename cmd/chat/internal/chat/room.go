package chat

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
)

type opKind uint8

const (
	opJoin opKind = iota
	opLeave
	opPost
	opNick
	opWho
)

// op is one request to a room. Everything that changes a room or sends to all
// of it goes through the room's goroutine, so joins, posts and leaves are
// seen by every member in one order, and a joiner's history replay and the
// live stream meet without a gap or a duplicate.
type op struct {
	kind     opKind
	c        *Client
	rec      *Record // opPost
	old, new string  // opNick
	since    uint64  // opJoin
	hasSince bool
	notify   bool          // opLeave: tell the others
	done     chan struct{} // closed when handled (join, leave)
}

type room struct {
	hub     *Hub
	name    string
	inbox   chan op
	members map[*Client]struct{} // this node's clients; owned by run
	refs    int                  // guarded by hub.mu
	feed    feed                 // the engine's deliveries
	sub     *Subscription        // nil until Subscribe succeeds; owned by run
	pos     uint64               // the last message ID delivered; owned by run
	// present is everyone in the room on every node, by connection ID:
	// this node's members and what the engine reported of the others.
	present map[string]string

	// pressure says that a broadcast of the current drain found a
	// member's queue half full: the room lets the writers run before it
	// takes more (see drain). Owned by run.
	pressure bool

	// pending holds, for the direct clients (the event-loop backend),
	// what one drain broadcast to each, sent as one batch when the drain
	// ends: a busy room then costs a system call per member per drain,
	// not per message. Owned by run.
	pending map[*Client][]*Outgoing
}

func newRoom(h *Hub, name string) *room {
	return &room{hub: h, name: name, inbox: make(chan op, 1024), members: map[*Client]struct{}{},
		present: map[string]string{}, feed: feed{notify: make(chan struct{}, 1)}}
}

// maxBatch bounds how many queued posts share one store transaction.
const maxBatch = 256

func (r *room) run() {
	defer r.hub.roomWG.Done()
	r.subscribe()
	defer func() {
		if r.sub != nil {
			r.sub.Stop()
		}
	}()
	ops := make([]op, 0, maxBatch)
	for {
		var first op
		select {
		case o, ok := <-r.inbox:
			if !ok {
				return
			}
			first = o
		case <-r.feed.notify:
			r.drain()
			continue
		}
		ops = append(ops[:0], first)
	drain:
		for len(ops) < maxBatch {
			select {
			case o, ok := <-r.inbox:
				if !ok {
					break drain
				}
				ops = append(ops, o)
			default:
				break drain
			}
		}
		for i := 0; i < len(ops); {
			if ops[i].kind != opPost {
				r.handle(ops[i])
				i++
				r.drain()
				continue
			}
			// Consecutive posts are committed together: one fsync for
			// the lot is what lets a busy room keep up with the disk.
			j := i
			for j < len(ops) && ops[j].kind == opPost {
				j++
			}
			r.commit(ops[i:j])
			// A local engine has delivered the batch already: it goes
			// out before the next op, as if the room had sent it itself.
			r.drain()
			i = j
		}
		clear(ops)
	}
}

func (r *room) handle(o op) {
	h := r.hub
	switch o.kind {
	case opJoin:
		c := o.c
		if c.json {
			c.force(encodeOut(&Event{Type: "welcome", Room: r.name, Nick: c.Nick(),
				Limits: h.limits(), Rooms: h.Rooms(), Resumed: o.hasSince, Since: o.since, SignedIn: c.verified}))
		}
		if r.sub == nil {
			r.subscribe()
		}
		if r.sub == nil {
			c.force(errorOut("unavailable", "this room's messages cannot be received now: the message service is unavailable"))
		}
		if h.cfg.History > 0 {
			since := uint64(0)
			if o.hasSince {
				since = o.since
			}
			// Messages above pos are on their way through the feed: the
			// replay stops there so that none is shown twice.
			recs, err := h.eng.History(r.name, since, r.pos, h.cfg.History)
			if err != nil {
				h.log.Error("reading history", "room", r.name, "err", err)
				c.force(errorOut("history_unavailable", "history could not be read"))
			}
			if len(recs) > 0 {
				c.force(historyStartOut(len(recs)))
			}
			for i := range recs {
				c.force(recordOut(&recs[i]))
			}
			if len(recs) > 0 {
				c.force(historyEndOut)
			}
		}
		r.members[c] = struct{}{}
		r.present[c.id] = c.Nick()
		if c.json {
			c.force(presenceOut(r.name, r.nicks()))
		}
		if r.announce() {
			r.broadcast(joinOut(r.name, c.Nick(), h.now()), c)
		}
		close(o.done)
	case opLeave:
		if _, ok := r.members[o.c]; ok {
			delete(r.members, o.c)
			delete(r.present, o.c.id)
			if o.notify && r.announce() {
				r.broadcast(leaveOut(r.name, o.c.Nick(), h.now()), nil)
			}
		}
		close(o.done)
	case opNick:
		if _, ok := r.present[o.c.id]; ok {
			r.present[o.c.id] = o.new
		}
		r.broadcast(nickOut(r.name, o.old, o.new, h.now()), nil)
	case opWho:
		o.c.send(presenceOut(r.name, r.nicks()))
	}
}

// commit stores posts (when there is history) and only then broadcasts them,
// so nobody ever sees a message that a crash could take back.
func (r *room) commit(posts []op) {
	h := r.hub
	recs := make([]*Record, len(posts))
	for i := range posts {
		recs[i] = posts[i].rec
	}
	errs := h.eng.Publish(r.name, recs)
	if errs == nil {
		if h.stores {
			h.Metrics.Stored.Add(uint64(len(recs)))
		}
		return
	}
	logged := false
	for i, err := range errs {
		if err == nil {
			h.Metrics.Stored.Add(1)
			continue
		}
		h.Metrics.StoreErrors.Add(1)
		if !logged {
			h.log.Error("storing messages", "room", r.name, "n", len(recs), "err", err)
			logged = true
		}
		if errors.Is(err, ErrUnavailable) {
			posts[i].c.send(errorOut("unavailable", "your message was not sent: the message service is unavailable; try again later"))
		} else {
			posts[i].c.send(errorOut("not_stored", "the server could not store your message; it was not sent"))
		}
	}
}

// subscribe asks the engine for the room's feed; on failure the room stays
// without one and the next join tries again.
func (r *room) subscribe() {
	sub, err := r.hub.eng.Subscribe(r.name, r.feed.push)
	if err != nil {
		r.hub.log.Error("subscribing to room", "room", r.name, "err", err)
		return
	}
	r.sub, r.pos = sub, max(r.pos, sub.Pos)
	for _, m := range sub.Present {
		r.present[m.Conn] = m.Nick
	}
}

// drain applies what the engine delivered: messages go to every member,
// and other nodes' presence changes update the list and are announced.
func (r *room) drain() {
	now := r.hub.now()
	if r.pending == nil {
		r.pending = make(map[*Client][]*Outgoing)
	}
	defer r.yieldToWriters()
	defer r.flushPending()
	for _, d := range r.feed.take() {
		switch d.Kind {
		case DeliverMessage:
			if d.Rec.ID <= r.pos {
				continue // already replayed or delivered
			}
			r.pos = d.Rec.ID
			r.broadcast(recordOut(d.Rec), nil)
		case DeliverJoin:
			if _, ok := r.present[d.User.Conn]; ok {
				continue
			}
			r.present[d.User.Conn] = d.User.Nick
			if r.announce() {
				r.broadcast(joinOut(r.name, d.User.Nick, now), nil)
			}
		case DeliverLeave:
			nick, ok := r.present[d.User.Conn]
			if !ok {
				continue
			}
			delete(r.present, d.User.Conn)
			if r.announce() {
				r.broadcast(leaveOut(r.name, nick, now), nil)
			}
		case DeliverNick:
			old, ok := r.present[d.User.Conn]
			if !ok || old == d.User.Nick {
				continue
			}
			r.present[d.User.Conn] = d.User.Nick
			r.broadcast(nickOut(r.name, old, d.User.Nick, now), nil)
		}
	}
}

// feed is a room's queue of deliveries. The engine pushes without ever
// blocking (a room busy with a slow store must not stall the delivery of
// other rooms); the room goroutine takes everything at once.
type feed struct {
	mu     sync.Mutex
	items  []Delivery
	notify chan struct{} // capacity 1
}

func (f *feed) push(d Delivery) {
	f.mu.Lock()
	f.items = append(f.items, d)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *feed) take() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := f.items
	f.items = nil
	return items
}

// broadcast queues o for every member but skip. It never blocks: a member
// whose queue is full is disconnected instead.
func (r *room) broadcast(o *Outgoing, skip *Client) {
	for m := range r.members {
		if m == skip {
			continue
		}
		if m.batchable() && r.pending != nil {
			r.pending[m] = append(r.pending[m], o)
			continue
		}
		m.send(o)
		if !r.pressure && !m.direct && m.q.pressed() {
			r.pressure = true
		}
	}
}

// yieldToWriters lets the members' writer goroutines run when one of them
// has fallen half a queue behind. On a busy core the room could otherwise
// keep the processor long enough to fill the queue of a member whose peer
// reads promptly, which would then be dropped as slow: yielding once per
// drain gives every runnable writer its turn first, and a member whose
// peer truly does not read still fills its queue and is dropped.
func (r *room) yieldToWriters() {
	if r.pressure {
		r.pressure = false
		runtime.Gosched()
	}
}

// flushPending sends each direct client what the drain broadcast to it.
func (r *room) flushPending() {
	for m, os := range r.pending {
		m.sendBatch(os)
		delete(r.pending, m) // a client that leaves is not kept
	}
}

func (r *room) announce() bool {
	n := r.hub.cfg.AnnounceMax
	return n == 0 || len(r.present) <= n
}

func (r *room) nicks() []string {
	out := make([]string, 0, len(r.present))
	for _, n := range r.present {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}

func encodeOut(e *Event) *Outgoing { return &Outgoing{JSON: encodeJSON(e)} }
