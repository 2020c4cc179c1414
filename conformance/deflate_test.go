package conformance

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wsdriver/websocket"
)

// permessage-deflate (RFC 7692): the tester's own compressor and decompressor,
// built on compress/flate, and the cases (Autobahn 12.x and 13.x categories
// plus the RFC's negotiation and framing rules).

// deflateTail is the end of a sync flush, which RFC 7692 7.2.1 strips from
// every compressed message and 7.2.2 appends back before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// deflateState is the tester's side of a permessage-deflate connection.
type deflateState struct {
	deflate bool // negotiated on this connection
	// fresh makes the tester compress every message on its own, as it must
	// when the library asked for no context takeover in the tester's direction.
	fresh        bool
	fw           *flate.Writer
	fwOut        bytes.Buffer
	window       []byte // the last 32 KiB the library's messages inflated to
	compressedIn int    // compressed messages received from the library
	// inflateFresh inflates every library message without the window: the
	// library was asked not to use context takeover, so a back-reference into
	// an earlier message is an error.
	inflateFresh bool
}

// takeoverSide says whose messages a case negotiates no context takeover for.
type takeoverSide uint8

const (
	takeoverBoth    takeoverSide = iota // context takeover in both directions (the default)
	takeoverLibrary                     // the library must compress each message on its own
	takeoverTester                      // the tester compresses each message on its own
)

// deflateMsg compresses one message with the tester's compressor. With
// context takeover (the default) the compressor is kept across messages, so
// later messages may refer back to earlier ones and the library's inflater
// must keep its window.
func (d *deflateState) deflateMsg(msg []byte) []byte {
	if d.fw == nil || d.fresh {
		d.fwOut.Reset()
		d.fw, _ = flate.NewWriter(&d.fwOut, flate.BestSpeed)
	}
	d.fwOut.Reset()
	d.fw.Write(msg)
	d.fw.Flush()
	out := bytes.Clone(d.fwOut.Bytes())
	return bytes.TrimSuffix(out, deflateTail)
}

// inflate decompresses one message from the library, using the library's
// earlier messages as the dictionary (context takeover is the default, and
// harmless to assume when the library does not use it).
func (d *deflateState) inflate(payload []byte) ([]byte, error) {
	// The tail restores the sync flush; a final empty stored block lets the
	// reader end with io.EOF rather than wait for more input.
	in := slices.Concat(payload, deflateTail, []byte{0x01, 0x00, 0x00, 0xff, 0xff})
	dict := d.window
	if d.inflateFresh {
		dict = nil
	}
	r := flate.NewReaderDict(bytes.NewReader(in), dict)
	out, err := io.ReadAll(io.LimitReader(r, maxFrame+1))
	if err != nil {
		return nil, err
	}
	d.window = append(d.window, out...)
	if len(d.window) > 32<<10 {
		d.window = bytes.Clone(d.window[len(d.window)-32<<10:])
	}
	return out, nil
}

// encodeCompressed builds the frames of one compressed message.
func (p *rawPeer) encodeCompressed(f frame, mask bool) []byte {
	data := p.deflateMsg(f.payload)
	size := f.fragSize
	if size <= 0 {
		size = len(data) + 1
	}
	var out []byte
	for first := true; first || len(data) > 0; first = false {
		n := min(size, len(data))
		fr := frame{op: opCont, payload: data[:n], more: n < len(data) || f.more}
		if first {
			fr.op, fr.rsv = f.op, rsv1|f.rsv
		}
		out = append(out, encodeFrame(fr, mask, p.rng)...)
		if first && f.between != nil {
			out = append(out, p.encode(*f.between)...)
		}
		data = data[n:]
	}
	return out
}

func compressedText(b []byte) frame    { return frame{op: opText, payload: b, compress: true} }
func compressedBin(b []byte) frame     { return frame{op: opBinary, payload: b, compress: true} }
func (f frame) fragmented(n int) frame { f.fragSize = n; return f }

// withBetween sends b right after the first fragment of the compressed message f.
func withBetween(f, b frame) frame { f.between = &b; return f }

// bombPayload is computed on first use only: compressing 64 MiB takes seconds
// under the race detector, which every run would otherwise pay.
var bombPayload = sync.OnceValue(func() []byte { return zerosDeflated(0x4000000 + 1) })

