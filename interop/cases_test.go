package interop

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"unicode/utf8"

	"github.com/wsdriver/websocket"
)

// Kind is what the peer does in a case. The peers implement each kind once
// (python/peer.py, node/peer.js, browser/page.html and goPeerKind in
// gopeer_test.go); our side's half is Case.run. Kinds are named in the URL
// the peer sees, so a new case built from existing kinds needs no change to
// any peer.
type Kind string

const (
	// KindEcho: read one message, answer "digest TYPE LEN SHA256HEX" as
	// text, echo the message with its type, then read (echoing) until our
	// close, which must be 1000.
	KindEcho Kind = "echo"
	// KindEchoFragmented is KindEcho with the echo sent as several frames.
	KindEchoFragmented Kind = "echo-fragmented"
	// KindIdle: read (echoing) until our close, which must be 1000.
	KindIdle Kind = "idle"
	// KindPingFromPeer: ping, wait for the matching pong, send
	// "pong-ok HEX(payload)" (HEX may be empty when the peer's API picks
	// the payload itself), then as KindIdle.
	KindPingFromPeer Kind = "ping-from-peer"
	// KindSubprotocol: a client offers offeredProtocols, a server accepts
	// only expectedProtocol; send "protocol NAME" with what was agreed,
	// then as KindIdle.
	KindSubprotocol Kind = "subprotocol"
	// KindCloseFromUs: read until our close, which must carry closeFromUs.
	KindCloseFromUs Kind = "close-from-us"
	// KindCloseFromPeer: close at once with closeFromPeer and wait for the
	// closing handshake to finish.
	KindCloseFromPeer Kind = "close-from-peer"
)

// The fixed values every peer uses; they are repeated in the peers' sources.
var (
	offeredProtocols = []string{"x-unknown", "chat.v2", "chat.v1"}
	// ourProtocols lists chat.v1 first: the server must still honour the
	// client's order and pick chat.v2.
	ourProtocols     = []string{"chat.v1", "chat.v2"}
	expectedProtocol = "chat.v2"
	ourPing          = []byte("ping from us")
	closeFromUs      = closeFrame{4001, "bye from us: żółw ✓"}
	closeFromPeer    = closeFrame{4002, "bye from peer: ñandú ✓"}
)

type closeFrame struct {
	code   websocket.StatusCode
	reason string
}

// Capability is something a peer's API must be able to do for a case.
type Capability string

const (
	// CanSendFragments: the API can send one message as several frames.
	CanSendFragments Capability = "send fragments"
	// CanPing: the API can send a ping and see the pong.
	CanPing Capability = "send pings"
)

// Case is one row of the matrix.
type Case struct {
	Name  string // path element and subtest name: [a-z0-9-]
	Title string // row label in docs/INTEROP.md
	Kind  Kind
	Needs Capability // empty: every peer can do it

	// Payload cases: we send Size bytes of Type, in several frames if
	// Fragment, through WritePrepared if Prepared, and check the digest and
	// the echo.
	Type     websocket.MessageType
	Size     int
	Fragment bool
	Prepared bool

	// Compression is our side's permessage-deflate setting for the case
	// (nil: off). The peers always offer and accept permessage-deflate, as
	// they are deployed, so this alone decides whether it is used; the
	// frame sniffer records RSV1 to prove it was.
	Compression *websocket.CompressionOptions

	// run is our side of the case, on an open connection.
	run func(oc *ourConn, c Case) error
}

const (
	kib = 1 << 10
	mib = 1 << 20
	// fragmentedSize is large enough for several fragments whatever the
	// peer's or our fragment size, and odd so no fragment size divides it.
	fragmentedSize = 70001
)

