package conformance

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The case tables. Each section is named after the RFC 6455 section whose rule
// it checks; the comment on each names the Autobahn TestSuite category it
// covers. Cases with side both run against the server (tester masks) and the
// client (tester does not mask), with the same expectation.

func echoI(op byte, data []byte) item { return item{op: op, data: data} }
func textI(s string) item             { return item{op: opText, data: []byte(s)} }
func pongI(b []byte) item             { return item{op: opPong, data: b} }

func codes(c ...uint16) []uint16 { return c }

// pattern returns n bytes that exercise every byte value and every mask offset.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// asciiText returns n bytes of printable ASCII that change with position, so
// that a misplaced chunk shows in the comparison.
func asciiText(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('!' + i%90)
	}
	return b
}

// allSections builds the tables once: the six test functions share them (the
// payloads of the large cases are tens of MiB, and nothing mutates a case).
var allSections = sync.OnceValue(func() []section {
	return []section{
		framingSection(),
		reservedBitsSection(),
		opcodesSection(),
		maskingSection(),
		fragmentationSection(),
		controlFramesSection(),
		pingSection(),
		pongSection(),
		utf8Section(),
		closeSection(),
		closeCodesSection(),
		closingSection(),
		startClosingSection(),
		limitsSection(),
		deflateSection(),
	}
})

// boundaryLengths are the payload lengths at every length-encoding boundary
// (RFC 6455 5.2: 7-bit up to 125, 16-bit up to 65535, 64-bit above).
var boundaryLengths = []int{0, 1, 125, 126, 127, 65535, 65536, 65537}

// framingSection: Autobahn 1.x (text and binary of every length, split writes)
// and 10.1 (auto-fragmentation).
func framingSection() section {
	var cs []tcase
	for _, n := range boundaryLengths {
		cs = append(cs,
			tcase{name: fmt.Sprintf("text_len_%d", n), send: []frame{textB(asciiText(n))}, want: []item{echoI(opText, asciiText(n))}},
			tcase{name: fmt.Sprintf("binary_len_%d", n), send: []frame{binF(pattern(n))}, want: []item{echoI(opBinary, pattern(n))}},
		)
	}
	// Non-minimal encodings. RFC 6455 5.2 says "the minimal number of bytes MUST
	// be used to encode the length": a rule on the sender. It gives the receiver
	// no instruction, and 10.7 only says an endpoint MAY drop a connection on
	// data that violates its criteria. So both outcomes are allowed: echo the
	// message, or fail the connection with 1002. Nothing else (a hang, a wrong
	// echo, another code) is. That the library itself always sends minimal
	// lengths is checked on every frame it sends.
	const nonMinimal = "RFC 6455 5.2 puts minimal length encoding on the sender only: the receiver may accept or fail with 1002"
	for _, n := range []int{0, 1, 125} {
		cs = append(cs, tcase{name: fmt.Sprintf("len_%d_in_16bit_encoding", n), send: []frame{binF(pattern(n)).enc(len16)},
			want: []item{echoI(opBinary, pattern(n))}, orFail1002: true, note: nonMinimal})
	}
	for _, n := range []int{0, 125, 126, 65535} {
		cs = append(cs, tcase{name: fmt.Sprintf("len_%d_in_64bit_encoding", n), send: []frame{binF(pattern(n)).enc(len64)},
			want: []item{echoI(opBinary, pattern(n))}, orFail1002: true, note: nonMinimal})
	}
	cs = append(cs,
		tcase{name: "len64_top_bit_set", send: []frame{binF(pattern(16)).declare(1<<63 | 16)}, close: codes(1002),
			note: "RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0"},
		tcase{name: "len64_top_bit_set_small_remainder", send: []frame{textF("x").declare(1<<63 | 1)}, close: codes(1002)},
		tcase{name: "text_125_byte_at_a_time", send: []frame{textB(asciiText(125))}, split: splitBytes, want: []item{echoI(opText, asciiText(125))}},
		tcase{name: "binary_126_byte_at_a_time", send: []frame{binF(pattern(126))}, split: splitBytes, want: []item{echoI(opBinary, pattern(126))}},
		tcase{name: "binary_65536_header_byte_at_a_time", send: []frame{binF(pattern(300))}, split: splitBytes, want: []item{echoI(opBinary, pattern(300))}},
		tcase{name: "text_65537_random_chunks", send: []frame{textB(asciiText(65537))}, split: splitRandom, want: []item{echoI(opText, asciiText(65537))}, timeout: 20e9},
		tcase{name: "binary_1000_random_chunks", send: []frame{binF(pattern(1000))}, split: splitRandom, want: []item{echoI(opBinary, pattern(1000))}},
		tcase{name: "three_messages_one_write", send: []frame{textF("one"), binF(pattern(200)), textF("three")},
			want: []item{textI("one"), echoI(opBinary, pattern(200)), textI("three")}},
		tcase{name: "three_messages_byte_at_a_time", send: []frame{textF("one"), binF(pattern(130)), textF("three")}, split: splitBytes,
			want: []item{textI("one"), echoI(opBinary, pattern(130)), textI("three")}},
		tcase{name: "mixed_frames_random_chunks", send: []frame{textF("a").frag(), pingF([]byte("p")), contF([]byte("b")), binF(pattern(70000))}, split: splitRandom,
			want: []item{pongI([]byte("p")), textI("ab"), echoI(opBinary, pattern(70000))}, timeout: 20e9},
		tcase{name: "autofragmented_65536_in_1300_byte_fragments", send: fragments(opBinary, pattern(65536), 1300), want: []item{echoI(opBinary, pattern(65536))}},
	)
	return section{name: "5.2_framing", cases: cs}
}

