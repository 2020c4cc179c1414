// Package cluster is the chat's multi-node engine: several chat processes
// share their rooms through NATS JetStream. A room's messages are one
// JetStream stream subject, so the stream sequence is the room's total order
// and the message ID on every node; nicknames and presence are a JetStream
// key-value bucket that every node watches; node liveness is a second bucket
// of heartbeats, from which the surviving nodes free a dead node's nicknames.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// Names of what the engine creates in JetStream (shared by all nodes).
const (
	StreamName    = "CHAT_MESSAGES"
	SubjectPrefix = "chat.msg."
	NicksBucket   = "CHAT_NICKS"
	NodesBucket   = "CHAT_NODES"
)

// Config configures a node's engine. Zero durations take the defaults.
type Config struct {
	URLs      string // comma-separated NATS URLs
	Replicas  int    // stream and bucket replicas; 0 means 1
	History   int    // messages kept per room (the stream's per-subject limit); at least 1 is kept
	Heartbeat time.Duration
	// DeadAfter is how long a node may go without a heartbeat before the
	// others free its nicknames and announce its users' departure.
	DeadAfter time.Duration
	// OpTimeout bounds each request to NATS (publish acknowledgement, KV
	// operation) so that a sender learns of an outage promptly.
	OpTimeout time.Duration
	Logger    *slog.Logger
}

// Default timings: a dead node's users are announced gone within
// DefaultDeadAfter + DefaultHeartbeat (plus one round trip).
const (
	DefaultHeartbeat = 2 * time.Second
	DefaultDeadAfter = 10 * time.Second
	DefaultOpTimeout = 5 * time.Second
)

// Engine implements chat.Engine over NATS JetStream. Open returns one.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	node   string
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	nicks  jetstream.KeyValue
	nodes  jetstream.KeyValue

	mu       sync.Mutex
	cache    map[string]*entry            // the nicks bucket, by key
	byConn   map[string]string            // conn -> key, for renames
	subs     map[string]map[*sub]struct{} // room -> this node's subscribers
	claims   map[string]claim             // keys this node holds, by key
	lastSeen map[string]time.Time         // node -> last heartbeat seen (local clock)
	rooms    []string                     // rooms with history, refreshed by the heartbeat loop

	watchers []jetstream.KeyWatcher
	stop     chan struct{}
	done     sync.WaitGroup
	closed   atomic.Bool

	Metrics Metrics
}

// Metrics are the engine's counters, written by WritePrometheus.
type Metrics struct {
	Published     atomic.Uint64
	Delivered     atomic.Uint64 // messages received from room feeds
	PublishErrors atomic.Uint64
	Disconnects   atomic.Uint64
	Reconnects    atomic.Uint64
	Reaped        atomic.Uint64 // nicknames freed for dead nodes
	latency       histogram
}

type entry struct {
	chat.Member
	Node string `json:"node"`
	rev  uint64
}

type claim struct {
	m  chat.Member
	at time.Time
}

type sub struct{ deliver func(chat.Delivery) }

// Open connects to NATS, creates (or updates) the stream and buckets and
// starts watching presence. It fails when NATS cannot be reached.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var id [6]byte
	rand.Read(id[:])
	e := &Engine{
		cfg: cfg, log: cfg.Logger, node: hex.EncodeToString(id[:]),
		cache: map[string]*entry{}, byConn: map[string]string{}, subs: map[string]map[*sub]struct{}{},
		claims: map[string]claim{}, lastSeen: map[string]time.Time{}, stop: make(chan struct{}),
	}
	nc, err := nats.Connect(cfg.URLs,
		nats.Name("chat node "+e.node),
		nats.MaxReconnects(-1),
		// Servers started together with the nodes may not listen yet;
		// setup below waits for them until its context ends.
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		// No buffering while disconnected: a publish then fails at once
		// and its sender is told, instead of a message that might be sent
		// minutes later or never.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			e.Metrics.Disconnects.Add(1)
			e.log.Warn("NATS disconnected", "err", err)
		}),
		// Asynchronous errors (a watcher's consumer lost during an
		// outage and recreated) go to the log, not to stderr.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			e.log.Debug("NATS asynchronous error", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			e.Metrics.Reconnects.Add(1)
			e.log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", cfg.URLs, err)
	}
	e.nc = nc
	if err := e.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	e.done.Add(1)
	go e.heartbeatLoop()
	e.log.Info("cluster engine ready", "node", e.node, "replicas", cfg.Replicas)
	return e, nil
}

