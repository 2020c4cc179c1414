package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// clientFrame builds a masked frame, as a client sends it.
func clientFrame(fin bool, rsv uint8, op opcode, payload []byte) []byte {
	return appendFrame(nil, fin, rsv, op, payload, true)
}

// decoded is what a decoder reported for a whole input: messages
// reassembled, control frames and the error it stopped with.
type decoded struct {
	events []string
	err    error
}

// decodeAll feeds input to a fresh server-side decoder in pieces of size
// step (0: all at once) and records what it reports.
func decodeAll(d *decoder, input []byte, step int) decoded {
	var out decoded
	var msg []byte
	for len(input) > 0 {
		k := len(input)
		if step > 0 && step < k {
			k = step
		}
		chunk := bytes.Clone(input[:k])
		input = input[k:]
		for len(chunk) > 0 {
			n, ev, err := d.parse(chunk)
			chunk = chunk[n:]
			if err != nil {
				out.err = err
				return out
			}
			switch ev.kind {
			case eventData:
				msg = append(msg, ev.data...)
				if ev.fin {
					out.events = append(out.events, fmt.Sprintf("%v:%q", ev.typ, msg))
					msg = nil
				}
			case eventPing, eventPong:
				out.events = append(out.events, fmt.Sprintf("%v:%q", ev.kind, ev.data))
			case eventClose:
				out.events = append(out.events, fmt.Sprintf("close:%d:%q", ev.code, ev.reason))
			}
		}
	}
	return out
}

func (k eventKind) String() string {
	return [...]string{"none", "data", "ping", "pong", "close"}[k]
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func TestDecoder(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 70000)
	cases := []struct {
		name    string
		in      []byte
		want    []string
		wantErr error
	}{
		{"text", clientFrame(true, 0, opText, []byte("hello")), []string{`text:"hello"`}, nil},
		{"empty binary", clientFrame(true, 0, opBinary, nil), []string{`binary:""`}, nil},
		{"64-bit length", clientFrame(true, 0, opBinary, long), []string{fmt.Sprintf("binary:%q", long)}, nil},
		{"fragments with ping between", cat(
			clientFrame(false, 0, opText, []byte("hel")),
			clientFrame(true, 0, opPing, []byte("p")),
			clientFrame(false, 0, opContinuation, nil),
			clientFrame(true, 0, opContinuation, []byte("lo")),
		), []string{`ping:"p"`, `text:"hello"`}, nil},
		{"pong and close", cat(
			clientFrame(true, 0, opPong, []byte("x")),
			clientFrame(true, 0, opClose, append([]byte{0x03, 0xe8}, "bye"...)),
		), []string{`pong:"x"`, `close:1000:"bye"`}, nil},
		{"unmasked client frame", appendFrame(nil, true, 0, opText, []byte("x"), false), nil, errUnmaskedClient},
		{"rsv1 without extension", clientFrame(true, rsv1, opText, []byte("x")), nil, errReservedBits},
		{"rsv2", clientFrame(true, rsv2, opText, []byte("x")), nil, errReservedBits},
		{"rsv3 on ping", clientFrame(true, rsv3, opPing, nil), nil, errReservedBits},
		{"opcode 3", clientFrame(true, 0, 3, nil), nil, errReservedOpcode},
		{"opcode 11", clientFrame(true, 0, 11, nil), nil, errReservedOpcode},
		{"fragmented ping", clientFrame(false, 0, opPing, nil), nil, errFragmentedControl},
		{"126-byte ping", clientFrame(true, 0, opPing, make([]byte, 126)), nil, errControlTooLong},
		{"continuation first", clientFrame(true, 0, opContinuation, []byte("x")), nil, errUnexpectedContinue},
		{"text inside text", cat(clientFrame(false, 0, opText, []byte("a")), clientFrame(true, 0, opText, []byte("b"))), nil, errExpectedContinue},
		{"invalid UTF-8", clientFrame(true, 0, opText, []byte{0xff}), nil, errInvalidUTF8},
		{"UTF-8 truncated at end", clientFrame(true, 0, opText, []byte{0xe2, 0x82}), nil, errInvalidUTF8},
		{"UTF-8 split over fragments", cat(clientFrame(false, 0, opText, []byte{0xe2, 0x82}), clientFrame(true, 0, opContinuation, []byte{0xac})), []string{`text:"€"`}, nil},
		{"invalid UTF-8 in binary is fine", clientFrame(true, 0, opBinary, []byte{0xff}), []string{`binary:"\xff"`}, nil},
		{"close with 1 byte", clientFrame(true, 0, opClose, []byte{1}), nil, errCloseOneByte},
		{"close reason not UTF-8", clientFrame(true, 0, opClose, []byte{0x03, 0xe8, 0xc0}), nil, errCloseReasonUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 2, 3, 7} {
				d := &decoder{expectMasked: true, maxLength: DefaultMaxLength}
				got := decodeAll(d, tc.in, step)
				if tc.wantErr != nil {
					if !errors.Is(got.err, tc.wantErr) {
						t.Fatalf("step %d: error %v, want %v", step, got.err, tc.wantErr)
					}
					continue
				}
				if got.err != nil {
					t.Fatalf("step %d: unexpected error %v", step, got.err)
				}
				if fmt.Sprint(got.events) != fmt.Sprint(tc.want) {
					t.Fatalf("step %d: events %v, want %v", step, got.events, tc.want)
				}
			}
		})
	}
}