// fragments splits data into frames of at most size bytes (at least one frame).
func fragments(op byte, data []byte, size int) []frame {
	var fs []frame
	for first := true; first || len(data) > 0; first = false {
		n := min(size, len(data))
		f := frame{op: opCont, payload: data[:n], more: n < len(data)}
		if first {
			f.op = op
		}
		fs = append(fs, f)
		data = data[n:]
	}
	return fs
}

// dropEcho explains mayDrop on the cases that follow a valid message with a
// bad frame or a close.
const dropEcho = "the echo of the first message is the application's and may lose the race with the library failing or closing the connection; the close code is the expectation"

// reservedBitsSection: Autobahn 3.x. No extension is negotiated, so any RSV bit
// fails the connection (RFC 6455 5.2).
func reservedBitsSection() section {
	const fail = "RFC 6455 5.2: a nonzero RSV bit without a negotiated extension MUST fail the connection"
	cs := []tcase{
		{name: "rsv1_set", send: []frame{textF("hello").rsvd(rsv1)}, close: codes(1002), note: fail},
		{name: "rsv2_set", send: []frame{textF("hello").rsvd(rsv2)}, close: codes(1002), note: fail},
		{name: "rsv3_set", send: []frame{textF("hello").rsvd(rsv3)}, close: codes(1002), note: fail},
		{name: "rsv1_rsv2_set_binary", send: []frame{binF(pattern(10)).rsvd(rsv1 | rsv2)}, close: codes(1002)},
		{name: "all_rsv_set_binary", send: []frame{binF(pattern(10)).rsvd(rsv1 | rsv2 | rsv3)}, close: codes(1002)},
		{name: "rsv1_on_empty_text", send: []frame{textF("").rsvd(rsv1)}, close: codes(1002)},
		{name: "rsv3_on_ping", send: []frame{pingF([]byte("p")).rsvd(rsv3)}, close: codes(1002)},
		{name: "rsv2_on_pong", send: []frame{pongF(nil).rsvd(rsv2)}, close: codes(1002)},
		{name: "rsv1_on_close", send: []frame{closeF(1000, "").rsvd(rsv1)}, close: codes(1002)},
		{name: "rsv2_on_continuation", send: []frame{textF("ab").frag(), contF([]byte("cd")).rsvd(rsv2)}, close: codes(1002)},
		{name: "rsv_after_valid_message_then_ping", send: []frame{textF("hello"), textF("hello").rsvd(rsv2), pingF([]byte("p"))},
			want: []item{textI("hello")}, mayDrop: true, close: codes(1002), note: "the ping after the bad frame must not be answered: the connection failed before it"},
		{name: "rsv_after_valid_message_per_frame", send: []frame{textF("hello"), textF("hello").rsvd(rsv3), pingF([]byte("p"))}, split: splitFrames,
			want: []item{textI("hello")}, mayDrop: true, close: codes(1002)},
		{name: "rsv_after_valid_message_byte_at_a_time", send: []frame{textF("hello"), textF("hello").rsvd(rsv1 | rsv3), pingF([]byte("p"))}, split: splitBytes,
			want: []item{textI("hello")}, mayDrop: true, close: codes(1002)},
	}
	return section{name: "5.2_reserved_bits", cases: cs}
}

