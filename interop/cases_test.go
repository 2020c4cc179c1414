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
	// CanContextTakeover: the peer's permessage-deflate keeps its context
	// between messages (RFC 7692 §7.1.1); without it a peer always asks for
	// no context takeover.
	CanContextTakeover Capability = "use context takeover"
	// CanAskNoContextTakeover: the peer can be configured to ask for no
	// context takeover in both directions (PeerDeflateNoContext).
	CanAskNoContextTakeover Capability = "be configured to ask for no context takeover"
	// CanWindowBits: the peer honours the max_window_bits parameters we ask
	// for.
	CanWindowBits Capability = "honour max_window_bits"
	// CanAskWindowBits: the peer can be configured to ask for window limits
	// itself (PeerDeflateWindow).
	CanAskWindowBits Capability = "be configured to ask for max_window_bits"
	// CanSendCompressedFragments: the peer's API can send one compressed
	// message as several frames.
	CanSendCompressedFragments Capability = "send a compressed message as fragments"
)

// PeerDeflate is how the peer's permessage-deflate is configured for a
// case; the peers read it from the case list (clients) or from the server
// they were reached at (servers, one listener per mode).
type PeerDeflate string

const (
	// PeerDeflateDefault is the peer as usually deployed: it offers (or
	// accepts) permessage-deflate with its default parameters. Every case
	// that does not say otherwise runs with it; compression is then used
	// only when our side's Case.Compression turns it on.
	PeerDeflateDefault PeerDeflate = "default"
	// PeerDeflateNoContext: the peer asks for server_no_context_takeover and
	// client_no_context_takeover (a client offers them, a server answers
	// with them whatever the offer).
	PeerDeflateNoContext PeerDeflate = "no-ctx"
	// PeerDeflateWindow: the peer asks for server_max_window_bits and
	// client_max_window_bits of peerWindowBits.
	PeerDeflateWindow PeerDeflate = "window"
)

// peerDeflateModes lists the modes a peer server listens for.
var peerDeflateModes = []PeerDeflate{PeerDeflateDefault, PeerDeflateNoContext, PeerDeflateWindow}

// peerWindowBits and ourWindowBits are the window limits of the window
// cases: small enough that a back-reference beyond them, which a 32 KiB
// window would produce on these payloads, breaks the other side's inflater.
// Not 8: zlib, under Node and Python, turns a window of 8 bits into 9.
const (
	peerWindowBits = 10
	ourWindowBits  = 9
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
	// PeerDeflate is the peer's permessage-deflate configuration ("" is
	// PeerDeflateDefault).
	PeerDeflate PeerDeflate
	// JSON makes a text payload JSON-like (compressible) instead of random
	// characters.
	JSON bool
	// Count is how many messages of Size a payload case sends in a row (0
	// means 1); the messages differ but look alike, as a stream of JSON
	// events does, so context takeover matters.
	Count int
	// WantExt lists parameters the agreed Sec-WebSocket-Extensions must
	// carry (besides permessage-deflate itself), and WantExtOurServer those
	// it must also carry when our side is the server; ForbidExt lists
	// parameters it must not carry.
	WantExt, WantExtOurServer, ForbidExt []string
	// Section is the table of docs/INTEROP.md the case goes in.
	Section Section

	// run is our side of the case, on an open connection.
	run func(oc *ourConn, c Case) error
}

// Section is a table of the matrix.
type Section string

const (
	// SectionBasic is RFC 6455 without extensions.
	SectionBasic Section = ""
	// SectionCompression is permessage-deflate (RFC 7692).
	SectionCompression Section = "compression"
)

// sections lists the tables in order.
var sections = []Section{SectionBasic, SectionCompression}

func (c Case) peerDeflate() PeerDeflate {
	if c.PeerDeflate == "" {
		return PeerDeflateDefault
	}
	return c.PeerDeflate
}

func (c Case) count() int { return max(1, c.Count) }

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
	return append(cs, compressionCases()...)
}

