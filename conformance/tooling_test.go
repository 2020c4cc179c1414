package conformance

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// The suite is only as good as its tooling; these tests check the tester's own
// frame codec and UTF-8 prefix rule without the library.

func TestToolingFrameRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range boundaryLengths {
		for _, mask := range []bool{false, true} {
			f := binF(pattern(n))
			b := encodeFrame(f, mask, rng)
			got, err := readFrame(bufio.NewReader(bytes.NewReader(b)), maxFrame)
			if err != nil {
				t.Fatalf("len %d mask %v: %v", n, mask, err)
			}
			if !got.fin || got.op != opBinary || got.masked != mask || !got.minimal || !bytes.Equal(got.payload, f.payload) {
				t.Fatalf("len %d mask %v: round trip gave fin=%v op=%d masked=%v minimal=%v len=%d",
					n, mask, got.fin, got.op, got.masked, got.minimal, len(got.payload))
			}
		}
	}
	for _, enc := range []lenMode{len16, len64} {
		got, err := readFrame(bufio.NewReader(bytes.NewReader(encodeFrame(textF("x").enc(enc), false, rng))), maxFrame)
		if err != nil || got.minimal {
			t.Fatalf("forced encoding %d: minimal=%v err=%v, want a non-minimal frame", enc, got.minimal, err)
		}
	}
	h := encodeFrame(binF(nil).declare(1<<63|5), false, rng)
	if len(h) != 10 || h[1] != 127 || h[2] != 0x80 {
		t.Fatalf("top-bit length header % x", h)
	}
}

// TestToolingValidPrefix compares validPrefix with a brute force over the
// interesting bytes: a prefix is valid iff some run of continuation bytes
// completes it into valid UTF-8.
func TestToolingValidPrefix(t *testing.T) {
	alpha := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff}
	conts := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	completes := func(p []byte) bool {
		if utf8.Valid(p) {
			return true
		}
		var try func(s []byte, depth int) bool
		try = func(s []byte, depth int) bool {
			if depth == 0 {
				return false
			}
			for _, c := range conts {
				n := append(s[:len(s):len(s)], c)
				if utf8.Valid(n) || try(n, depth-1) {
					return true
				}
			}
			return false
		}
		return try(p, 3)
	}
	var walk func(p []byte)
	walk = func(p []byte) {
		if len(p) > 0 {
			if got, want := validPrefix(p), completes(p); got != want {
				t.Fatalf("validPrefix(% x) = %v, brute force says %v", p, got, want)
			}
		}
		if len(p) == 3 {
			return
		}
		for _, b := range alpha {
			walk(append(p[:len(p):len(p)], b))
		}
	}
	walk(nil)
	for _, s := range invalidUTF8 {
		if utf8.ValidString(s.data) {
			t.Fatalf("invalid sample %s is valid UTF-8", s.name)
		}
	}
	for _, s := range validUTF8 {
		if !utf8.ValidString(s.data) {
			t.Fatalf("valid sample %s is not valid UTF-8", s.name)
		}
	}
}