// opcodesSection: Autobahn 4.x. Opcodes 3-7 and 11-15 are reserved (RFC 6455 5.2).
func opcodesSection() section {
	var cs []tcase
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cs = append(cs,
			tcase{name: fmt.Sprintf("opcode_%d_empty", op), send: []frame{{op: op}}, close: codes(1002)},
			tcase{name: fmt.Sprintf("opcode_%d_with_payload", op), send: []frame{{op: op, payload: []byte("reserved")}}, close: codes(1002)},
		)
	}
	cs = append(cs,
		tcase{name: "opcode_5_after_valid_message_then_ping", send: []frame{textF("hello"), {op: 5}, pingF([]byte("p"))},
			want: []item{textI("hello")}, mayDrop: true, close: codes(1002)},
		tcase{name: "opcode_13_after_valid_message_then_ping", send: []frame{textF("hello"), {op: 13, payload: []byte("x")}, pingF([]byte("p"))},
			want: []item{textI("hello")}, mayDrop: true, close: codes(1002)},
		tcase{name: "opcode_7_inside_fragmented_message", send: []frame{textF("ab").frag(), {op: 7}, contF([]byte("cd"))}, close: codes(1002)},
	)
	return section{name: "5.2_opcodes", cases: cs}
}

// maskingSection: RFC 6455 5.1 and 5.3 (Autobahn has no own category; it
// checks masking on every frame, as this suite does too).
func maskingSection() section {
	return section{name: "5.3_masking", cases: []tcase{
		{name: "unmasked_text_to_server", side: serverOnly, send: []frame{textF("hello").masked(maskForceOff)}, close: codes(1002),
			note: "RFC 6455 5.1: the server MUST close the connection upon receiving a frame that is not masked"},
		{name: "unmasked_empty_binary_to_server", side: serverOnly, send: []frame{binF(nil).masked(maskForceOff)}, close: codes(1002)},
		{name: "unmasked_ping_to_server", side: serverOnly, send: []frame{pingF([]byte("p")).masked(maskForceOff)}, close: codes(1002)},
		{name: "unmasked_continuation_to_server", side: serverOnly, send: []frame{textF("ab").frag(), contF([]byte("cd")).masked(maskForceOff)}, close: codes(1002)},
		{name: "unmasked_close_to_server", side: serverOnly, send: []frame{closeF(1000, "").masked(maskForceOff)}, close: codes(1002)},
		{name: "masked_text_to_client", side: clientOnly, send: []frame{textF("hello").masked(maskForceOn)}, close: codes(1002),
			note: "RFC 6455 5.1: a client MUST close a connection if it detects a masked frame"},
		{name: "masked_ping_to_client", side: clientOnly, send: []frame{pingF([]byte("p")).masked(maskForceOn)}, close: codes(1002)},
		{name: "masked_continuation_to_client", side: clientOnly, send: []frame{textF("ab").frag(), contF([]byte("cd")).masked(maskForceOn)}, close: codes(1002)},
		{name: "masked_close_to_client", side: clientOnly, send: []frame{closeF(1000, "").masked(maskForceOn)}, close: codes(1002)},
		{name: "server_never_masks", side: serverOnly, send: []frame{binF(pattern(300)), pingF([]byte("p")), textF("t")},
			want: []item{echoI(opBinary, pattern(300)), pongI([]byte("p")), textI("t")},
			note: "every frame read from the server is checked to be unmasked"},
		{name: "client_fresh_key_per_frame", side: clientOnly, send: twentyMessages(), want: twentyEchoes(), post: distinctKeys,
			note: "every frame read from the client is checked to be masked with a key unlike the previous one; " +
				"20 frames with 20 distinct random 32-bit keys is checked after the case (collision odds ~1e-7)"},
	}}
}

// distinctKeys checks that every frame the client sent had its own mask key.
func distinctKeys(t *testing.T, p *rawPeer) {
	if len(p.keys) != p.keyCount {
		t.Fatalf("client used %d distinct mask keys over %d frames (RFC 6455 5.3: a fresh key per frame)", len(p.keys), p.keyCount)
	}
}

func twentyMessages() []frame {
	var fs []frame
	for i := range 20 {
		fs = append(fs, textF(fmt.Sprintf("message %d", i)))
	}
	return fs
}

func twentyEchoes() []item {
	var is []item
	for i := range 20 {
		is = append(is, textI(fmt.Sprintf("message %d", i)))
	}
	return is
}

