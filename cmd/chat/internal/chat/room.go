package chat

import (
	"slices"
	"strings"
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
	members map[*Client]struct{} // owned by run
	refs    int                  // guarded by hub.mu
}

func newRoom(h *Hub, name string) *room {
	return &room{hub: h, name: name, inbox: make(chan op, 1024), members: map[*Client]struct{}{}}
}

// maxBatch bounds how many queued posts share one store transaction.
const maxBatch = 256

func (r *room) run() {
	defer r.hub.roomWG.Done()
	ops := make([]op, 0, maxBatch)
	for first := range r.inbox {
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
				continue
			}
			// Consecutive posts are committed together: one fsync for
			// the lot is what lets a busy room keep up with the disk.
			j := i
			for j < len(ops) && ops[j].kind == opPost {
				j++
			}
			r.commit(ops[i:j])
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
		if h.cfg.Store != nil {
			since := uint64(0)
			if o.hasSince {
				since = o.since
			}
			recs, err := h.cfg.Store.Recent(r.name, since, h.cfg.History)
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
			if o.notify && r.announce() {
				r.broadcast(leaveOut(r.name, o.c.Nick(), h.now()), nil)
			}
		}
		close(o.done)
	case opNick:
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
	if h.cfg.Store != nil {
		if err := h.cfg.Store.Append(r.name, recs); err != nil {
			h.log.Error("storing messages", "room", r.name, "n", len(recs), "err", err)
			h.Metrics.StoreErrors.Add(1)
			for _, p := range posts {
				p.c.send(errorOut("not_stored", "the server could not store your message; it was not sent"))
			}
			return
		}
		h.Metrics.Stored.Add(uint64(len(recs)))
	} else {
		for _, rec := range recs {
			rec.ID = h.seq.Add(1)
		}
	}
	for _, rec := range recs {
		r.broadcast(recordOut(rec), nil)
	}
}

// broadcast queues o for every member but skip. It never blocks: a member
// whose queue is full is disconnected instead.
func (r *room) broadcast(o *Outgoing, skip *Client) {
	for m := range r.members {
		if m != skip {
			m.send(o)
		}
	}
}

func (r *room) announce() bool {
	n := r.hub.cfg.AnnounceMax
	return n == 0 || len(r.members) <= n
}

func (r *room) nicks() []string {
	out := make([]string, 0, len(r.members))
	for m := range r.members {
		out = append(out, m.Nick())
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}

func encodeOut(e *Event) *Outgoing { return &Outgoing{JSON: encodeJSON(e)} }