// compressionCases are the permessage-deflate rows. Every one checks that
// the handshake agreed on permessage-deflate (with the case's parameters),
// that each message we sent went compressed (RSV1 on its first frame only)
// and that the peer's echoes came compressed too, then the payloads byte
// for byte, as every payload case does.
func compressionCases() []Case {
	ctx := func() *websocket.CompressionOptions { return &websocket.CompressionOptions{} }
	noCtx := func() *websocket.CompressionOptions {
		return &websocket.CompressionOptions{NoContextTakeover: true}
	}
	const bothNoCtx = "server_no_context_takeover client_no_context_takeover"
	noCtxParams := []string{"server_no_context_takeover", "client_no_context_takeover"}
	cs := []Case{
		{
			Name: "deflate-text-1k", Title: "text 1 KiB JSON-like",
			Kind: KindEcho, Type: websocket.TextMessage, Size: 1 * kib, JSON: true, Compression: ctx(),
		},
		{
			Name: "deflate-text-64k", Title: "text 64 KiB JSON-like",
			Kind: KindEcho, Type: websocket.TextMessage, Size: 64 * kib, JSON: true, Compression: ctx(),
		},
		{
			// Incompressible: deflate makes it a little larger on the wire,
			// yet it must pass with MaxLength exactly 16 MiB.
			Name: "deflate-binary-16m", Title: "binary 16 MiB random (incompressible)",
			Kind: KindEcho, Type: websocket.BinaryMessage, Size: 16 * mib, Compression: ctx(),
		},
		{
			// A small window makes zlib's stored blocks small, so an
			// incompressible message grows more on the wire.
			Name:  "deflate-binary-16m-peer-window",
			Title: fmt.Sprintf("binary 16 MiB random, peer asks max_window_bits=%d both ways, ours default", peerWindowBits),
			Kind:  KindEcho, Needs: CanAskWindowBits, PeerDeflate: PeerDeflateWindow,
			Type: websocket.BinaryMessage, Size: 16 * mib, Compression: ctx(),
			WantExt: []string{fmt.Sprintf("server_max_window_bits=%d", peerWindowBits)},
		},
		{
			Name: "deflate-fragmented-we-send", Title: "fragmented text JSON-like, we send",
			Kind: KindEcho, Type: websocket.TextMessage, Size: fragmentedSize, JSON: true, Fragment: true,
			Compression: ctx(),
		},
		{
			Name: "deflate-fragmented-peer-sends", Title: "fragmented text JSON-like, peer sends",
			Kind: KindEchoFragmented, Needs: CanSendCompressedFragments,
			Type: websocket.TextMessage, Size: fragmentedSize, JSON: true, Compression: ctx(),
		},
		{
			// A prepared message is compressed once for every connection
			// with the same parameters and no context takeover.
			Name: "deflate-prepared-no-ctx", Title: "text 64 KiB JSON-like, prepared (broadcast), we ask " + bothNoCtx,
			Kind: KindEcho, Type: websocket.TextMessage, Size: 64 * kib, JSON: true, Prepared: true,
			Compression: noCtx(), WantExt: noCtxParams[:1], WantExtOurServer: noCtxParams[1:],
		},
		{
			Name: "deflate-ctx-sequence", Title: "12 × 1 KiB in a row, context takeover both ways",
			Kind: KindEcho, Needs: CanContextTakeover, Type: websocket.TextMessage, Size: 1 * kib, JSON: true, Count: 12,
			Compression: ctx(), ForbidExt: noCtxParams,
		},
		{
			Name: "deflate-our-no-ctx-sequence", Title: "12 × 1 KiB in a row, we ask " + bothNoCtx,
			Kind: KindEcho, Type: websocket.TextMessage, Size: 1 * kib, JSON: true, Count: 12,
			Compression: noCtx(), WantExt: noCtxParams[:1], WantExtOurServer: noCtxParams[1:],
		},
		{
			Name: "deflate-peer-no-ctx-sequence", Title: "12 × 1 KiB in a row, peer asks " + bothNoCtx + ", ours default",
			Kind: KindEcho, Needs: CanAskNoContextTakeover, PeerDeflate: PeerDeflateNoContext,
			Type: websocket.TextMessage, Size: 1 * kib, JSON: true, Count: 12,
			Compression: ctx(), WantExt: noCtxParams,
		},
		{
			Name: "deflate-both-no-ctx-sequence", Title: "12 × 1 KiB in a row, both ask " + bothNoCtx,
			Kind: KindEcho, Needs: CanAskNoContextTakeover, PeerDeflate: PeerDeflateNoContext,
			Type: websocket.TextMessage, Size: 1 * kib, JSON: true, Count: 12,
			Compression: noCtx(), WantExt: noCtxParams,
		},
		{
			Name:  "deflate-our-window-sequence",
			Title: fmt.Sprintf("4 × 16 KiB in a row, we ask max_window_bits=%d both ways", ourWindowBits),
			Kind:  KindEcho, Needs: CanWindowBits, Type: websocket.TextMessage, Size: 16 * kib, JSON: true, Count: 4,
			Compression:      &websocket.CompressionOptions{ServerMaxWindowBits: ourWindowBits, ClientMaxWindowBits: ourWindowBits},
			WantExt:          []string{fmt.Sprintf("server_max_window_bits=%d", ourWindowBits)},
			WantExtOurServer: []string{fmt.Sprintf("client_max_window_bits=%d", ourWindowBits)},
		},
		{
			Name:  "deflate-peer-window-sequence",
			Title: fmt.Sprintf("4 × 16 KiB in a row, peer asks max_window_bits=%d both ways, ours default", peerWindowBits),
			Kind:  KindEcho, Needs: CanAskWindowBits, PeerDeflate: PeerDeflateWindow,
			Type: websocket.TextMessage, Size: 16 * kib, JSON: true, Count: 4,
			Compression: ctx(),
			WantExt:     []string{fmt.Sprintf("server_max_window_bits=%d", peerWindowBits)},
		},
	}
	for i := range cs {
		cs[i].Section = SectionCompression
		cs[i].run = runPayload
	}
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
func (c Case) payload() []byte { return c.payloadN(0) }

// payloadN is message i of the case (see Count).
func (c Case) payloadN(i int) []byte {
	key := fmt.Sprintf("%s/%d", c.Name, i)
	if p, ok := payloads.Load(key); ok {
		return p.([]byte)
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x696e7465726f70))
	var p []byte
	if c.Type == websocket.TextMessage && c.JSON {
		p = jsonText(r, c.Size)
	} else if c.Type == websocket.TextMessage {
		p = randomText(r, c.Size)
	} else {
		p = make([]byte, c.Size)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	}
	payloads.Store(key, p)
	return p
}