// fragmentationSection: Autobahn 5.x (RFC 6455 5.4).
func fragmentationSection() section {
	oneByte := fragments(opText, asciiText(1000), 1)
	oneByteBin := fragments(opBinary, pattern(1000), 1)
	return section{name: "5.4_fragmentation", cases: []tcase{
		{name: "text_two_fragments", send: []frame{textF("frag1 ").frag(), contF([]byte("frag2"))}, want: []item{textI("frag1 frag2")}},
		{name: "binary_two_fragments", send: []frame{binF(pattern(100)).frag(), contF(pattern(50))}, want: []item{echoI(opBinary, append(pattern(100), pattern(50)...))}},
		{name: "text_three_fragments_per_frame", send: []frame{textF("a").frag(), contF([]byte("b")).frag(), contF([]byte("c"))}, split: splitFrames, want: []item{textI("abc")}},
		{name: "empty_fragments", send: []frame{textF("").frag(), contF(nil).frag(), contF(nil)}, want: []item{textI("")}},
		{name: "empty_fragments_around_data", send: []frame{binF(nil).frag(), contF(pattern(3)).frag(), contF(nil)}, want: []item{echoI(opBinary, pattern(3))}},
		{name: "ping_between_fragments", send: []frame{textF("frag1 ").frag(), pingF([]byte("ping")), contF([]byte("frag2"))},
			want: []item{pongI([]byte("ping")), textI("frag1 frag2")}, note: "RFC 6455 5.4: control frames MAY be injected in the middle of a fragmented message"},
		{name: "ping_between_fragments_per_frame", send: []frame{textF("frag1 ").frag(), pingF([]byte("ping")), contF([]byte("frag2"))}, split: splitFrames,
			want: []item{pongI([]byte("ping")), textI("frag1 frag2")}},
		{name: "ping_between_fragments_byte_at_a_time", send: []frame{textF("frag1 ").frag(), pingF([]byte("ping")), contF([]byte("frag2"))}, split: splitBytes,
			want: []item{pongI([]byte("ping")), textI("frag1 frag2")}},
		{name: "pong_between_fragments", send: []frame{textF("frag1 ").frag(), pongF([]byte("pong")), contF([]byte("frag2"))}, want: []item{textI("frag1 frag2")}},
		{name: "pings_between_every_fragment", send: []frame{binF(pattern(3)).frag(), pingF([]byte("1")), contF(pattern(2)).frag(), pingF([]byte("2")), contF(pattern(1))},
			want: []item{pongI([]byte("1")), pongI([]byte("2")), echoI(opBinary, cat(pattern(3), pattern(2), pattern(1)))}},
		{name: "continuation_without_start", send: []frame{contF([]byte("orphan"))}, close: codes(1002)},
		{name: "continuation_without_start_not_final", send: []frame{contF([]byte("orphan")).frag()}, close: codes(1002)},
		{name: "continuation_after_finished_message", send: []frame{textF("done"), contF([]byte("late"))}, want: []item{textI("done")}, mayDrop: true, close: codes(1002)},
		{name: "continuation_without_start_then_text", send: []frame{contF([]byte("a")).frag(), textF("b"), contF([]byte("c"))}, close: codes(1002)},
		{name: "new_text_while_fragmented_text_open", send: []frame{textF("a").frag(), textF("b")}, close: codes(1002),
			note: "RFC 6455 5.4: fragments of one message MUST NOT be interleaved with another data frame"},
		{name: "new_binary_while_fragmented_text_open", send: []frame{textF("a").frag(), binF(pattern(2))}, close: codes(1002)},
		{name: "new_text_fragment_while_fragmented_binary_open", send: []frame{binF(pattern(2)).frag(), textF("b").frag()}, close: codes(1002)},
		{name: "fragmented_ping", send: []frame{pingF([]byte("a")).frag(), contF([]byte("b"))}, close: codes(1002),
			note: "RFC 6455 5.5: control frames MUST NOT be fragmented"},
		{name: "fragmented_pong", send: []frame{pongF([]byte("a")).frag(), contF([]byte("b"))}, close: codes(1002)},
		{name: "fragmented_close", send: []frame{closeF(1000, "a").frag(), contF([]byte("b"))}, close: codes(1002)},
		{name: "fragmented_ping_inside_fragmented_text", send: []frame{textF("a").frag(), pingF([]byte("p")).frag(), contF([]byte("b"))}, close: codes(1002)},
		{name: "ping_right_after_large_message", send: []frame{binF(pattern(4 << 20)), pingF([]byte("p"))},
			want: []item{echoI(opBinary, pattern(4<<20)), pongI([]byte("p"))}, timeout: 30e9,
			note: "the pong may go out while the library is still writing the echo: only between frames, never inside one"},
		{name: "ping_inside_large_fragmented_message", send: []frame{binF(pattern(1 << 20)).frag(), pingF([]byte("p")), contF(pattern(1 << 20))},
			want: []item{pongI([]byte("p")), echoI(opBinary, cat(pattern(1<<20), pattern(1<<20)))}, timeout: 30e9},
		{name: "many_1_byte_text_fragments", send: oneByte, want: []item{echoI(opText, asciiText(1000))}},
		{name: "many_1_byte_binary_fragments", send: oneByteBin, want: []item{echoI(opBinary, pattern(1000))}},
		{name: "many_1_byte_fragments_per_frame", send: fragments(opText, asciiText(100), 1), split: splitFrames, want: []item{echoI(opText, asciiText(100))}},
	}}
}

