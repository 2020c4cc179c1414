package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one connected user. The transport calls Receive, Alive and
// Disconnected from the connection's read goroutine; everything the client
// sends goes through its bounded queue and its own writer goroutine, so a
// slow network never blocks a room. A direct client (ConnectOptions.Direct)
// has neither: its transport never blocks, so a message is written at once
// by whoever sends it, and the transport's queue is the bounded one.
type Client struct {
	id     string // unique connection ID, for presence across nodes
	key    string // ResumeKey of the client's resume token, or ""
	hub    *Hub
	conn   Conn
	json   bool
	remote string
	nick   atomic.Pointer[string]

	room *room // the reader goroutine's; nil after leaving

	verified bool     // the nickname is a signed-in identity
	rooms    []string // rooms the client may join; nil: all
	direct   bool     // no writer: see ConnectOptions.Direct

	q          *sendQueue
	limiter    *tokenBucket
	lastNotice time.Time // last rate-limit notice, reader goroutine only
	lastSeen   atomic.Int64

	ctx        context.Context // ends when the connection is gone
	cancel     context.CancelFunc
	writerDone chan struct{}

	closeOnce sync.Once
	killed    atomic.Bool

	goneOnce sync.Once
}

// Nick returns the client's current nickname.
func (c *Client) Nick() string { return *c.nick.Load() }

func (c *Client) setNick(n string) { c.nick.Store(&n) }

// Alive records that the peer showed a sign of life (a pong or a message).
func (c *Client) Alive() { c.lastSeen.Store(c.hub.cfg.Now().UnixNano()) }

// send queues o; a full queue disconnects the client as a slow consumer.
func (c *Client) send(o *Outgoing) {
	if c.json && o.JSON == nil || !c.json && o.Plain == nil {
		return
	}
	if c.direct {
		c.writeDirect(o)
		return
	}
	if !c.q.push(o) {
		c.hub.Metrics.SlowConsumers.Add(1)
		c.hub.log.Warn("slow consumer disconnected", "nick", c.Nick(), "queue", c.hub.cfg.Queue, "remote", c.remote)
		c.closeWith(ClosePolicyViolation, "send queue overflow: client too slow", false)
	}
}

// batchable reports whether the room may gather the client's broadcasts
// and hand them over together (sendBatch): a direct client whose
// transport takes several messages in one write.
func (c *Client) batchable() bool {
	if !c.direct {
		return false
	}
	_, ok := c.conn.(BatchWriter)
	return ok
}

// sendBatch sends os to a direct client in one write, as send would one by
// one.
func (c *Client) sendBatch(os []*Outgoing) {
	if len(os) == 0 || c.killed.Load() || c.ctx.Err() != nil {
		return
	}
	ps := make([]*Payload, 0, len(os))
	for _, o := range os {
		if c.json && o.JSON == nil || !c.json && o.Plain == nil {
			continue
		}
		ps = append(ps, c.payload(o))
	}
	if len(ps) == 0 {
		return
	}
	c.directResult(c.conn.(BatchWriter).WriteTexts(context.Background(), ps), len(ps))
}

// force queues o even past the queue limit. It is for the bounded burst a
// client gets on joining (welcome, history, presence), which must not count
// as slowness.
func (c *Client) force(o *Outgoing) {
	if c.json && o.JSON == nil || !c.json && o.Plain == nil {
		return
	}
	if c.direct {
		// The transport's bound is in bytes and sized to take the
		// joining burst too (see the server's sizing of it).
		c.writeDirect(o)
		return
	}
	c.q.force(o)
}

// writeDirect writes o at once for a direct client. The transport never
// blocks; an overflow of its queue has already dropped the connection, and
// the end comes back through Disconnected.
func (c *Client) writeDirect(o *Outgoing) {
	if c.killed.Load() || c.ctx.Err() != nil {
		return
	}
	c.directResult(c.conn.WriteText(context.Background(), c.payload(o)), 1)
}