// zerosDeflated compresses n zero bytes as one message with a fresh
// compressor, streaming, so that the tester never holds the n bytes. It is
// only valid as the first compressed message of a connection.
func zerosDeflated(n int) []byte {
	var out bytes.Buffer
	fw, _ := flate.NewWriter(&out, flate.BestSpeed)
	chunk := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(chunk))
		fw.Write(chunk[:k])
		n -= k
	}
	fw.Flush()
	return bytes.TrimSuffix(out.Bytes(), deflateTail)
}

// libraryCompressed checks that the library really compressed (Threshold -1
// asks it to compress every message).
func libraryCompressed(t *testing.T, p *rawPeer) {
	if p.compressedIn == 0 {
		t.Fatal("the library sent no compressed message although compression was negotiated with Threshold -1")
	}
}

// deflateSection: RFC 7692 on a connection where permessage-deflate was
// negotiated (the cases set deflate, and the harness asserts the negotiation).
func deflateSection() section {
	const failCode = "RFC 7692 6.1 and 8: data that does not inflate fails the connection; the RFC names no code, so 1002 and 1007 are both accepted"
	var cs []tcase
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		cs = append(cs,
			tcase{name: fmt.Sprintf("compressed_text_%d", n), send: []frame{compressedText(asciiText(n))}, want: []item{echoI(opText, asciiText(n))}, timeout: 20e9},
			tcase{name: fmt.Sprintf("compressed_binary_%d", n), send: []frame{compressedBin(pattern(n))}, want: []item{echoI(opBinary, pattern(n))}, timeout: 20e9},
		)
	}
	repeat := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. "), 50)
	var five []frame
	var fiveEcho []item
	for range 5 {
		five = append(five, compressedText(repeat))
		fiveEcho = append(fiveEcho, echoI(opText, repeat))
	}
	zeros := make([]byte, 1<<20)
	cs = append(cs,
		tcase{name: "library_compresses_its_messages", send: []frame{compressedText(repeat)}, want: []item{echoI(opText, repeat)}, post: libraryCompressed},
		tcase{name: "context_takeover_five_messages", send: five, want: fiveEcho,
			note: "the tester keeps its compressor across messages, so later messages refer back into earlier ones: the library must keep its inflate window (RFC 7692 7.2.3.3)"},
		tcase{name: "uncompressed_message_on_deflate_connection", send: []frame{textF("plain")}, want: []item{textI("plain")},
			note: "RFC 7692 6: a message with RSV1 clear is not compressed"},
		tcase{name: "compressed_plain_compressed", send: []frame{compressedText(repeat), binF(pattern(300)), compressedText(repeat)},
			want: []item{echoI(opText, repeat), echoI(opBinary, pattern(300)), echoI(opText, repeat)}},
		tcase{name: "compressed_fragmented_10_bytes", send: []frame{compressedText(repeat).fragmented(10)}, want: []item{echoI(opText, repeat)},
			note: "RFC 7692 6.1: RSV1 on the first fragment only"},
		tcase{name: "compressed_fragmented_1_byte", send: []frame{compressedBin(pattern(200)).fragmented(1)}, want: []item{echoI(opBinary, pattern(200))}},
		tcase{name: "ping_between_compressed_fragments", send: []frame{withBetween(compressedText(repeat).fragmented(100), pingF([]byte("p")))},
			want: []item{pongI([]byte("p")), echoI(opText, repeat)}, note: "control frames between the fragments of a compressed message are not compressed"},
		tcase{name: "library_no_context_takeover", send: five, want: fiveEcho, noTakeover: takeoverLibrary, post: libraryCompressed,
			note: "no context takeover negotiated for the library's direction: the tester inflates each library message with an empty window"},
		tcase{name: "tester_no_context_takeover", send: five, want: fiveEcho, noTakeover: takeoverTester},
		tcase{name: "compressed_byte_at_a_time", send: []frame{compressedText(repeat)}, split: splitBytes, want: []item{echoI(opText, repeat)}},
		tcase{name: "empty_deflate_block_00", send: []frame{textB([]byte{0x00}).rsvd(rsv1)}, want: []item{textI("")},
			note: "RFC 7692 7.2.3.6: a single 0x00 byte is an empty compressed message"},
		tcase{name: "rsv1_on_ping", send: []frame{pingF([]byte("p")).rsvd(rsv1)}, close: codes(1002),
			note: "RFC 7692 6.1: RSV1 only on the first frame of a data message"},
		tcase{name: "rsv1_on_close", send: []frame{closeF(1000, "").rsvd(rsv1)}, close: codes(1002)},
		tcase{name: "rsv1_on_continuation", send: []frame{compressedText(repeat).fragmented(10).frag(), contF(nil).rsvd(rsv1)}, close: codes(1002),
			note: "RFC 7692 6.1: RSV1 on a continuation frame fails the connection"},
		tcase{name: "rsv2_still_reserved", send: []frame{compressedText(repeat).rsvd(rsv2)}, close: codes(1002)},
		tcase{name: "invalid_deflate_data", send: []frame{textB([]byte{0x07, 0x00, 0x00, 0x00}).rsvd(rsv1)}, close: codes(1002, 1007), note: failCode},
		tcase{name: "invalid_deflate_data_binary", send: []frame{binF([]byte{0xff, 0xff, 0xff, 0xff, 0xff}).rsvd(rsv1)}, close: codes(1002, 1007), note: failCode},
		tcase{name: "compressed_invalid_utf8", send: []frame{compressedText([]byte("ab\xed\xa0\x80cd"))}, close: codes(1007),
			note: "UTF-8 is checked on the inflated text"},
		tcase{name: "compressed_at_limit", maxLength: 1024, send: []frame{compressedBin(pattern(1024))}, want: []item{echoI(opBinary, pattern(1024))}},
		tcase{name: "deflate_bomb_over_limit", maxLength: 1024, send: []frame{compressedBin(zeros)}, close: codes(1009),
			note: "the max length applies to the inflated message: 1 MiB of zeros compresses to about 1 KiB"},
		tcase{name: "deflate_bomb_default_limit", send: []frame{{op: opBinary, rsv: rsv1, gen: bombPayload}}, close: codes(1009), timeout: 30e9,
			note: "64 MiB + 1 of zeros (compressed on its own, about 64 KiB) inflates past the default max length 0x3ffffff"},
	)
	for i := range cs {
		cs[i].deflate = true
	}
	return section{name: "rfc7692_permessage_deflate", cases: cs}
}