// controlFramesSection: RFC 6455 5.5 (Autobahn 2.5 and parts of 5.x).
func controlFramesSection() section {
	return section{name: "5.5_control_frames", cases: []tcase{
		{name: "ping_126_bytes", send: []frame{pingF(pattern(126))}, close: codes(1002), note: "RFC 6455 5.5: control frames MUST have a payload of 125 bytes or less"},
		{name: "ping_65536_bytes", send: []frame{pingF(pattern(65536))}, close: codes(1002)},
		{name: "pong_126_bytes", send: []frame{pongF(pattern(126))}, close: codes(1002)},
		{name: "close_126_bytes", send: []frame{closeF(1000, strings.Repeat("r", 124))}, close: codes(1002)},
		{name: "ping_declares_huge_length", send: []frame{pingF(nil).declare(1 << 40)}, close: codes(1002),
			note: "the declared length alone breaks the 125-byte rule; the tester sends no payload"},
		{name: "ping_125_in_16bit_encoding", send: []frame{pingF(pattern(5)).enc(len16)}, want: []item{pongI(pattern(5))}, orFail1002: true,
			note: "non-minimal length: see 5.2_framing; a control frame whose length is <= 125 either way may be answered or fail with 1002"},
	}}
}

// pingSection: Autobahn 2.x (RFC 6455 5.5.2).
func pingSection() section {
	var tenPings []frame
	var tenPongs []item
	for i := range 10 {
		p := []byte(fmt.Sprintf("ping %d", i))
		tenPings = append(tenPings, pingF(p))
		tenPongs = append(tenPongs, pongI(p))
	}
	return section{name: "5.5.2_ping", cases: []tcase{
		{name: "empty_ping", send: []frame{pingF(nil)}, want: []item{pongI(nil)}},
		{name: "ping_text_payload", send: []frame{pingF([]byte("Hello, world!"))}, want: []item{pongI([]byte("Hello, world!"))}},
		{name: "ping_binary_payload", send: []frame{pingF([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})}, want: []item{pongI([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})}},
		{name: "ping_125_bytes", send: []frame{pingF(pattern(125))}, want: []item{pongI(pattern(125))}},
		{name: "ping_125_bytes_byte_at_a_time", send: []frame{pingF(pattern(125))}, split: splitBytes, want: []item{pongI(pattern(125))}},
		{name: "ping_126_bytes", send: []frame{pingF(pattern(126))}, close: codes(1002)},
		{name: "ten_pings_in_a_row", send: tenPings, want: tenPongs,
			note: "RFC 6455 5.5.3 lets an endpoint answer only the latest of several unanswered pings; this suite requires an answer to each, as the project brief does"},
		{name: "ten_pings_per_frame", send: tenPings, split: splitFrames, want: tenPongs},
		{name: "ping_then_close", send: []frame{pingF([]byte("last")), closeF(1000, "")}, want: []item{pongI([]byte("last"))}, close: codes(1000)},
		{name: "library_ping_empty", send: []frame{textF("ping:")}, want: []item{textI("ping:"), {op: opPing}},
			note: "the echo peer calls Ping after echoing \"ping:<payload>\"; the library's ping frame is checked like every frame it sends"},
		{name: "library_ping_payload", send: []frame{textF("ping:hello")}, want: []item{textI("ping:hello"), {op: opPing, data: []byte("hello")}}},
		{name: "library_ping_125_bytes", send: []frame{textB(append([]byte("ping:"), asciiText(125)...))},
			want: []item{echoI(opText, append([]byte("ping:"), asciiText(125)...)), {op: opPing, data: asciiText(125)}}},
		{name: "ping_between_messages", send: []frame{textF("a"), pingF([]byte("p")), textF("b")}, want: []item{textI("a"), pongI([]byte("p")), textI("b")}},
	}}
}

