package websocket

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameHeaderRoundTrip(t *testing.T) {
	lengths := []int64{0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 32, 1<<63 - 1}
	for _, length := range lengths {
		for _, masked := range []bool{false, true} {
			for _, op := range []opcode{opContinuation, opText, opBinary, opClose, opPing, opPong} {
				key := [4]byte{1, 2, 3, 4}
				b := appendFrameHeader(nil, true, rsv1, op, length, masked, key)
				if len(b) != frameHeaderSize(length, masked) {
					t.Fatalf("length %d masked %v: header is %d bytes, frameHeaderSize says %d", length, masked, len(b), frameHeaderSize(length, masked))
				}
				h, n, err := parseFrameHeader(b)
				if err != nil || n != len(b) {
					t.Fatalf("length %d: parse = %d, %v; want %d", length, n, err, len(b))
				}
				want := frameHeader{fin: true, rsv: rsv1, opcode: op, masked: masked, length: length}
				if masked {
					want.maskKey = key
				}
				if h != want {
					t.Fatalf("got %+v, want %+v", h, want)
				}
				// Every strict prefix is "not yet complete", never an error.
				for i := 0; i < len(b); i++ {
					if _, n, err := parseFrameHeader(b[:i]); n != 0 || err != nil {
						t.Fatalf("prefix %d of %x: n=%d err=%v", i, b, n, err)
					}
				}
			}
		}
	}
}

func TestFrameHeaderRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"64-bit length with top bit", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, errLengthTopBit},
		{"16-bit length below 126", []byte{0x82, 126, 0, 125}, errNonMinimalLength},
		{"64-bit length below 65536", []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, errNonMinimalLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := parseFrameHeader(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendFrameMasksCopy(t *testing.T) {
	payload := []byte("hello, world")
	orig := bytes.Clone(payload)
	f := appendFrame(nil, true, 0, opText, payload, true)
	if !bytes.Equal(payload, orig) {
		t.Fatal("appendFrame modified the caller's payload")
	}
	h, n, err := parseFrameHeader(f)
	if err != nil || !h.masked {
		t.Fatalf("header %+v, %v", h, err)
	}
	body := bytes.Clone(f[n:])
	maskBytes(h.maskKey, 0, body)
	if !bytes.Equal(body, payload) {
		t.Fatalf("unmasked %q, want %q", body, payload)
	}
}

func TestOpcodeClasses(t *testing.T) {
	for op := opcode(0); op < 16; op++ {
		known := op <= 2 || (op >= 8 && op <= 10)
		if op.isKnown() != known {
			t.Errorf("%v: isKnown = %v", op, op.isKnown())
		}
		if op.isControl() != (op >= 8) {
			t.Errorf("%v: isControl = %v", op, op.isControl())
		}
	}
}
