package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// entry is one value of the nicks bucket: who holds a nickname, where.
type entry struct {
	chat.Member
	Node string `json:"node"`
	rev  uint64
}

// claim is a nickname this node holds for one of its clients, and since
// when (a claim younger than two heartbeats may not be in the cache yet).
type claim struct {
	m  chat.Member
	at time.Time
}

// key is a nickname's bucket key: hex of its lower-case form, because
// nicknames may hold letters that keys may not.
func key(nick string) string { return hex.EncodeToString([]byte(strings.ToLower(nick))) }

func (e *Engine) value(m chat.Member) []byte {
	b, _ := json.Marshal(entry{Member: m, Node: e.node})
	return b
}

// taken says whether a KV error means another holder won.
func taken(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Claim implements chat.Engine with the bucket's atomic create: of two
// nodes creating the same key at once, exactly one succeeds.
func (e *Engine) Claim(m chat.Member) error {
	if err := e.connected(); err != nil {
		return err
	}
	k := key(m.Nick)
	e.mu.Lock()
	// Recorded first, so that the heartbeat loop never takes the new
	// entry for a stale one of this node.
	e.claims[k] = claim{m: m, at: time.Now()}
	e.mu.Unlock()
	ctx, cancel := e.opCtx()
	defer cancel()
	_, err := e.nicks.Create(ctx, k, e.value(m))
	if err != nil && taken(err) {
		err = e.takeOver(ctx, k, m)
	}
	if err != nil {
		e.mu.Lock()
		if c, ok := e.claims[k]; ok && c.m.Conn == m.Conn {
			delete(e.claims, k)
		}
		e.mu.Unlock()
		if taken(err) {
			return chat.ErrNickTaken
		}
		return unavailable(err)
	}
	return nil
}

// takeOver gives k to m when its holder, on another node, has the same
// resume key: the same client came back elsewhere (its node died, or the
// load balancer moved it). The revision check makes it atomic like Create.
func (e *Engine) takeOver(ctx context.Context, k string, m chat.Member) error {
	if m.Key == "" {
		return jetstream.ErrKeyExists
	}
	e.mu.Lock()
	en := e.cache[k]
	e.mu.Unlock()
	if en == nil {
		// The watch has not brought the holder's entry yet (it was made
		// a moment ago on another node: a signed-in user's second tab
		// there); the bucket itself has it.
		kv, err := e.nicks.Get(ctx, k)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return jetstream.ErrKeyExists // freed meanwhile: the caller tries again
			}
			return err
		}
		var v entry
		if json.Unmarshal(kv.Value(), &v) != nil {
			return jetstream.ErrKeyExists
		}
		v.rev = kv.Revision()
		en = &v
	}
	if en.Key != m.Key || en.Node == e.node {
		return jetstream.ErrKeyExists
	}
	rev := en.rev
	_, err := e.nicks.Update(ctx, k, e.value(m), rev)
	return err
}

// Update implements chat.Engine: a new nickname is created before the old
// one is deleted, so the name is never free for someone else in between.
func (e *Engine) Update(m chat.Member, old string) error {
	if err := e.connected(); err != nil {
		return err
	}
	nk, ok := key(m.Nick), key(old)
	if nk != ok {
		if err := e.Claim(m); err != nil {
			return err
		}
		e.release(ok, m.Conn)
		return nil
	}
	e.mu.Lock()
	e.claims[nk] = claim{m: m, at: time.Now()}
	e.mu.Unlock()
	ctx, cancel := e.opCtx()
	defer cancel()
	if _, err := e.nicks.Put(ctx, nk, e.value(m)); err != nil {
		return unavailable(err)
	}
	return nil
}

// Release implements chat.Engine. A failed delete is retried by the
// heartbeat loop, which removes this node's entries that no client holds.
func (e *Engine) Release(m chat.Member) { e.release(key(m.Nick), m.Conn) }

func (e *Engine) release(k, conn string) {
	e.mu.Lock()
	if c, ok := e.claims[k]; ok && c.m.Conn == conn {
		delete(e.claims, k)
	}
	var rev uint64
	en := e.cache[k]
	if en != nil && en.Conn == conn {
		rev = en.rev
	}
	e.mu.Unlock()
	if en != nil && en.Conn != conn {
		return // someone else holds it now (a take-over, or after a reap)
	}
	if e.connected() != nil {
		return
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	// The revision check keeps a delete from removing a claim that someone
	// else made after this one was reaped; with no revision known yet (the
	// watch lags) the delete is unconditional, which is safe because the
	// create has just succeeded for this connection.
	var opts []jetstream.KVDeleteOpt
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := e.nicks.Delete(ctx, k, opts...); err != nil && !taken(err) {
		e.log.Debug("releasing nickname", "err", err)
	}
}

// applyNick turns one change of the nicks bucket into presence events for
// the rooms of this node. Events about this node's own users are not
// delivered: the hub applied them already.
func (e *Engine) applyNick(u jetstream.KeyValueEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := u.Key()
	prev := e.cache[k]
	if u.Operation() != jetstream.KeyValuePut {
		if prev == nil {
			return
		}
		delete(e.cache, k)
		if e.byConn[prev.Conn] == k {
			delete(e.byConn, prev.Conn)
			e.emit(prev.Node, prev.Room, chat.Delivery{Kind: chat.DeliverLeave, User: prev.Member})
		}
		return
	}
	var v entry
	if err := json.Unmarshal(u.Value(), &v); err != nil {
		return
	}
	v.rev = u.Revision()
	if _, ok := e.lastSeen[v.Node]; !ok {
		e.lastSeen[v.Node] = time.Now()
	}
	switch {
	case prev != nil && prev.Conn == v.Conn:
		if prev.Room != v.Room {
			e.emit(v.Node, prev.Room, chat.Delivery{Kind: chat.DeliverLeave, User: prev.Member})
			e.emit(v.Node, v.Room, chat.Delivery{Kind: chat.DeliverJoin, User: v.Member})
		} else if prev.Nick != v.Nick {
			e.emit(v.Node, v.Room, chat.Delivery{Kind: chat.DeliverNick, User: v.Member, Old: prev.Nick})
		}
	default:
		if prev != nil {
			if e.byConn[prev.Conn] == k {
				delete(e.byConn, prev.Conn)
			}
			e.emit(prev.Node, prev.Room, chat.Delivery{Kind: chat.DeliverLeave, User: prev.Member})
		}
		if oldKey, renamed := e.byConn[v.Conn]; renamed && e.cache[oldKey] != nil {
			old := e.cache[oldKey]
			delete(e.cache, oldKey)
			if old.Room == v.Room {
				e.emit(v.Node, v.Room, chat.Delivery{Kind: chat.DeliverNick, User: v.Member, Old: old.Nick})
			} else {
				e.emit(v.Node, old.Room, chat.Delivery{Kind: chat.DeliverLeave, User: old.Member})
				e.emit(v.Node, v.Room, chat.Delivery{Kind: chat.DeliverJoin, User: v.Member})
			}
		} else {
			e.emit(v.Node, v.Room, chat.Delivery{Kind: chat.DeliverJoin, User: v.Member})
		}
	}
	e.cache[k] = &v
	e.byConn[v.Conn] = k
}

// emit hands d to room's subscribers on this node; e.mu is held.
func (e *Engine) emit(node, room string, d chat.Delivery) {
	if node == e.node {
		return
	}
	for s := range e.subs[room] {
		s.deliver(d)
	}
}
