// Package chat is the chat server's core: rooms, nicknames, commands, history,
// limits and the two wire formats. It knows nothing about WebSocket framing:
// a connection is anything that implements Conn, so the logic is tested with
// in-memory fakes and served over the real library by the cmd/chat program.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Subprotocol is the WebSocket subprotocol that selects the JSON wire format.
// Without it a connection speaks the seed's plain-text format.
const Subprotocol = "chat.v1.json"

// Close codes the hub uses; they are the RFC 6455 numbers, kept here so this
// package does not depend on the WebSocket library.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseUnsupportedData = 1003
	ClosePolicyViolation = 1008
	CloseTryAgainLater   = 1013
)

// Conn is what the hub needs from one WebSocket connection. For a client
// with a writer goroutine (the default), Write and Ping are only ever called
// from that goroutine; for a direct client (ConnectOptions.Direct), WriteText
// is called from whichever goroutine produced the message, possibly several
// at once, and Ping never. Close and Abort may be called from anywhere.
type Conn interface {
	// WriteText sends one text message and returns when it was handed to the
	// network or ctx ended. A direct client's Conn must never block here: it
	// queues what the network does not take at once, up to a bound of its
	// own, and past it drops the connection and returns ErrSlowConsumer.
	WriteText(ctx context.Context, p *Payload) error
	// Ping sends a ping frame; the transport reports the pong through
	// Client.Alive.
	Ping(ctx context.Context) error
	// Close runs the closing handshake with the given code and reason, bounded
	// in time by the transport.
	Close(code int, reason string) error
	// Abort drops the connection without a closing handshake.
	Abort()
}

// BatchWriter is implemented by a Conn that can send several messages at
// the cost of one: a writer that took a backlog from its queue hands it
// over whole (one writev for a WebSocket connection), which is what keeps
// a busy room's writers ahead of their queues. WriteTexts sends ps in
// order, as WriteText would one by one; on error, how many went out is
// unknown.
type BatchWriter interface {
	WriteTexts(ctx context.Context, ps []*Payload) error
}

// ErrConnClosing is what a Conn's WriteText and Ping return (wrapped) when
// the connection is in its closing handshake or already over. The writer
// then stops without Abort: the transport owes the peer the rest of the
// handshake (its close reply), and cutting the connection would lose it.
var ErrConnClosing = errors.New("chat: connection is closing")

// ErrSlowConsumer is what a direct client's Conn returns (wrapped) from
// WriteText when its own outgoing queue for the peer overflowed: the peer
// does not read fast enough, and the Conn has dropped the connection. The
// hub counts it in Metrics.SlowConsumers; the transport reports the end
// through Disconnected as for any other.
var ErrSlowConsumer = errors.New("chat: the peer does not read fast enough")

// Payload is one encoded outgoing message. A broadcast builds it once and the
// same pointer is queued for every recipient, so a transport may cache a
// pre-framed form of it with Cached.
type Payload struct {
	Data  []byte
	cache atomic.Value
}

// Cached returns the transport-specific form of p, building it on first use.
// Concurrent first calls may both build; one result wins, which is harmless
// because the forms are equivalent.
func (p *Payload) Cached(build func([]byte) any) any {
	if v := p.cache.Load(); v != nil {
		return v
	}
	v := build(p.Data)
	p.cache.Store(v)
	return v
}

// Outgoing is one event in both wire formats. Either may be nil when the event
// means nothing to clients of that format (a presence list for plain clients).
type Outgoing struct {
	Plain *Payload
	JSON  *Payload
}

// Event is one message of the JSON protocol, in both directions. The Type
// decides which other fields are set; see the README for the catalogue.
type Event struct {
	Type    string     `json:"type"`
	ID      uint64     `json:"id,omitempty"`
	Room    string     `json:"room,omitempty"`
	Nick    string     `json:"nick,omitempty"`
	Old     string     `json:"old,omitempty"`
	Text    string     `json:"text,omitempty"`
	Action  bool       `json:"action,omitempty"`
	Time    int64      `json:"ts,omitempty"`
	Users   []string   `json:"users,omitempty"`
	Rooms   []RoomInfo `json:"rooms,omitempty"`
	Code    string     `json:"code,omitempty"`
	Limits  *Limits    `json:"limits,omitempty"`
	Resumed bool       `json:"resumed,omitempty"`
	Since   uint64     `json:"since,omitempty"`
	// SignedIn (welcome) says the nickname comes from the client's sign-in
	// token and cannot be changed.
	SignedIn bool `json:"signed_in,omitempty"`
}