// Node returns this node's random ID (as seen in the presence bucket).
func (e *Engine) Node() string { return e.node }

func (e *Engine) setup(ctx context.Context) error {
	js, err := jetstream.New(e.nc)
	if err != nil {
		return err
	}
	e.js = js
	// A NATS cluster that has just started may not have elected its
	// JetStream leaders yet: nodes started with it wait (until ctx ends)
	// instead of failing.
	err = retry(ctx, e.log, "creating stream "+StreamName, func(ctx context.Context) (err error) {
		e.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              StreamName,
			Description:       "chat messages, one subject per room",
			Subjects:          []string{SubjectPrefix + ">"},
			MaxMsgsPerSubject: retention(e.cfg.History),
			Discard:           jetstream.DiscardOld,
			Storage:           jetstream.FileStorage,
			Replicas:          e.cfg.Replicas,
			AllowDirect:       true,
		})
		return err
	})
	if err != nil {
		return err
	}
	err = retry(ctx, e.log, "creating bucket "+NicksBucket, func(ctx context.Context) (err error) {
		e.nicks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: NicksBucket, Description: "chat nicknames and presence", Replicas: e.cfg.Replicas, Storage: jetstream.FileStorage,
		})
		return err
	})
	if err != nil {
		return err
	}
	// Heartbeats expire by themselves, so the bucket does not keep every
	// node that ever ran.
	err = retry(ctx, e.log, "creating bucket "+NodesBucket, func(ctx context.Context) (err error) {
		e.nodes, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: NodesBucket, Description: "chat node heartbeats", Replicas: e.cfg.Replicas,
			Storage: jetstream.MemoryStorage, TTL: 10 * e.cfg.DeadAfter,
		})
		return err
	})
	if err != nil {
		return err
	}
	if _, err := e.nodes.Put(ctx, e.node, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return err
	}
	for _, b := range []struct {
		kv    jetstream.KeyValue
		apply func(jetstream.KeyValueEntry)
	}{{e.nicks, e.applyNick}, {e.nodes, e.applyNode}} {
		w, err := b.kv.WatchAll(context.Background())
		if err != nil {
			e.stopWatchers()
			return err
		}
		e.watchers = append(e.watchers, w)
		ready := make(chan struct{})
		e.done.Add(1)
		go func() {
			defer e.done.Done()
			initial := true
			for u := range w.Updates() {
				if u == nil {
					if initial {
						initial = false
						close(ready)
					}
					continue
				}
				b.apply(u)
			}
		}()
		select {
		case <-ready:
		case <-ctx.Done():
			e.stopWatchers()
			return fmt.Errorf("reading bucket: %w", ctx.Err())
		}
	}
	e.refreshRooms()
	return nil
}

// retention is the stream's per-subject limit. It is not -history: a
// room's messages must stay until every node's feed has read them, and a
// burst of more than -history messages would otherwise remove some before
// a busy node's consumer reached them (they would be lost for its
// clients). Ten times -history, at least 1,000, is the lag tolerated;
// History still replays only the last -history.
func retention(history int) int64 { return int64(max(10*history, 1000)) }

// retry runs op until it succeeds or ctx ends, each attempt bounded on its
// own: a request sent before a leader exists may get no answer at all.
func retry(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(250 * time.Millisecond):
			log.Info("waiting for JetStream", "step", what, "err", err)
		}
	}
}