// pongSection: Autobahn 2.x (RFC 6455 5.5.3).
func pongSection() section {
	return section{name: "5.5.3_pong", cases: []tcase{
		{name: "unsolicited_empty_pong_ignored", send: []frame{pongF(nil), textF("after")}, want: []item{textI("after")},
			note: "RFC 6455 5.5.3: a Pong MAY be sent unsolicited; no response is expected"},
		{name: "unsolicited_pong_with_payload_ignored", send: []frame{pongF([]byte("unsolicited")), textF("after")}, want: []item{textI("after")}},
		{name: "unsolicited_125_byte_pong_ignored", send: []frame{pongF(pattern(125)), binF(pattern(3))}, want: []item{echoI(opBinary, pattern(3))}},
		{name: "unsolicited_pong_then_ping", send: []frame{pongF([]byte("x")), pingF([]byte("y"))}, want: []item{pongI([]byte("y"))}},
		{name: "pong_126_bytes", send: []frame{pongF(pattern(126))}, close: codes(1002)},
	}}
}

// closeSection: Autobahn 7.1-7.5 (RFC 6455 5.5.1 and 7.1.6).
func closeSection() section {
	r123 := strings.Repeat("r", 123)
	return section{name: "5.5.1_close", cases: []tcase{
		{name: "empty_close", send: []frame{rawClose(nil)}, close: codes(1000, codeEmpty),
			note: "RFC 6455 5.5.1: a close with no status may be answered with no status or with 1000"},
		{name: "close_1_byte_payload", send: []frame{rawClose([]byte{0x03})}, close: codes(1002),
			note: "RFC 6455 5.5.1: a body, if present, starts with a 2-byte code"},
		{name: "close_1000_no_reason", send: []frame{closeF(1000, "")}, close: codes(1000)},
		{name: "close_1000_with_reason", send: []frame{closeF(1000, "bye")}, close: codes(1000)},
		{name: "close_125_byte_payload", send: []frame{closeF(1000, r123)}, close: codes(1000)},
		{name: "close_126_byte_payload", send: []frame{closeF(1000, r123+"r")}, close: codes(1002)},
		{name: "close_reason_utf8", send: []frame{closeF(1000, "κόσμε ✓")}, close: codes(1000)},
		{name: "close_reason_invalid_utf8_surrogate", send: []frame{rawClose(append(closePayload(1000, "κόσμε"), 0xed, 0xa0, 0x80, 'x'))}, close: codes(1007),
			note: "RFC 6455 5.5.1 and 8.1: the reason is UTF-8; invalid data fails with 1007"},
		{name: "close_reason_invalid_utf8_lone_continuation", send: []frame{rawClose(append(closePayload(1000, "ok"), 0x80))}, close: codes(1007)},
		{name: "close_reason_truncated_utf8", send: []frame{rawClose(append(closePayload(1000, "ok"), 0xe2, 0x82))}, close: codes(1007)},
		{name: "close_byte_at_a_time", send: []frame{closeF(1000, "bye")}, split: splitBytes, close: codes(1000)},
		{name: "data_after_close_ignored", send: []frame{closeF(1000, ""), textF("after close")}, close: codes(1000),
			note: "RFC 6455 5.5.1: after sending a Close the endpoint sends no more data; the library must not echo what follows the close"},
		{name: "ping_after_close_ignored", send: []frame{closeF(1000, ""), pingF([]byte("x"))}, close: codes(1000)},
		{name: "close_after_close", send: []frame{closeF(1000, ""), closeF(1001, "")}, close: codes(1000),
			note: "only the first close counts; a second one gets no second answer"},
		{name: "close_inside_fragmented_message", send: []frame{textF("ab").frag(), closeF(1000, "")}, close: codes(1000),
			note: "a close is a control frame and may be injected between fragments; the unfinished message is dropped"},
		{name: "message_then_close_one_write", send: []frame{textF("last"), closeF(1000, "")}, want: []item{textI("last")}, mayDrop: true, close: codes(1000)},
	}}
}