// directResult accounts for a direct write of n messages.
func (c *Client) directResult(err error, n int) {
	h := c.hub
	switch {
	case err == nil:
		h.Metrics.MessagesOut.Add(uint64(n))
	case errors.Is(err, ErrSlowConsumer):
		if c.killed.CompareAndSwap(false, true) {
			h.Metrics.SlowConsumers.Add(1)
			h.log.Warn("slow consumer disconnected: send queue overflow", "nick", c.Nick(), "remote", c.remote)
		}
	case errors.Is(err, ErrConnClosing):
		// The closing handshake is under way; the transport ends it.
	default:
		h.log.Debug("write failed", "nick", c.Nick(), "err", err)
		c.conn.Abort()
	}
}

// closeWith asks the writer to send a close frame with code and reason, after
// the queued messages when drain is true, or at once, dropping them.
func (c *Client) closeWith(code int, reason string, drain bool) {
	c.closeOnce.Do(func() {
		if !drain {
			c.killed.Store(true)
		}
		if c.direct {
			// What was written is queued in the transport before the
			// close frame: it drains by itself.
			c.conn.Close(code, reason)
			return
		}
		c.q.close(!drain, code, reason)
	})
}

func (c *Client) writeLoop() {
	h := c.hub
	defer h.wg.Done()
	defer close(c.writerDone)
	var tick <-chan time.Time
	if h.cfg.PingInterval > 0 {
		t := time.NewTicker(h.cfg.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	var lastPing int64
	var buf []*Outgoing
	var batch []*Payload // what one WriteTexts sends, reused
	for {
		select {
		case <-c.q.notify:
		case <-c.ctx.Done():
			return
		case <-tick:
			if lastPing != 0 && c.lastSeen.Load() < lastPing {
				h.Metrics.DeadPeers.Add(1)
				h.log.Info("dropping dead peer", "nick", c.Nick(), "remote", c.remote)
				c.conn.Abort()
				return
			}
			lastPing = h.cfg.Now().UnixNano()
			if err := c.withTimeout(c.conn.Ping); err != nil {
				c.writeFailed(err)
				return
			}
			continue
		}
		items, closed, code, reason := c.q.take(buf)
		// One deadline covers what was taken in one go: a timer per
		// message would cost more than the write to a fast client.
		wctx, wcancel := c.ctx, context.CancelFunc(func() {})
		if d := h.cfg.WriteTimeout; d > 0 && len(items) > 0 {
			wctx, wcancel = context.WithTimeout(c.ctx, d)
		}
		if bw, ok := c.conn.(BatchWriter); ok && len(items) > 1 {
			batch = batch[:0]
			for _, o := range items {
				batch = append(batch, c.payload(o))
			}
			clear(items)
			items = items[:0] // all of them are in batch
			if c.killed.Load() || c.ctx.Err() != nil {
				batch = batch[:0]
			}
			if len(batch) > 0 {
				if err := bw.WriteTexts(wctx, batch); err != nil {
					c.writeTimedOut(wctx)
					wcancel()
					c.writeFailed(err)
					return
				}
				h.Metrics.MessagesOut.Add(uint64(len(batch)))
			}
			clear(batch)
		}
		for i, o := range items {
			if c.killed.Load() || c.ctx.Err() != nil {
				break
			}
			err := c.conn.WriteText(wctx, c.payload(o))
			if err != nil {
				c.writeTimedOut(wctx)
				wcancel()
				c.writeFailed(err)
				return
			}
			h.Metrics.MessagesOut.Add(1)
			items[i] = nil
		}
		wcancel()
		buf = items[:0]
		if closed {
			if code != 0 {
				c.conn.Close(code, reason)
			}
			return
		}
	}
}

// payload is what o is for this client: plain text or JSON.
func (c *Client) payload(o *Outgoing) *Payload {
	if c.json {
		return o.JSON
	}
	return o.Plain
}

// writeTimedOut counts a write that failed on -write-timeout: the peer
// does not read fast enough, the other way a slow consumer shows (an
// overflowed queue, counted in send, kills first).
func (c *Client) writeTimedOut(wctx context.Context) {
	h := c.hub
	if errors.Is(wctx.Err(), context.DeadlineExceeded) && !c.killed.Load() {
		h.Metrics.SlowConsumers.Add(1)
		h.log.Warn("slow consumer disconnected: write timed out", "nick", c.Nick(), "timeout", h.cfg.WriteTimeout, "remote", c.remote)
	}
}

// writeFailed ends the writer after a failed write or ping. A connection
// that failed drops its TCP connection; one that is closing (the peer sent
// its close frame while a write was due) is left to the transport, which
// is answering that close frame: an abort here would cut the reply off.
func (c *Client) writeFailed(err error) {
	if errors.Is(err, ErrConnClosing) {
		c.hub.log.Debug("writer stopped: connection closing", "nick", c.Nick())
		return
	}
	c.hub.log.Debug("write failed", "nick", c.Nick(), "err", err)
	c.conn.Abort()
}

func (c *Client) withTimeout(f func(context.Context) error) error {
	ctx := c.ctx
	if d := c.hub.cfg.WriteTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return f(ctx)
}

// Receive handles one text message from the peer.
func (c *Client) Receive(data []byte) {
	h := c.hub
	c.Alive()
	h.Metrics.MessagesIn.Add(1)
	if c.ctx.Err() != nil || c.killed.Load() {
		return
	}
	text := string(data)
	if c.json {
		var in incoming
		if err := json.Unmarshal(data, &in); err != nil {
			c.send(errorOut("bad_request", "not a JSON event: "+err.Error()))
			return
		}
		switch in.Type {
		case "message":
			text = in.Text
		case "rooms", "who":
			// Requests a client makes without a visible command.
			text = "/" + in.Type
		default:
			c.send(errorOut("bad_request", fmt.Sprintf("unknown event type %q", in.Type)))
			return
		}
	}
	if max := h.cfg.MaxMessage; max > 0 && len(text) > max {
		h.Metrics.TooBig.Add(1)
		c.send(errorOut("too_big", fmt.Sprintf("message of %d bytes refused: the limit is %d bytes", len(text), max)))
		return
	}
	now := h.cfg.Now()
	if !c.limiter.allow(now) {
		h.Metrics.RateLimited.Add(1)
		// One notice per second is enough to explain; more would itself
		// flood the queue of someone who is already flooding.
		if now.Sub(c.lastNotice) >= time.Second {
			c.lastNotice = now
			c.send(errorOut("rate_limited", fmt.Sprintf("slow down: at most %g messages per second (burst %d); message dropped", h.cfg.Rate, c.limiter.burstInt())))
		}
		return
	}
	if c.json && text == "" {
		c.send(errorOut("bad_request", "empty message"))
		return
	}
	c.command(text)
}

// ReceiveBinary refuses a binary message: the chat is text only.
func (c *Client) ReceiveBinary() {
	c.Alive()
	c.hub.Metrics.MessagesIn.Add(1)
	c.send(errorOut("unsupported", "binary messages are not supported; send text"))
}

func (c *Client) post(text string, action bool) {
	if c.room == nil {
		return
	}
	rec := &Record{Room: c.room.name, Nick: c.Nick(), Text: text, Action: action, Time: c.hub.now()}
	c.room.inbox <- op{kind: opPost, c: c, rec: rec}
}

// join moves the client into the named room, leaving its current one.
func (c *Client) join(name string, since uint64, hasSince bool) error {
	r, err := c.hub.acquire(name)
	if err != nil {
		return err
	}
	c.leave(true)
	c.room = r
	done := make(chan struct{})
	r.inbox <- op{kind: opJoin, c: c, since: since, hasSince: hasSince, done: done}
	<-done
	return nil
}

func (c *Client) leave(notify bool) {
	r := c.room
	if r == nil {
		return
	}
	done := make(chan struct{})
	r.inbox <- op{kind: opLeave, c: c, notify: notify, done: done}
	<-done
	c.hub.release(r)
	c.room = nil
}

// Disconnected ends the client: it leaves its room (the others get the leave
// notice), frees its nickname and stops its writer. Calling it more than once
// is harmless.
func (c *Client) Disconnected() {
	c.goneOnce.Do(func() {
		c.q.close(true, 0, "")
		c.cancel()
		c.leave(true)
		c.hub.unregister(c)
		c.hub.wg.Done()
		c.hub.log.Debug("disconnected", "nick", c.Nick(), "remote", c.remote)
	})
}

func (t *tokenBucket) burstInt() int { return int(t.burst) }

const helpText = "commands: /nick NAME (change nickname), /me ACTION, /who (who is here), " +
	"/rooms (list rooms), /join ROOM (switch room), /help; start a message with // to send a literal /"

// command runs text as a command when it starts with "/", else posts it.
func (c *Client) command(text string) {
	if !strings.HasPrefix(text, "/") {
		c.post(text, false)
		return
	}
	if strings.HasPrefix(text, "//") {
		c.post(text[1:], false)
		return
	}
	name, arg, _ := strings.Cut(text[1:], " ")
	arg = strings.TrimSpace(arg)
	h := c.hub
	switch strings.ToLower(name) {
	case "me":
		if arg == "" {
			c.send(errorOut("usage", "usage: /me ACTION"))
			return
		}
		c.post(arg, true)
	case "nick":
		if c.verified {
			c.send(errorOut("nick_refused", "you are signed in as "+c.Nick()+"; your name comes from your sign-in"))
			return
		}
		if arg == "" {
			c.send(errorOut("usage", "usage: /nick NAME"))
			return
		}
		room := ""
		if c.room != nil {
			room = c.room.name
		}
		old, err := h.rename(c, arg, room)
		if errors.Is(err, ErrUnavailable) {
			c.send(errorOut("unavailable", "nickname not changed: "+err.Error()))
			return
		}
		if err != nil {
			c.send(errorOut("nick_refused", err.Error()))
			return
		}
		if old != arg && c.room != nil {
			c.room.inbox <- op{kind: opNick, c: c, old: old, new: arg}
		}
	case "who":
		if c.room != nil {
			c.room.inbox <- op{kind: opWho, c: c}
		}
	case "rooms":
		var b strings.Builder
		b.WriteString("rooms:")
		for _, r := range h.Rooms() {
			fmt.Fprintf(&b, " %s (%d)", r.Name, r.Users)
		}
		if c.json {
			c.send(encodeOut(&Event{Type: "rooms", Rooms: h.Rooms()}))
		} else {
			c.send(infoOut(b.String()))
		}
	case "join":
		room := strings.ToLower(arg)
		if err := ValidRoom(room); err != nil {
			c.send(errorOut("bad_room", err.Error()))
			return
		}
		if c.room != nil && c.room.name == room {
			c.send(infoOut("you are already in " + room))
			return
		}
		if c.rooms != nil && !slices.Contains(c.rooms, room) {
			c.send(errorOut("forbidden", fmt.Sprintf("your sign-in does not allow room %q (it allows: %s)", room, strings.Join(c.rooms, ", "))))
			return
		}
		// Other nodes learn of the move before this one makes it.
		if err := h.eng.Update(Member{Conn: c.id, Nick: c.Nick(), Room: room, Key: c.key}, c.Nick()); err != nil {
			c.send(errorOut("unavailable", "you did not move to "+room+": "+err.Error()))
			return
		}
		if err := c.join(room, 0, false); err != nil {
			c.send(errorOut("unavailable", err.Error()))
		}
	case "help":
		c.send(infoOut(helpText))
	default:
		c.send(errorOut("unknown_command", fmt.Sprintf("unknown command /%s; try /help", name)))
	}
}

func (h *Hub) limits() *Limits {
	return &Limits{MaxMessage: h.cfg.MaxMessage, Rate: h.cfg.Rate, Burst: max(h.cfg.Burst, 1)}
}