func (e *Engine) stopWatchers() {
	for _, w := range e.watchers {
		w.Stop()
	}
}

// opCtx bounds one request to NATS.
func (e *Engine) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.cfg.OpTimeout)
}

// unavailable wraps err as chat.ErrUnavailable, keeping both testable.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", chat.ErrUnavailable, err)
}

// connected reports whether the NATS connection is up; when it is not, no
// request is even tried.
func (e *Engine) connected() error {
	if s := e.nc.Status(); s != nats.CONNECTED {
		return unavailable(fmt.Errorf("NATS connection is %s", strings.ToLower(s.String())))
	}
	return nil
}

// Healthy returns nil when the node can serve: NATS connected.
func (e *Engine) Healthy() error { return e.connected() }

// subject is a room's stream subject; room names are valid subject tokens.
func subject(room string) string { return SubjectPrefix + room }

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
			e.Metrics.latency.observe(time.Since(start))
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
	e.mu.Lock()
	en := e.cache[k]
	var rev uint64
	if en != nil && m.Key != "" && en.Key == m.Key && en.Node != e.node {
		rev = en.rev
	}
	e.mu.Unlock()
	if rev == 0 {
		return jetstream.ErrKeyExists
	}
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

// Close implements chat.Engine: it frees this node's nicknames and its
// heartbeat, so other nodes see its users leave at once, and disconnects.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(e.stop)
	e.mu.Lock()
	var del []doomed
	for k, en := range e.cache {
		if en.Node == e.node {
			del = append(del, doomed{k, en.rev})
		}
	}
	e.claims = map[string]claim{}
	e.mu.Unlock()
	if e.connected() == nil {
		e.deleteAll(del)
		ctx, cancel := e.opCtx()
		e.nodes.Delete(ctx, e.node)
		cancel()
	}
	e.stopWatchers()
	e.nc.Close()
	e.done.Wait()
	return nil
}

// WritePrometheus writes the engine's metrics in the Prometheus text format.
func (e *Engine) WritePrometheus(w io.Writer) error {
	m := &e.Metrics
	up := 0
	if e.connected() == nil {
		up = 1
	}
	_, err := fmt.Fprintf(w, "# HELP chat_nats_connected 1 when the node is connected to NATS.\n# TYPE chat_nats_connected gauge\nchat_nats_connected %d\n"+
		"# HELP chat_nats_published_total Messages acknowledged by JetStream.\n# TYPE chat_nats_published_total counter\nchat_nats_published_total %d\n"+
		"# HELP chat_nats_delivered_total Messages received from JetStream for this node's rooms.\n# TYPE chat_nats_delivered_total counter\nchat_nats_delivered_total %d\n"+
		"# HELP chat_nats_publish_errors_total Messages refused because JetStream did not acknowledge them.\n# TYPE chat_nats_publish_errors_total counter\nchat_nats_publish_errors_total %d\n"+
		"# HELP chat_nats_disconnects_total Losses of the NATS connection.\n# TYPE chat_nats_disconnects_total counter\nchat_nats_disconnects_total %d\n"+
		"# HELP chat_nats_reconnects_total Reconnections to NATS.\n# TYPE chat_nats_reconnects_total counter\nchat_nats_reconnects_total %d\n"+
		"# HELP chat_nats_reaped_total Nicknames freed for nodes presumed dead.\n# TYPE chat_nats_reaped_total counter\nchat_nats_reaped_total %d\n",
		up, m.Published.Load(), m.Delivered.Load(), m.PublishErrors.Load(), m.Disconnects.Load(), m.Reconnects.Load(), m.Reaped.Load())
	if err == nil {
		err = m.latency.write(w, "chat_nats_publish_seconds", "Time from publishing a batch to JetStream's acknowledgement of each message.")
	}
	return err
}