// closeCodesSection: Autobahn 7.7 and 7.9 (RFC 6455 7.4).
//
// Valid: 1000-1003, 1007-1011 from RFC 6455, 1012-1014 registered later in the
// IANA WebSocket close code registry (a peer may send them, so they are
// echoed), and 3000-4999. Invalid on the wire: 0-999 (unused), 1004 (reserved),
// 1005, 1006 and 1015 (MUST NOT be sent), 1016-2999 (reserved for future
// revisions), 5000 and above (outside every range).
func closeCodesSection() section {
	var cs []tcase
	for _, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cs = append(cs, tcase{name: fmt.Sprintf("valid_code_%d_echoed", c), send: []frame{closeF(c, "")}, close: codes(c),
			note: "RFC 6455 5.5.1: the endpoint typically echoes the status code it received"})
	}
	for _, c := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		// Built by hand: closeF treats 1005 as "no status" and would send an empty body.
		body := binary.BigEndian.AppendUint16(nil, c)
		cs = append(cs, tcase{name: fmt.Sprintf("invalid_code_%d", c), send: []frame{rawClose(body)}, close: codes(1002)},
			tcase{name: fmt.Sprintf("invalid_code_%d_with_reason", c), send: []frame{rawClose(append(body, "reason"...))}, close: codes(1002)})
	}
	cs = append(cs, tcase{name: "valid_code_with_reason_4000", send: []frame{closeF(4000, "app reason")}, close: codes(4000)})
	return section{name: "7.4_close_codes", cases: cs}
}

// closingSection: RFC 6455 7.1 (TCP close after the closing handshake, and
// connections that end without one).
func closingSection() section {
	valid := []uint16{codeEmpty, 1000, 1001, 1002, 1011}
	return section{name: "7.1_closing", cases: []tcase{
		{name: "server_closes_tcp_after_close_handshake", side: serverOnly, send: []frame{closeF(1000, "")}, close: codes(1000),
			note: "RFC 6455 7.1.1: the server should close TCP first; the tester keeps its end open and waits"},
		{name: "client_closes_tcp_when_server_does_not", side: clientOnly, send: []frame{closeF(1000, "")}, close: codes(1000), noReply: true,
			note: "RFC 6455 7.1.1: the client waits for the server to close TCP, then gives up after a bounded time (CloseTimeout 1s here)"},
		{name: "failed_connection_closes_tcp_without_reply", send: []frame{textF("x").rsvd(rsv1)}, close: codes(1002), noReply: true,
			note: "the tester never answers the library's close: TCP must still be closed within the close timeout"},
		{name: "half_closed_tcp_without_close_frame", halfClose: true, close: valid, closeOrEOF: true, libCode: 1006,
			note: "RFC 6455 7.1.5: TCP closed without a close frame gives status 1006; the library may send a close of its own (never 1006) and must close TCP"},
		{name: "half_closed_tcp_inside_fragmented_message", send: []frame{textF("ab").frag()}, halfClose: true, close: valid, closeOrEOF: true, libCode: 1006},
		{name: "half_closed_tcp_inside_frame", send: []frame{binF(pattern(10)).declare(100)}, halfClose: true, close: valid, closeOrEOF: true, libCode: 1006},
		{name: "peer_closes_tcp_right_after_close_frame", send: []frame{closeF(4002, "bye")}, halfClose: true, close: codes(4002), closeOrEOF: true, libCode: 4002,
			note: "the close frame arrived before the FIN, so the library reports the peer's code, not 1006"},
		{name: "close_code_seen_by_reader", send: []frame{closeF(4001, "why")}, close: codes(4001), libCode: 4001,
			note: "the library's reader ends with the peer's close code"},
		{name: "reader_reports_1002_after_protocol_error", send: []frame{textF("x").rsvd(rsv2)}, close: codes(1002), libCode: 1002,
			note: "the application learns why the library failed the connection"},
		{name: "reader_reports_1007_after_invalid_utf8", send: []frame{textF("a\xffb")}, close: codes(1007), libCode: 1007},
		{name: "reader_reports_1009_over_limit", maxLength: 16, send: []frame{binF(pattern(17))}, close: codes(1009), libCode: 1009},
	}}
}

// startClosingSection: RFC 6455 7.1.2 with the library as the side that
// starts the closing handshake (its Close method, called by the echo peer
// after it echoed the text "close <code> <reason>").
func startClosingSection() section {
	cmd := func(s string) tcase { return tcase{send: []frame{textF(s)}, want: []item{textI(s)}} }
	with := func(c tcase, name string, codes []uint16, reason string) tcase {
		c.name, c.close, c.reason = name, codes, reason
		return c
	}
	noReply := with(cmd("close 4001 no reply"), "no_reply_closes_tcp_after_timeout", codes(4001), "no reply")
	noReply.noReply = true
	noReply.note = "the tester never answers: the library must drop TCP after its close timeout (1s here)"
	late := with(cmd("close 1000"), "peer_data_after_library_close_not_answered", codes(1000), "")
	late.afterClose = []frame{textF("late"), binF(pattern(10))}
	late.waitEOF = true
	// A ping at this point is left out on purpose: RFC 6455 5.5.2 requires a
	// pong unless a close was *received*, so a pong after one's own close is
	// allowed, and skipping it is common practice; neither is asserted.
	late.note = "RFC 6455 5.5.1: after sending a close the library sends no more data frames; the late messages must not be echoed"
	return section{name: "7.1.2_start_closing", cases: []tcase{
		with(cmd("close 4000 bye"), "close_4000_with_reason", codes(4000), "bye"),
		with(cmd("close 1000"), "close_1000_no_reason", codes(1000), ""),
		with(cmd("close 1001 going away"), "close_1001", codes(1001), "going away"),
		with(cmd("close 3000 κόσμε"), "close_utf8_reason", codes(3000), "κόσμε"),
		noReply,
		late,
	}}
}

