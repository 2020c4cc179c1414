package cluster

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

func (e *Engine) applyNode(u jetstream.KeyValueEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u.Operation() == jetstream.KeyValuePut {
		e.lastSeen[u.Key()] = time.Now()
	}
}

// heartbeatLoop announces this node, frees dead nodes' nicknames and
// repairs this node's own entries after an outage.
func (e *Engine) heartbeatLoop() {
	defer e.done.Done()
	t := time.NewTicker(e.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		if e.connected() != nil {
			continue
		}
		ctx, cancel := e.opCtx()
		if _, err := e.nodes.Put(ctx, e.node, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
			e.log.Debug("heartbeat", "err", err)
		}
		cancel()
		e.reap()
		e.repair()
		e.refreshRooms()
	}
}

type doomed struct {
	key string
	rev uint64
}

// reap deletes the entries of nodes silent for DeadAfter. Every live node
// does it; the revision check makes the deletes idempotent.
func (e *Engine) reap() {
	now := time.Now()
	e.mu.Lock()
	dead := map[string]bool{}
	for n, seen := range e.lastSeen {
		if n != e.node && now.Sub(seen) > e.cfg.DeadAfter {
			dead[n] = true
		}
	}
	var del []doomed
	for k, en := range e.cache {
		if dead[en.Node] {
			del = append(del, doomed{k, en.rev})
		}
	}
	for n := range dead {
		delete(e.lastSeen, n)
	}
	e.mu.Unlock()
	for n := range dead {
		e.log.Info("node presumed dead: freeing its nicknames", "node", n)
	}
	e.deleteAll(del)
	e.Metrics.Reaped.Add(uint64(len(del)))
}

// repair deletes this node's entries that no client holds (a release that
// failed during an outage) and recreates the ones its clients hold that
// other nodes reaped while this one was cut off.
func (e *Engine) repair() {
	now := time.Now()
	var del []doomed
	var missing []chat.Member
	e.mu.Lock()
	for k, en := range e.cache {
		if en.Node == e.node {
			if c, ok := e.claims[k]; !ok || c.m.Conn != en.Conn {
				del = append(del, doomed{k, en.rev})
			}
		}
	}
	for k, c := range e.claims {
		if e.cache[k] == nil && now.Sub(c.at) > 2*e.cfg.Heartbeat {
			missing = append(missing, c.m)
		}
	}
	e.mu.Unlock()
	e.deleteAll(del)
	for _, m := range missing {
		ctx, cancel := e.opCtx()
		_, err := e.nicks.Create(ctx, key(m.Nick), e.value(m))
		cancel()
		if err != nil && taken(err) {
			e.log.Warn("nickname lost while cut off from NATS", "nick", m.Nick)
		}
	}
}

func (e *Engine) deleteAll(del []doomed) {
	for _, d := range del {
		ctx, cancel := e.opCtx()
		err := e.nicks.Delete(ctx, d.key, jetstream.LastRevision(d.rev))
		cancel()
		if err != nil && !taken(err) {
			e.log.Debug("deleting entry", "err", err)
		}
	}
}