// hasDeflate reports whether an extensions header accepts permessage-deflate,
// and whether it asks the tester's side for no context takeover.
func hasDeflate(vals []string, noTakeoverParam string) (ok, noTakeover bool) {
	for _, v := range vals {
		for _, ext := range strings.Split(v, ",") {
			parts := strings.Split(ext, ";")
			if strings.TrimSpace(parts[0]) != "permessage-deflate" {
				continue
			}
			ok = true
			for _, p := range parts[1:] {
				if strings.TrimSpace(p) == noTakeoverParam {
					noTakeover = true
				}
			}
		}
	}
	return ok, noTakeover
}

// deflateOptions is what the deflate cases give the library: compress every
// message, so that its echoes exercise the tester's inflater too.
func deflateOptions() *websocket.CompressionOptions {
	return &websocket.CompressionOptions{Threshold: -1}
}

// deflateServerCases: server-side negotiation (RFC 7692 5 and 7.1).
func deflateServerCases() []hsCase {
	on := websocket.ServerOptions{Compression: deflateOptions()}
	wantExt := func(want bool) func(*testing.T, *http.Response, string) {
		return func(t *testing.T, resp *http.Response, _ string) {
			got, _ := hasDeflate(resp.Header.Values("Sec-WebSocket-Extensions"), "")
			if got != want {
				t.Fatalf("Sec-WebSocket-Extensions %q: permessage-deflate accepted=%v, want %v", resp.Header.Values("Sec-WebSocket-Extensions"), got, want)
			}
		}
	}
	const decline = "RFC 7692 5: the server MUST decline an offer with an unknown or invalid parameter; declining one offer is not a failed handshake"
	return []hsCase{
		{name: "deflate_offer_accepted", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate"), status: []int{101}, check: wantExt(true)},
		{name: "deflate_offer_with_client_max_window_bits", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"), status: []int{101}, check: wantExt(true)},
		{name: "deflate_off_declines_offer", edit: set("Sec-WebSocket-Extensions", "permessage-deflate"), status: []int{101}, check: wantExt(false)},
		{name: "deflate_unknown_param_declined", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; foo=1"), status: []int{101}, check: wantExt(false), note: decline},
		{name: "deflate_window_bits_7_declined", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=7"), status: []int{101}, check: wantExt(false), note: decline},
		{name: "deflate_window_bits_16_declined", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=16"), status: []int{101}, check: wantExt(false), note: decline},
		{name: "deflate_duplicate_param_declined", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; server_no_context_takeover"), status: []int{101}, check: wantExt(false), note: decline},
		{name: "deflate_second_offer_used", opts: on, edit: set("Sec-WebSocket-Extensions", "permessage-deflate; foo, permessage-deflate"), status: []int{101}, check: wantExt(true),
			note: "RFC 7692 5: offers are tried in order; the first acceptable one wins"},
		{name: "deflate_unknown_extension_ignored", opts: on, edit: set("Sec-WebSocket-Extensions", "x-webkit-deflate-frame"), status: []int{101}, check: wantExt(false)},
	}
}

// deflateClientCases: client-side negotiation. The raw server answers the
// library's offer with a response the client must refuse.
func deflateClientCases() []clientHsCase {
	opts := websocket.ClientOptions{Compression: deflateOptions()}
	const fail = "RFC 7692 5: the client MUST fail the connection on a response it cannot accept"
	return []clientHsCase{
		{name: "deflate_offered", opts: opts, resp: acceptingHandshake(""), check: func(t *testing.T, run *clientRun, err error) {
			if ok, _ := hasDeflate(run.req.Header.Values("Sec-WebSocket-Extensions"), ""); !ok {
				t.Fatalf("Sec-WebSocket-Extensions %q: want a permessage-deflate offer", run.req.Header.Values("Sec-WebSocket-Extensions"))
			}
			wantDialOK(t, run, err)
		}, note: "a declined offer is not a failure: the connection goes on uncompressed"},
		{name: "deflate_response_unknown_param", opts: opts, resp: acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate; foo\r\n"), check: wantDialError, note: fail},
		{name: "deflate_response_twice", opts: opts, resp: acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n"), check: wantDialError, note: fail},
		{name: "deflate_response_window_bits_7", opts: opts, resp: acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n"), check: wantDialError, note: fail},
		{name: "deflate_response_client_window_bits_not_offered", opts: opts, resp: func(r *http.Request) string {
			if strings.Contains(strings.Join(r.Header.Values("Sec-WebSocket-Extensions"), ","), "client_max_window_bits") {
				// The offer allowed it, so the response below would be valid;
				// answer with a parameter that is never valid in a response instead.
				return acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=7\r\n")(r)
			}
			return acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n")(r)
		}, check: wantDialError, note: "RFC 7692 7.1.2.2: the server must not send client_max_window_bits unless offered, and never outside 8..15"},
		{name: "deflate_response_when_not_offered", resp: acceptingHandshake("Sec-WebSocket-Extensions: permessage-deflate\r\n"), check: wantDialError,
			note: "RFC 6455 9.1: the server may only accept an extension the client offered"},
	}
}

// deflateResponse accepts the library client's permessage-deflate offer as a
// plain server would: no parameters except the ones it must echo.
func deflateResponse(r *http.Request) (string, bool, bool) {
	offer := strings.Join(r.Header.Values("Sec-WebSocket-Extensions"), ",")
	if !strings.Contains(offer, "permessage-deflate") {
		return "", false, false
	}
	first := strings.Split(offer, ",")[0]
	resp := "permessage-deflate"
	fresh := false
	for _, p := range strings.Split(first, ";")[1:] {
		p = strings.TrimSpace(p)
		switch {
		case p == "server_no_context_takeover":
			resp += "; server_no_context_takeover"
			fresh = true
		case strings.HasPrefix(p, "server_max_window_bits"):
			// compress/flate always uses a 32 KiB window, so the tester can
			// honour only 15 (or no value).
			if _, v, ok := strings.Cut(p, "="); ok && strings.Trim(v, `" `) != "15" {
				return "", false, false
			}
			resp += "; server_max_window_bits=15"
		}
	}
	return resp, true, fresh
}