// limitsSection: Autobahn 9.x (large messages, many small frames) and the max
// length of RFC 6455 10.4, which must fail with 1009 as soon as it is exceeded.
func limitsSection() section {
	const lim = 1024
	const early = "the rest of the message is never sent: the library must decide from what it has"
	big := func(n int) []byte { return pattern(n) }
	// Shared between what is sent and what must come back: nothing mutates them.
	b4, b16 := big(4<<20), big(16<<20)
	var small []frame
	var smallEcho []item
	for i := range 1000 {
		b := []byte(fmt.Sprintf("small message %04d", i))
		small = append(small, textB(b))
		smallEcho = append(smallEcho, echoI(opText, b))
	}
	return section{name: "10.4_limits", cases: []tcase{
		{name: "text_at_limit", maxLength: lim, send: []frame{textB(asciiText(lim))}, want: []item{echoI(opText, asciiText(lim))}},
		{name: "binary_over_limit", maxLength: lim, send: []frame{binF(big(lim + 1))}, close: codes(1009)},
		{name: "fragmented_at_limit", maxLength: lim, send: fragments(opBinary, big(lim), 256), want: []item{echoI(opBinary, big(lim))}},
		{name: "fragmented_over_limit", maxLength: lim, send: fragments(opBinary, big(lim+1), 256), close: codes(1009),
			note: "RFC 6455 10.4 and the brief: the limit applies to the message summed over its fragments"},
		{name: "fragmented_over_limit_unfinished", maxLength: lim, send: []frame{binF(big(600)).frag(), contF(big(600)).frag()}, close: codes(1009), note: early},
		{name: "declared_length_over_limit_no_payload", maxLength: lim, send: []frame{binF(nil).declare(lim + 1)}, close: codes(1009), note: early},
		{name: "declared_huge_length", maxLength: lim, send: []frame{binF(big(16)).declare(1 << 40)}, close: codes(1009), note: early},
		{name: "declared_max_int63_length", send: []frame{binF(big(16)).declare(1<<63 - 1)}, close: codes(1009), note: early},
		{name: "fragment_sum_overflows_int64", send: []frame{binF(big(10)).frag(), contF(big(16)).declare(1<<63 - 1)}, close: codes(1009),
			note: "10 + (2^63-1) overflows a signed 64-bit sum; the limit check must not wrap. " + early},
		{name: "no_limit_huge_declared_length_no_preallocation", maxLength: -1, send: []frame{binF(big(16)).declare(1 << 40)}, halfClose: true,
			close: codes(codeEmpty, 1000, 1001, 1002, 1011), closeOrEOF: true, libCode: 1006,
			note: "with no limit (MaxLength -1) a 1 TiB frame is legal: the library must wait for its bytes rather than allocate them up front (a crash here kills the test binary); the tester then half-closes"},
		{name: "default_limit_declared_64MiB", send: []frame{binF(big(16)).declare(0x4000000)}, close: codes(1009),
			note: "default max length 0x3ffffff; 0x4000000 is one byte over. " + early},
		{name: "many_small_messages", send: small, want: smallEcho},
		{name: "many_small_messages_per_frame", send: small[:200], split: splitFrames, want: smallEcho[:200]},
		{name: "2000_one_byte_fragments", send: fragments(opBinary, big(2000), 1), want: []item{echoI(opBinary, big(2000))}},
		{name: "text_1MiB", send: []frame{textB(asciiText(1 << 20))}, want: []item{echoI(opText, asciiText(1<<20))}, timeout: 20e9},
		{name: "binary_4MiB", send: []frame{binF(b4)}, want: []item{echoI(opBinary, b4)}, timeout: 30e9},
		{name: "binary_16MiB", send: []frame{binF(b16)}, want: []item{echoI(opBinary, b16)}, timeout: 60e9},
		{name: "binary_4MiB_in_64KiB_fragments", send: fragments(opBinary, b4, 64<<10), want: []item{echoI(opBinary, b4)}, timeout: 30e9},
	}}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
