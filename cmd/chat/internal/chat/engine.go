package chat

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrNickTaken is returned by Engine.Claim and Engine.Update when another
// connection, on this node or another, holds the nickname.
var ErrNickTaken = errors.New("chat: nickname is taken")

// ErrUnavailable wraps the errors of an engine that cannot reach the service
// it shares with other nodes: nothing was stored or reserved, and the caller
// may try again later.
var ErrUnavailable = errors.New("chat: the message service is unavailable")

// Engine is what the hub shares with the other nodes of a chat: the order and
// history of each room's messages (a broker) and who is where under which
// nickname (presence). The hub talks only to this interface; LocalEngine is the
// single-node engine over a Store, and a cluster engine (package cluster)
// shares both over NATS JetStream. Methods may be called from any goroutine.
type Engine interface {
	// Subscribe starts delivering room's events to deliver, which must not
	// block, until the subscription is stopped. Every message with an ID
	// above the returned Pos is delivered, in ID order, exactly once; the
	// returned Present lists the room's users on other nodes at that moment.
	Subscribe(room string, deliver func(Delivery)) (*Subscription, error)
	// Publish stores recs (all of room, in arrival order) and gives them
	// their IDs. It returns nil when every record was accepted, or one error
	// per record (nil for the accepted ones). Accepted records reach every
	// subscriber on every node through Delivery; refused ones reach nobody.
	Publish(room string, recs []*Record) []error
	// History returns at most limit of room's newest messages with an ID
	// above since and not above upto, oldest first. An engine that delivers
	// synchronously within Publish may ignore upto.
	History(room string, since, upto uint64, limit int) ([]Record, error)
	// Rooms lists the rooms with history or users, with the number of users
	// the engine knows of (0 when it only knows local ones).
	Rooms() ([]RoomInfo, error)
	// Claim reserves m.Nick (ignoring case) for connection m.Conn, in room
	// m.Room; it fails with ErrNickTaken when it is held elsewhere.
	Claim(m Member) error
	// Update moves m.Conn, who held old, to nickname m.Nick and room m.Room;
	// it fails with ErrNickTaken when m.Nick is held elsewhere.
	Update(m Member, old string) error
	// Release frees m's nickname and ends its presence.
	Release(m Member)
	// Close stops the engine and releases what it holds.
	Close() error
}

// Member is one connected user as presence sees it.
type Member struct {
	Conn string `json:"conn"` // unique connection ID
	Nick string `json:"nick"`
	Room string `json:"room"`
	// Key is the hash of the client's resume token (ConnectOptions.Resume),
	// or "". A connection that presents the same token may take the
	// nickname over from a holder on another node: the same browser tab
	// coming back through the load balancer after its node died.
	Key string `json:"key,omitempty"`
}

// ResumeKey is the Member.Key for a client's resume token: a hash, so that
// whoever can read the presence store cannot take over nicknames.
func ResumeKey(token string) string {
	if token == "" {
		return ""
	}
	h := sha256.Sum256([]byte("chat resume token\x00" + token))
	return hex.EncodeToString(h[:16])
}

// memberKey is the Member.Key of a new connection. A signed-in user's key
// comes from the name their token proved, never from the resume token: any
// connection of that user, on any node, may take the name over from another
// of theirs, and no resume token (which travels in URLs, and so in proxy
// logs) can produce it, so nobody takes a signed-in user's name by resuming.
func memberKey(o ConnectOptions) string {
	if o.Verified {
		h := sha256.Sum256([]byte("chat signed-in user\x00" + strings.ToLower(o.Nick)))
		return hex.EncodeToString(h[:16])
	}
	return ResumeKey(o.Resume)
}

// DeliveryKind says what a Delivery carries.
type DeliveryKind uint8

// The kinds of Delivery.
const (
	DeliverMessage DeliveryKind = iota // Rec is a stored message
	DeliverJoin                        // User joined the room
	DeliverLeave                       // User left the room (or its node died)
	DeliverNick                        // User, formerly Old, changed nickname
)

// Delivery is one event of a subscribed room.
type Delivery struct {
	Kind DeliveryKind
	Rec  *Record
	User Member
	Old  string
}

// Subscription is a room's live feed from an engine.
type Subscription struct {
	Pos     uint64   // every message above this ID will be delivered
	Present []Member // users on other nodes when the subscription started
	Stop    func()   // ends delivery; called once by the room
}

// LocalEngine is the single-node engine: the Store orders and keeps
// messages, Publish delivers them synchronously to the room's subscriber,
// and the hub's own nickname registry is all the presence there is.
type LocalEngine struct {
	store Store // nil: no history
	seq   atomic.Uint64
	mu    sync.Mutex
	// subs holds each room's subscribers. Usually one; two for a moment
	// when a room's goroutine ends while a new one for the same name
	// starts, and the old one's Stop must not remove the new one.
	subs map[string]map[*localSub]struct{}
}

type localSub struct{ deliver func(Delivery) }

// NewLocalEngine returns the single-node engine over store (nil: no history).
func NewLocalEngine(store Store) *LocalEngine {
	e := &LocalEngine{store: store, subs: map[string]map[*localSub]struct{}{}}
	e.seq.Store(firstID())
	return e
}

// Subscribe implements Engine.
func (e *LocalEngine) Subscribe(room string, deliver func(Delivery)) (*Subscription, error) {
	s := &localSub{deliver: deliver}
	e.mu.Lock()
	if e.subs[room] == nil {
		e.subs[room] = map[*localSub]struct{}{}
	}
	e.subs[room][s] = struct{}{}
	e.mu.Unlock()
	return &Subscription{Stop: func() {
		e.mu.Lock()
		delete(e.subs[room], s)
		if len(e.subs[room]) == 0 {
			delete(e.subs, room)
		}
		e.mu.Unlock()
	}}, nil
}

// Publish implements Engine: one store transaction for recs, then delivery.
func (e *LocalEngine) Publish(room string, recs []*Record) []error {
	if e.store != nil {
		if err := e.store.Append(room, recs); err != nil {
			errs := make([]error, len(recs))
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
	} else {
		for _, rec := range recs {
			rec.ID = e.seq.Add(1)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs[room] {
		for _, rec := range recs {
			s.deliver(Delivery{Kind: DeliverMessage, Rec: rec})
		}
	}
	return nil
}

// History implements Engine. Publish delivers synchronously, so upto is
// never below the newest stored ID and is ignored.
func (e *LocalEngine) History(room string, since, upto uint64, limit int) ([]Record, error) {
	if e.store == nil || limit <= 0 {
		return nil, nil
	}
	return e.store.Recent(room, since, limit)
}

// Rooms implements Engine: the rooms with history.
func (e *LocalEngine) Rooms() ([]RoomInfo, error) {
	if e.store == nil {
		return nil, nil
	}
	names, err := e.store.Rooms()
	out := make([]RoomInfo, 0, len(names))
	for _, n := range names {
		out = append(out, RoomInfo{Name: n})
	}
	return out, err
}

// Claim implements Engine; the hub's registry already made the nickname
// unique on the only node.
func (e *LocalEngine) Claim(Member) error { return nil }

// Update implements Engine, like Claim.
func (e *LocalEngine) Update(Member, string) error { return nil }

// Release implements Engine.
func (e *LocalEngine) Release(Member) {}

// Close implements Engine: it closes the store.
func (e *LocalEngine) Close() error {
	if e.store == nil {
		return nil
	}
	return e.store.Close()
}