// RoomInfo is one entry of a room list.
type RoomInfo struct {
	Name  string `json:"name"`
	Users int    `json:"users"`
}

// Limits tells a JSON client the server's limits so it can refuse early.
type Limits struct {
	MaxMessage int     `json:"max_message"`
	Rate       float64 `json:"rate"`
	Burst      int     `json:"burst"`
}

// Record is one stored chat message (or /me action).
type Record struct {
	ID     uint64 `json:"id"`
	Room   string `json:"room"`
	Nick   string `json:"nick"`
	Text   string `json:"text"`
	Action bool   `json:"action,omitempty"`
	Time   int64  `json:"ts"` // Unix milliseconds
}

func encodeJSON(e *Event) *Payload {
	b, err := json.Marshal(e)
	if err != nil {
		// Event holds only strings, numbers and slices of them; Marshal
		// cannot fail on it, so this is a programming error.
		panic(fmt.Sprintf("chat: encoding event: %v", err))
	}
	return &Payload{Data: b}
}

func plain(s string) *Payload { return &Payload{Data: []byte(s)} }

// recordOut is a message in both formats: the seed's "nick: message" and the
// JSON message event.
func recordOut(r *Record) *Outgoing {
	var text string
	if r.Action {
		text = "* " + r.Nick + " " + r.Text
	} else {
		text = r.Nick + ": " + r.Text
	}
	return &Outgoing{
		Plain: plain(text),
		JSON: encodeJSON(&Event{Type: "message", ID: r.ID, Room: r.Room, Nick: r.Nick,
			Text: r.Text, Action: r.Action, Time: r.Time}),
	}
}

func joinOut(room, nick string, ts int64) *Outgoing {
	return &Outgoing{
		Plain: plain(" .... " + nick + " has joined."),
		JSON:  encodeJSON(&Event{Type: "join", Room: room, Nick: nick, Time: ts}),
	}
}

func leaveOut(room, nick string, ts int64) *Outgoing {
	return &Outgoing{
		Plain: plain(" .... " + nick + " has left."),
		JSON:  encodeJSON(&Event{Type: "leave", Room: room, Nick: nick, Time: ts}),
	}
}

func nickOut(room, old, nick string, ts int64) *Outgoing {
	return &Outgoing{
		Plain: plain(" .... " + old + " is now known as " + nick + "."),
		JSON:  encodeJSON(&Event{Type: "nick", Room: room, Old: old, Nick: nick, Time: ts}),
	}
}

// errorOut is a refusal sent to one client. code is a stable machine-readable
// word (see the README); text is for people.
func errorOut(code, text string) *Outgoing {
	return &Outgoing{
		Plain: plain(" .... error: " + text),
		JSON:  encodeJSON(&Event{Type: "error", Code: code, Text: text}),
	}
}

// infoOut is a reply to a command, for one client.
func infoOut(text string) *Outgoing {
	return &Outgoing{
		Plain: plain(" .... " + text),
		JSON:  encodeJSON(&Event{Type: "info", Text: text}),
	}
}

// historyStartOut and historyEndOut frame a plain-text client's history
// replay, which would otherwise look exactly like live messages. JSON
// clients need no frame: the replay comes between welcome and presence.
func historyStartOut(n int) *Outgoing {
	s := "s"
	if n == 1 {
		s = ""
	}
	return &Outgoing{Plain: plain(fmt.Sprintf(" .... earlier message%s (%d):", s, n))}
}

var historyEndOut = &Outgoing{Plain: plain(" .... end of earlier messages.")}

func presenceOut(room string, users []string) *Outgoing {
	return &Outgoing{
		Plain: plain(fmt.Sprintf(" .... in %s (%d): %s", room, len(users), strings.Join(users, ", "))),
		JSON:  encodeJSON(&Event{Type: "presence", Room: room, Users: users}),
	}
}

// incoming is a decoded client message.
type incoming struct {
	Type string `json:"type"`
	Text string `json:"text"`
}