// jsonText returns exactly n bytes of UTF-8 that look like a stream of chat
// events in JSON: repetitive keys, varying values, some non-ASCII text. It
// compresses several times, as real JSON traffic does.
func jsonText(r *rand.Rand, n int) []byte {
	users := []string{"alice", "bob", "chloé", "dmitri", "eiko", "françois", "günther", "zoë"}
	words := []string{"hello", "world", "deploy", "status", "żółw", "ok", "ñandú", "rollback", "✓", "latency", "p99", "build"}
	b := make([]byte, 0, n+256)
	b = append(b, '[')
	for len(b) < n {
		b = fmt.Appendf(b, `{"id":%d,"type":"message","room":"room-%d","user":{"name":%q,"online":%t},"text":"`,
			r.IntN(1_000_000), r.IntN(16), users[r.IntN(len(users))], r.IntN(2) == 0)
		for k := 3 + r.IntN(8); k > 0; k-- {
			b = append(b, words[r.IntN(len(words))]...)
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, `","ts":%d,"tags":["t%d","t%d"]},`+"\n", 1_700_000_000+r.IntN(100_000), r.IntN(50), r.IntN(50))
	}
	b = b[:n]
	// The cut may have split a character: blank its leftover bytes.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3 && !utf8.Valid(b); i-- {
		b[i] = ' '
	}
	return b
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
