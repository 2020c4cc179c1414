package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultRoom is the seed's single room: where connections to / and /chat go.
const DefaultRoom = "lobby"

// ErrShuttingDown is returned by Connect once Shutdown has begun.
var ErrShuttingDown = errors.New("chat: server is shutting down")

// ErrNoNick is returned by Connect when all 100,000 user-N nicknames are in use.
var ErrNoNick = errors.New("chat: no free nickname")

// Config holds the hub's limits. A zero limit means off or unlimited.
type Config struct {
	MaxMessage   int           // bytes of message text; longer ones are refused
	Rate         float64       // messages per second per connection
	Burst        int           // messages allowed at once before Rate applies
	Queue        int           // outgoing messages held for one client before it is disconnected
	History      int           // messages replayed to newcomers (and kept per room)
	PingInterval time.Duration // a peer silent for two intervals is dropped
	WriteTimeout time.Duration // bound on one write to one client
	// AnnounceMax limits join and leave notices to rooms with at most this
	// many members, sparing big rooms a flood of them; 0 means always.
	AnnounceMax int
	Store       Store // nil: no history at all
	// Engine shares rooms and nicknames with other nodes; nil means a
	// LocalEngine over Store (one node, today's behaviour).
	Engine Engine
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// Hub owns the rooms, the nickname registry and the connected clients.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	Metrics Metrics
	eng     Engine
	stores  bool // messages are kept (counted in Metrics.Stored)

	mu      sync.Mutex
	rooms   map[string]*room
	nicks   map[string]*Client // key: lower-cased nickname
	clients map[*Client]struct{}
	closing bool
	wg      sync.WaitGroup // clients and their writers
	roomWG  sync.WaitGroup
}

// NewHub returns a hub with cfg's limits.
func NewHub(cfg Config) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.History <= 0 {
		cfg.Store = nil
	}
	stores := cfg.Store != nil || cfg.Engine != nil
	if cfg.Engine == nil {
		cfg.Engine = NewLocalEngine(cfg.Store)
	}
	h := &Hub{
		eng:     cfg.Engine,
		stores:  stores,
		cfg:     cfg,
		log:     cfg.Logger,
		rooms:   map[string]*room{},
		nicks:   map[string]*Client{},
		clients: map[*Client]struct{}{},
	}
	return h
}

// ConnectOptions describe a new connection.
type ConnectOptions struct {
	Room string // validated room name; "" means DefaultRoom
	JSON bool   // the connection negotiated Subprotocol
	Nick string // requested nickname; taken or invalid ones fall back to user-N
	// Since resumes a JSON client: only messages with a larger ID are
	// replayed. HasSince distinguishes "since 0" from "no resume".
	Since    uint64
	HasSince bool
	Remote   string // for logs
	// Resume is a secret the client keeps across its reconnections (the
	// browser client: one per tab). With it a client may take its
	// nickname back from a connection on another node (see Member.Key).
	// It is ignored for a Verified connection, whose name is its identity.
	Resume string
	// Verified says Nick is the user's signed-in identity: it is used as
	// is (the same user may connect more than once) and cannot be changed
	// with /nick.
	Verified bool
	// Rooms, when not nil, are the only rooms the user may /join.
	Rooms []string
	// Direct says the transport's writes never block (the event-loop
	// backend queues what the socket does not take, bounded, and drops a
	// peer that lets the bound pass): the client then gets no writer
	// goroutine, no queue of its own and no ping ticker. Messages go to
	// Conn.WriteText from the goroutine that produced them, the
	// transport's bound is the slow-consumer limit (ErrSlowConsumer), and
	// the transport does the keepalive (Config.PingInterval and
	// Config.WriteTimeout are not used for it). An idle direct client
	// holds no goroutine.
	Direct bool
}