// allCases is the matrix's list of rows, and the one place to add some: a
// new Case reusing a Kind needs nothing else (the matrix, the subtests and
// docs/INTEROP.md follow). The permessage-deflate cases are payload cases
// (Kind KindEcho or KindEchoFragmented, run runPayload) with Compression
// set; checks of what went compressed belong in runPayload, from the
// sniffer's RSV1 bits. A case that needs new behaviour from the peers adds
// a Kind and implements it in the four peer sources listed on Kind; one
// that needs our side configured differently adds a field to Case that
// ourServerOptions / ourClientOptions in ours_test.go read.
func allCases() []Case {
	var cs []Case
	sizes := []struct {
		n     int
		label string
	}{{0, "0 B"}, {125, "125 B"}, {126, "126 B"}, {64 * kib, "64 KiB"}, {16 * mib, "16 MiB"}}
	for _, typ := range []websocket.MessageType{websocket.TextMessage, websocket.BinaryMessage} {
		for _, s := range sizes {
			cs = append(cs, Case{
				Name:  fmt.Sprintf("%s-%d", typ, s.n),
				Title: fmt.Sprintf("%s %s", typ, s.label),
				Kind:  KindEcho, Type: typ, Size: s.n, run: runPayload,
			})
		}
	}
	for _, typ := range []websocket.MessageType{websocket.TextMessage, websocket.BinaryMessage} {
		cs = append(cs,
			Case{
				Name:  fmt.Sprintf("fragmented-%s-we-send", typ),
				Title: fmt.Sprintf("fragmented %s, we send", typ),
				Kind:  KindEcho, Type: typ, Size: fragmentedSize, Fragment: true, run: runPayload,
			},
			Case{
				Name:  fmt.Sprintf("fragmented-%s-peer-sends", typ),
				Title: fmt.Sprintf("fragmented %s, peer sends", typ),
				Kind:  KindEchoFragmented, Needs: CanSendFragments,
				Type: typ, Size: fragmentedSize, run: runPayload,
			})
	}
	// The broadcast path: a server writes the frame encoded once, a client
	// must still mask it with a fresh key.
	cs = append(cs,
		Case{
			Name: "prepared-text-126", Title: "text 126 B, prepared (broadcast)",
			Kind: KindEcho, Type: websocket.TextMessage, Size: 126, Prepared: true, run: runPayload,
		},
		Case{
			Name: "prepared-binary-65536", Title: "binary 64 KiB, prepared (broadcast)",
			Kind: KindEcho, Type: websocket.BinaryMessage, Size: 64 * kib, Prepared: true, run: runPayload,
		},
	)
	cs = append(cs,
		Case{Name: "ping-from-peer", Title: "peer pings, we pong", Kind: KindPingFromPeer, Needs: CanPing, run: runPingFromPeer},
		Case{Name: "ping-from-us", Title: "we ping, peer pongs", Kind: KindIdle, run: runPingFromUs},
		Case{Name: "subprotocol", Title: "subprotocol negotiation", Kind: KindSubprotocol, run: runSubprotocol},
		Case{Name: "close-from-us", Title: "close 4001 + reason from us", Kind: KindCloseFromUs, run: runCloseFromUs},
		Case{Name: "close-from-peer", Title: "close 4002 + reason from peer", Kind: KindCloseFromPeer, run: runCloseFromPeer},
	)
	return cs
}

// maxCaseSize is the largest message of the matrix; our side's MaxLength is
// set to exactly this, so the largest cases also cross the limit's boundary.
func maxCaseSize() int64 {
	var m int
	for _, c := range allCases() {
		m = max(m, c.Size)
	}
	return int64(m)
}

var payloads sync.Map // case name -> []byte

// payload is the case's message: pseudo-random but the same on every run
// (seeded by the case name), valid UTF-8 for text.
func (c Case) payload() []byte {
	if p, ok := payloads.Load(c.Name); ok {
		return p.([]byte)
	}
	h := fnv.New64a()
	h.Write([]byte(c.Name))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x696e7465726f70))
	var p []byte
	if c.Type == websocket.TextMessage {
		p = randomText(r, c.Size)
	} else {
		p = make([]byte, c.Size)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	}
	payloads.Store(c.Name, p)
	return p
}

// randomText returns exactly n bytes of UTF-8 mixing 1- to 4-byte
// sequences, so that fragment boundaries land inside characters.
func randomText(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		width := 1 + r.IntN(4)
		width = min(width, n-len(b))
		var c rune
		switch width {
		case 1:
			c = rune(r.IntN(0x80))
		case 2:
			c = rune(0x80 + r.IntN(0x800-0x80))
		case 3:
			c = rune(0x800 + r.IntN(0x10000-0x800))
			// Surrogates are not characters; a browser drops a leading
			// U+FEFF when it decodes a text message.
			if (c >= 0xd800 && c <= 0xdfff) || c == 0xfeff {
				c = 'x'
				width = 1
			}
		case 4:
			c = rune(0x10000 + r.IntN(0x110000-0x10000))
		}
		b = utf8.AppendRune(b, c)
	}
	return b
}

// fragmentSizes are the sizes of our writes in the fragmented cases; they
// cut characters in the middle. Our writer may still merge small writes into
// one frame: the frame sniffer checks that several frames went out.
var fragmentSizes = []int{1, 4999, 3, 8192, 2, 20000, 5}
