package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// sub is one room subscriber on this node, for presence events.
type sub struct{ deliver func(chat.Delivery) }

// Publish implements chat.Engine. The records are sent together and each
// counts as accepted only once JetStream acknowledged storing it (for R3: on
// a majority of the servers).
func (e *Engine) Publish(room string, recs []*chat.Record) []error {
	errs := make([]error, len(recs))
	failed := false
	fail := func(i int, err error) {
		errs[i], failed = err, true
		e.Metrics.PublishErrors.Add(1)
	}
	if err := e.connected(); err != nil {
		for i := range recs {
			fail(i, err)
		}
		return errs
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, len(recs))
	for i, rec := range recs {
		data, err := json.Marshal(rec)
		if err == nil {
			futures[i], err = e.js.PublishAsync(subject(room), data)
		}
		if err != nil {
			fail(i, unavailable(err))
		}
	}
	timeout := time.NewTimer(e.cfg.OpTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			recs[i].ID = ack.Sequence
			e.Metrics.Published.Add(1)
			e.Metrics.latency.Observe(time.Since(start).Seconds())
		case err := <-f.Err():
			fail(i, unavailable(err))
		case <-timeout.C:
			// The outcome is unknown; the sender is told it was not
			// accepted, and the README says that it may still appear.
			fail(i, unavailable(errors.New("no acknowledgement from JetStream in time")))
			timeout.Reset(0)
		}
	}
	if !failed {
		return nil
	}
	return errs
}

// Subscribe implements chat.Engine with an ordered consumer on the room's
// subject starting after the stream's last sequence: JetStream delivers
// every later message of the room, in sequence order, and recreates the
// consumer from where it was after a reconnection.
func (e *Engine) Subscribe(room string, deliver func(chat.Delivery)) (*chat.Subscription, error) {
	if err := e.connected(); err != nil {
		return nil, err
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	info, err := e.stream.Info(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	pos := info.State.LastSeq
	cons, err := e.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject(room)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    pos + 1,
	})
	if err != nil {
		return nil, unavailable(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		var rec chat.Record
		if err := json.Unmarshal(m.Data(), &rec); err != nil {
			e.log.Warn("undecodable message in stream", "seq", meta.Sequence.Stream, "err", err)
			return
		}
		rec.ID, rec.Room = meta.Sequence.Stream, room
		e.Metrics.Delivered.Add(1)
		deliver(chat.Delivery{Kind: chat.DeliverMessage, Rec: &rec})
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		e.log.Debug("room feed", "room", room, "err", err)
	}))
	if err != nil {
		return nil, unavailable(err)
	}
	s := &sub{deliver: deliver}
	e.mu.Lock()
	if e.subs[room] == nil {
		e.subs[room] = map[*sub]struct{}{}
	}
	e.subs[room][s] = struct{}{}
	var present []chat.Member
	for _, en := range e.cache {
		if en.Room == room && en.Node != e.node {
			present = append(present, en.Member)
		}
	}
	e.mu.Unlock()
	return &chat.Subscription{Pos: pos, Present: present, Stop: func() {
		cc.Stop()
		e.mu.Lock()
		delete(e.subs[room], s)
		if len(e.subs[room]) == 0 {
			delete(e.subs, room)
		}
		e.mu.Unlock()
	}}, nil
}

// History implements chat.Engine: an ordered consumer on the room's
// subject from since+1 to upto (a subject holds at most the stream's
// per-subject limit), keeping the newest limit messages.
func (e *Engine) History(room string, since, upto uint64, limit int) ([]chat.Record, error) {
	if limit <= 0 || upto <= since {
		return nil, nil
	}
	if err := e.connected(); err != nil {
		return nil, err
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	last, err := e.stream.GetLastMsgForSubject(ctx, subject(room))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil // no history at all
	}
	if err != nil {
		return nil, unavailable(err)
	}
	end := min(upto, last.Sequence)
	if end <= since {
		return nil, nil
	}
	cons, err := e.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject(room)},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       since + 1,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return nil, unavailable(err)
	}
	var out []chat.Record
	for done := false; !done; {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, unavailable(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil || meta.Sequence.Stream > end {
				done = true
				continue
			}
			var rec chat.Record
			if json.Unmarshal(m.Data(), &rec) == nil {
				rec.ID, rec.Room = meta.Sequence.Stream, room
				out = append(out, rec)
			}
			if meta.Sequence.Stream == end {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, unavailable(err)
		}
		if n == 0 {
			break // the rest was removed by the per-subject limit meanwhile
		}
		if len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// Rooms implements chat.Engine: rooms with history (as of the last
// heartbeat) or with users on any node.
func (e *Engine) Rooms() ([]chat.RoomInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	users := map[string]int{}
	for _, r := range e.rooms {
		users[r] = 0
	}
	for _, en := range e.cache {
		users[en.Room]++
	}
	out := make([]chat.RoomInfo, 0, len(users))
	for r, n := range users {
		out = append(out, chat.RoomInfo{Name: r, Users: n})
	}
	return out, nil
}

func (e *Engine) refreshRooms() {
	if e.connected() != nil {
		return
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	info, err := e.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+">"))
	if err != nil {
		return
	}
	rooms := make([]string, 0, len(info.State.Subjects))
	for s := range info.State.Subjects {
		rooms = append(rooms, strings.TrimPrefix(s, SubjectPrefix))
	}
	e.mu.Lock()
	e.rooms = rooms
	e.mu.Unlock()
}