// Connect registers conn, gives it a nickname, starts its writer and joins
// it to its room. The transport must call Disconnected exactly once when the
// connection ends, and Receive for every text message in between.
func (h *Hub) Connect(conn Conn, o ConnectOptions) (*Client, error) {
	if o.Room == "" {
		o.Room = DefaultRoom
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		id:         strconv.FormatUint(rand.Uint64(), 36),
		key:        memberKey(o),
		hub:        h,
		conn:       conn,
		json:       o.JSON,
		q:          newSendQueue(h.cfg.Queue),
		limiter:    newTokenBucket(h.cfg.Rate, h.cfg.Burst, h.cfg.Now()),
		ctx:        ctx,
		cancel:     cancel,
		writerDone: make(chan struct{}),
		remote:     o.Remote,
		verified:   o.Verified,
		rooms:      o.Rooms,
		direct:     o.Direct,
	}
	c.Alive()

	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		cancel()
		return nil, ErrShuttingDown
	}
	var refused string
	nick := o.Nick
	shared := false
	if o.Verified {
		// Signed in: the name is the user's; nobody else can hold it,
		// because everyone's name comes from their own token. A second
		// connection of the same user on this node shares the claim.
		shared = h.nicks[strings.ToLower(nick)] != nil
	} else if nick != "" {
		if err := ValidNick(nick); err != nil {
			refused = err.Error()
			nick = ""
		} else if h.nicks[strings.ToLower(nick)] != nil {
			refused = fmt.Sprintf("nickname %q is taken", nick)
			nick = ""
		}
	}
	if nick == "" {
		nick = h.randomNickLocked()
		if nick == "" {
			h.mu.Unlock()
			cancel()
			return nil, ErrNoNick
		}
	}
	if !shared {
		h.nicks[strings.ToLower(nick)] = c
		h.mu.Unlock()
		// The local registry made nick free here; the engine makes it
		// free on every node. Outside the lock: that may be a network
		// round trip.
		for try := 0; ; try++ {
			err := h.eng.Claim(Member{Conn: c.id, Nick: nick, Room: o.Room, Key: c.key})
			if err == nil {
				break
			}
			if o.Verified && errors.Is(err, ErrNickTaken) && try < 2 {
				// A signed-in user's name is theirs: another node holds
				// it only for a connection of the same user, whose claim
				// this one takes over (see Member.Key), or held it a
				// moment ago; try again.
				continue
			}
			h.mu.Lock()
			delete(h.nicks, strings.ToLower(nick))
			if !errors.Is(err, ErrNickTaken) || try == 64 || o.Verified {
				// Still taken for a signed-in user: a node that does not
				// check sign-in gave the name away; the user is not
				// renamed.
				h.mu.Unlock()
				cancel()
				if errors.Is(err, ErrNickTaken) {
					return nil, ErrNoNick
				}
				return nil, err
			}
			if refused == "" && try == 0 && o.Nick != "" {
				refused = fmt.Sprintf("nickname %q is taken", nick)
			}
			if nick = h.randomNickLocked(); nick == "" {
				h.mu.Unlock()
				cancel()
				return nil, ErrNoNick
			}
			h.nicks[strings.ToLower(nick)] = c
			h.mu.Unlock()
		}
		h.mu.Lock()
		if h.closing {
			delete(h.nicks, strings.ToLower(nick))
			h.mu.Unlock()
			h.eng.Release(Member{Conn: c.id, Nick: nick, Room: o.Room})
			cancel()
			return nil, ErrShuttingDown
		}
	}
	c.setNick(nick)
	h.clients[c] = struct{}{}
	if c.direct {
		h.wg.Add(1) // the client until Disconnected; it has no writer
	} else {
		h.wg.Add(2) // the client until Disconnected, and its writer
	}
	h.mu.Unlock()

	h.Metrics.ConnectionsTotal.Add(1)
	if c.direct {
		close(c.writerDone)
	} else {
		go c.writeLoop()
	}
	if refused != "" {
		c.send(infoOut(refused + "; you are " + nick))
	}
	if err := c.join(o.Room, o.Since, o.HasSince); err != nil {
		// Only a shutdown that started a moment ago gets here.
		c.Disconnected()
		return nil, err
	}
	h.log.Debug("connected", "nick", nick, "room", o.Room, "json", o.JSON, "remote", o.Remote)
	return c, nil
}

// randomNickLocked picks user-N with N uniform in [0, 100000) among the free
// ones.
func (h *Hub) randomNickLocked() string {
	for range 64 {
		n := fmt.Sprintf("user-%d", rand.IntN(100000))
		if h.nicks[n] == nil {
			return n
		}
	}
	// Crowded: fall back to a scan from a random start so the result is
	// still spread out and the loop always ends.
	start := rand.IntN(100000)
	for i := range 100000 {
		n := fmt.Sprintf("user-%d", (start+i)%100000)
		if h.nicks[n] == nil {
			return n
		}
	}
	return ""
}