func TestDecoderClientSide(t *testing.T) {
	d := &decoder{expectMasked: false}
	got := decodeAll(d, appendFrame(nil, true, 0, opText, []byte("hi"), false), 0)
	if got.err != nil || fmt.Sprint(got.events) != `[text:"hi"]` {
		t.Fatalf("unmasked server frame: %v %v", got.events, got.err)
	}
	d = &decoder{expectMasked: false}
	if got := decodeAll(d, clientFrame(true, 0, opText, []byte("hi")), 0); !errors.Is(got.err, errMaskedServer) {
		t.Fatalf("masked server frame: %v", got.err)
	}
}

// A message over the limit is refused as soon as a header announces it,
// whole or summed over fragments, before its payload arrives.
func TestDecoderMaxLength(t *testing.T) {
	d := &decoder{expectMasked: true, maxLength: 10}
	hdr := appendFrameHeader(nil, true, 0, opBinary, 1<<40, true, [4]byte{})
	if _, _, err := d.parse(hdr); !errors.Is(err, errTooBig) {
		t.Fatalf("huge announced length: %v", err)
	}
	d = &decoder{expectMasked: true, maxLength: 10}
	in := cat(clientFrame(false, 0, opText, []byte("123456")), clientFrame(true, 0, opContinuation, []byte("78901")))
	if got := decodeAll(d, in, 0); !errors.Is(got.err, errTooBig) {
		t.Fatalf("fragments over the limit: %v", got.err)
	}
	d = &decoder{expectMasked: true, maxLength: 10}
	in = cat(clientFrame(false, 0, opText, []byte("12345")), clientFrame(true, 0, opContinuation, []byte("67890")))
	if got := decodeAll(d, in, 0); got.err != nil {
		t.Fatalf("exactly the limit: %v", got.err)
	}
}

// Invalid UTF-8 fails at the byte that makes it invalid, before the rest of
// the message arrives.
func TestDecoderUTF8FailFast(t *testing.T) {
	payload := append([]byte("valid start "), 0xed, 0xa0, 0x80) // a surrogate
	payload = append(payload, bytes.Repeat([]byte("x"), 1000)...)
	frame := clientFrame(true, 0, opText, payload)
	hdr := frameHeaderSize(int64(len(payload)), true)
	d := &decoder{expectMasked: true}
	// Up to the surrogate's second byte nothing is wrong yet.
	if _, _, err := d.parse(bytes.Clone(frame[:hdr+13])); err != nil {
		t.Fatalf("prefix before the bad byte: %v", err)
	}
	if _, _, err := d.parse(bytes.Clone(frame[hdr+13 : hdr+14])); !errors.Is(err, errInvalidUTF8) {
		t.Fatalf("bad byte: %v", err)
	}
}

func TestDecoderRSV1WithCompression(t *testing.T) {
	d := &decoder{expectMasked: true, allowRSV1: true}
	in := cat(clientFrame(false, rsv1, opText, []byte{0xff}), clientFrame(true, 0, opContinuation, []byte{1}))
	var evs []event
	for len(in) > 0 {
		n, ev, err := d.parse(in)
		if err != nil {
			t.Fatal(err)
		}
		in = in[n:]
		if ev.kind == eventData {
			evs = append(evs, ev)
		}
	}
	// Compressed text is validated after inflating, not on the wire.
	if len(evs) != 2 || !evs[0].compressed || !evs[1].compressed {
		t.Fatalf("events %+v", evs)
	}
	d = &decoder{expectMasked: true, allowRSV1: true}
	in = cat(clientFrame(false, rsv1, opText, nil), clientFrame(true, rsv1, opContinuation, nil))
	if got := decodeAll(d, in, 0); !errors.Is(got.err, errReservedBits) {
		t.Fatalf("RSV1 on a continuation: %v", got.err)
	}
}

func TestDecoderStickyError(t *testing.T) {
	d := &decoder{expectMasked: true}
	if _, _, err := d.parse(clientFrame(true, 0, 3, nil)); err == nil {
		t.Fatal("no error")
	}
	if _, _, err := d.parse(clientFrame(true, 0, opText, []byte("ok"))); !errors.Is(err, errReservedOpcode) {
		t.Fatalf("after an error: %v", err)
	}
}

// A compressed message is limited after inflating; on the wire it may be
// a little larger than the limit (incompressible data grows slightly).
func TestDecoderCompressedSlack(t *testing.T) {
	const limit = 1000
	ok := appendFrameHeader(nil, true, rsv1, opBinary, limit+compressedSlack(limit), true, [4]byte{})
	d := &decoder{expectMasked: true, allowRSV1: true, maxLength: limit}
	if _, _, err := d.parse(ok); err != nil {
		t.Fatalf("compressed frame within the slack: %v", err)
	}
	over := appendFrameHeader(nil, true, rsv1, opBinary, limit+compressedSlack(limit)+1, true, [4]byte{})
	d = &decoder{expectMasked: true, allowRSV1: true, maxLength: limit}
	if _, _, err := d.parse(over); !errors.Is(err, errTooBig) {
		t.Fatalf("compressed frame over the slack: %v", err)
	}
	plain := appendFrameHeader(nil, true, 0, opBinary, limit+1, true, [4]byte{})
	d = &decoder{expectMasked: true, allowRSV1: true, maxLength: limit}
	if _, _, err := d.parse(plain); !errors.Is(err, errTooBig) {
		t.Fatalf("uncompressed frame over the limit: %v", err)
	}
}
