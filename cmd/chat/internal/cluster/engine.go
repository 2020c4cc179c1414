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
	"fmt"
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
	e.Metrics.latency = newLatency()
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