// ValidNick says why s cannot be a nickname, or returns nil.
func ValidNick(s string) error {
	if s == "" {
		return errors.New("nickname is empty")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 24 {
		return fmt.Errorf("nickname %q is longer than 24 characters", s)
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("nickname %q may only contain letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// ValidRoom says why s cannot be a room name, or returns nil. Room names are
// lower-case so that URLs differing in case reach the same room.
func ValidRoom(s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("room name must be 1 to 32 characters")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("room name %q may only contain a-z, 0-9, '-' and '_'", s)
		}
	}
	return nil
}

// rename gives c the nickname nick if it is valid and free, here and on
// every other node.
func (h *Hub) rename(c *Client, nick, room string) (old string, err error) {
	if err := ValidNick(nick); err != nil {
		return "", err
	}
	h.mu.Lock()
	old = c.Nick()
	key := strings.ToLower(nick)
	if other := h.nicks[key]; other != nil && other != c {
		h.mu.Unlock()
		return "", fmt.Errorf("nickname %q is taken", nick)
	}
	h.nicks[key] = c // reserved here while the engine decides
	h.mu.Unlock()
	err = h.eng.Update(Member{Conn: c.id, Nick: nick, Room: room, Key: c.key}, old)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		if key != strings.ToLower(old) && h.nicks[key] == c {
			delete(h.nicks, key)
		}
		if errors.Is(err, ErrNickTaken) {
			return "", fmt.Errorf("nickname %q is taken", nick)
		}
		return "", err
	}
	if key != strings.ToLower(old) {
		delete(h.nicks, strings.ToLower(old))
	}
	c.setNick(nick)
	return old, nil
}

func (h *Hub) unregister(c *Client) {
	h.mu.Lock()
	key := strings.ToLower(c.Nick())
	if h.nicks[key] == c {
		delete(h.nicks, key)
	}
	delete(h.clients, c)
	h.mu.Unlock()
	h.eng.Release(Member{Conn: c.id, Nick: c.Nick()})
}

// acquire returns the named room, creating it, and counts c in it.
func (h *Hub) acquire(name string) (*room, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil, ErrShuttingDown
	}
	r := h.rooms[name]
	if r == nil {
		r = newRoom(h, name)
		h.rooms[name] = r
		h.roomWG.Add(1)
		go r.run()
	}
	r.refs++
	return r, nil
}

// release undoes acquire; the last one out stops the room's goroutine. Only
// holders of a reference send to a room's inbox, so closing it here is safe.
func (h *Hub) release(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		delete(h.rooms, r.name)
		close(r.inbox)
	}
}

// Rooms lists the active rooms and the rooms that have history.
func (h *Hub) Rooms() []RoomInfo {
	h.mu.Lock()
	seen := map[string]int{}
	for name, r := range h.rooms {
		seen[name] = r.refs
	}
	h.mu.Unlock()
	// The engine counts the users of every node (or none, when it only
	// knows this one); rooms counts this node's.
	if infos, err := h.eng.Rooms(); err == nil {
		for _, ri := range infos {
			seen[ri.Name] = max(seen[ri.Name], ri.Users)
		}
	}
	if _, ok := seen[DefaultRoom]; !ok {
		seen[DefaultRoom] = 0
	}
	out := make([]RoomInfo, 0, len(seen))
	for n, u := range seen {
		out = append(out, RoomInfo{Name: n, Users: u})
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Counts returns the number of connected clients and of active rooms.
func (h *Hub) Counts() (clients, rooms int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients), len(h.rooms)
}

// Shutdown closes every client with 1001 after the messages already queued
// for it, waits for them until ctx ends (then drops the rest), stops the rooms
// and closes the store. Connect fails from the moment it is called.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	clients := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()

	for _, c := range clients {
		c.closeWith(CloseGoingAway, "server shutting down", true)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); h.roomWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		h.log.Warn("shutdown: dropping clients that did not finish closing", "err", err)
		h.mu.Lock()
		left := make([]*Client, 0, len(h.clients))
		for c := range h.clients {
			left = append(left, c)
		}
		h.mu.Unlock()
		// Outside the lock: a transport may report Disconnected from
		// inside Abort, and that takes the lock.
		for _, c := range left {
			c.conn.Abort()
		}
		// Aborted transports report Disconnected promptly; the bound keeps a
		// broken one from holding the store open forever.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			h.log.Error("shutdown: clients still registered after abort")
		}
	}
	if cerr := h.eng.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// now is the hub clock in Unix milliseconds.
func (h *Hub) now() int64 { return h.cfg.Now().UnixMilli() }
