package websocket

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUTF8Table covers the classic edge cases one sequence at a time, each fed
// whole and one byte per feed, with the expected verdict written out by hand.
func TestUTF8Table(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		valid bool // complete, valid message
		// failAt is the index of the byte whose feed must first return false,
		// or -1 when every feed must succeed (valid or merely truncated).
		failAt int
	}{
		{"empty", "", true, -1},
		{"ascii", "hello, world", true, -1},
		{"nul", "\x00", true, -1},
		{"U+007F", "\x7f", true, -1},
		{"U+0080", "\xc2\x80", true, -1},
		{"U+07FF", "\xdf\xbf", true, -1},
		{"U+0800", "\xe0\xa0\x80", true, -1},
		{"U+0FFF", "\xe0\xbf\xbf", true, -1},
		{"U+1000", "\xe1\x80\x80", true, -1},
		{"U+CFFF", "\xec\xbf\xbf", true, -1},
		{"U+D000", "\xed\x80\x80", true, -1},
		{"U+D7FF", "\xed\x9f\xbf", true, -1},
		{"U+E000", "\xee\x80\x80", true, -1},
		{"U+FFFD", "\xef\xbf\xbd", true, -1},
		{"U+FFFF", "\xef\xbf\xbf", true, -1},
		{"U+10000", "\xf0\x90\x80\x80", true, -1},
		{"U+3FFFF", "\xf0\xbf\xbf\xbf", true, -1},
		{"U+40000", "\xf1\x80\x80\x80", true, -1},
		{"U+FFFFF", "\xf3\xbf\xbf\xbf", true, -1},
		{"U+100000", "\xf4\x80\x80\x80", true, -1},
		{"U+10FFFF", "\xf4\x8f\xbf\xbf", true, -1},
		{"autobahn 6.2.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true, -1},
		{"mixed", "a€b😀c\u07ff\U0010ffff", true, -1},

		{"lone continuation 80", "\x80", false, 0},
		{"lone continuation BF", "\xbf", false, 0},
		{"continuation after ascii", "ab\x80", false, 2},
		{"extra continuation", "\xc2\x80\x80", false, 2},
		{"C0 overlong lead", "\xc0\x80", false, 0},
		{"C1 overlong lead", "\xc1\xbf", false, 0},
		{"F5", "\xf5\x80\x80\x80", false, 0},
		{"F8", "\xf8\x88\x80\x80\x80", false, 0},
		{"FE", "\xfe", false, 0},
		{"FF", "\xff", false, 0},
		{"E0 overlong", "\xe0\x80\x80", false, 1},
		{"E0 9F overlong", "\xe0\x9f\xbf", false, 1},
		{"F0 overlong", "\xf0\x80\x80\x80", false, 1},
		{"F0 8F overlong", "\xf0\x8f\xbf\xbf", false, 1},
		{"surrogate D800", "\xed\xa0\x80", false, 1},
		{"surrogate DFFF", "\xed\xbf\xbf", false, 1},
		{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", false, 1},
		{"above max F4 90", "\xf4\x90\x80\x80", false, 1},
		{"above max F4 BF", "\xf4\xbf\xbf\xbf", false, 1},
		{"2-byte lead then ascii", "\xc2A", false, 1},
		{"3-byte lead then ascii", "\xe1\x80A", false, 2},
		{"4-byte lead then ascii", "\xf1\x80\x80A", false, 3},
		{"lead after lead", "\xc2\xc2\x80", false, 1},
		{"error after long ascii", strings.Repeat("x", 37) + "\xff", false, 37},
		{"error after valid", "κόσμε\xed\xa0\x80edited", false, 11},

		{"truncated 2", "\xc2", false, -1},
		{"truncated 3 of 1", "\xe0", false, -1},
		{"truncated 3 of 2", "\xe0\xa0", false, -1},
		{"truncated 4 of 1", "\xf4", false, -1},
		{"truncated 4 of 2", "\xf4\x8f", false, -1},
		{"truncated 4 of 3", "\xf0\x90\x80", false, -1},
		{"truncated after ascii", strings.Repeat("y", 20) + "\xf0\x9f\x98", false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := utf8.ValidString(tt.in); got != tt.valid {
				t.Fatalf("table bug: utf8.ValidString = %v, table says %v", got, tt.valid)
			}
			var v utf8Validator
			ok := v.feed([]byte(tt.in))
			if ok != (tt.failAt < 0) {
				t.Errorf("whole feed = %v, want %v", ok, tt.failAt < 0)
			}
			if v.complete() != tt.valid {
				t.Errorf("complete() = %v after whole feed, want %v", v.complete(), tt.valid)
			}

			v.reset()
			first := -1
			for i := 0; i < len(tt.in); i++ {
				if !v.feed([]byte{tt.in[i]}) {
					first = i
					break
				}
			}
			if first != tt.failAt {
				t.Errorf("byte-wise feed first failed at %d, want %d", first, tt.failAt)
			}
			if first < 0 && v.complete() != tt.valid {
				t.Errorf("complete() = %v after byte-wise feed, want %v", v.complete(), tt.valid)
			}
		})
	}
}

// TestUTF8AllRunes encodes every code point (surrogates by hand, since
// utf8.EncodeRune refuses them) and feeds it split at every position.
func TestUTF8AllRunes(t *testing.T) {
	var v utf8Validator
	buf := make([]byte, 0, 4)
	for r := rune(0); r <= utf8.MaxRune; r++ {
		var want bool
		if r >= 0xD800 && r <= 0xDFFF {
			buf = append(buf[:0], 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
		} else {
			buf = utf8.AppendRune(buf[:0], r)
			want = true
		}
		for split := 0; split <= len(buf); split++ {
			v.reset()
			if got := v.feed(buf[:split]) && v.feed(buf[split:]) && v.complete(); got != want {
				t.Fatalf("U+%04X % x split at %d: got %v, want %v", r, buf, split, got, want)
			}
		}
	}
}

// TestUTF8ShortStrings compares with utf8.Valid on every 1- and 2-byte string
// and on every 3-byte string starting with a byte of 0xC0 and above.
func TestUTF8ShortStrings(t *testing.T) {
	var v utf8Validator
	check := func(b []byte) {
		v.reset()
		if got, want := v.feed(b) && v.complete(), utf8.Valid(b); got != want {
			t.Fatalf("% x: got %v, want %v", b, got, want)
		}
	}
	for a := 0; a < 256; a++ {
		check([]byte{byte(a)})
		for b := 0; b < 256; b++ {
			check([]byte{byte(a), byte(b)})
		}
	}
	for a := 0xC0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			for c := 0; c < 256; c++ {
				check([]byte{byte(a), byte(b), byte(c)})
			}
		}
	}
}

// The helpers below are methods of utf8Validator only to keep the package's
// top-level namespace to the names this file owns; they use no validator state.

// testString returns a random string built mostly from whole runes (with
// ASCII runs long enough for the word-at-a-time path) and sometimes damaged,
// so that valid, truncated and invalid inputs all turn up often.
func (utf8Validator) testString(r *rand.Rand, maxRunes int) []byte {
	specials := []rune{0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 'é', '€', '😀'}
	var b []byte
	n := r.IntN(maxRunes + 1)
	for range n {
		switch r.IntN(11) {
		case 0, 1, 2:
			b = append(b, strings.Repeat("abcdefgh", 3)[:1+r.IntN(20)]...)
		case 3, 4:
			b = utf8.AppendRune(b, specials[r.IntN(len(specials))])
		case 5, 6:
			b = utf8.AppendRune(b, rune(r.IntN(utf8.MaxRune+1)))
		case 7:
			b = append(b, byte(r.IntN(256)))
		case 8:
			b = append(b, byte(0x80+r.IntN(0x40)))
		case 9:
			// The leads whose second byte has a narrowed range, next to the
			// edges of those ranges, so the bounds get probed directly.
			b = append(b, "\xe0\xed\xf0\xf4"[r.IntN(4)], "\x80\x8f\x90\x9f\xa0\xbf"[r.IntN(6)])
		default:
			b = append(b, byte(0xC0+r.IntN(0x40)))
		}
	}
	if len(b) > 0 && r.IntN(4) == 0 {
		b = b[:r.IntN(len(b))]
	}
	return b
}

// TestUTF8SplitEverywhere checks that splitting a message into two feeds at
// any position never changes the verdict, which must match utf8.Valid.
func TestUTF8SplitEverywhere(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var v utf8Validator
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	for range iters {
		b := v.testString(r, 12)
		want := utf8.Valid(b)
		for split := 0; split <= len(b); split++ {
			v.reset()
			if got := v.feed(b[:split]) && v.feed(b[split:]) && v.complete(); got != want {
				t.Fatalf("%q split at %d: got %v, want %v", b, split, got, want)
			}
		}
	}
}

// isValidPrefix decides by brute force whether p can still be extended to
// valid UTF-8: a valid string stays valid when a whole character follows, so
// only completions of up to three continuation bytes need to be tried. The
// first completion byte takes all 64 values; for the second and third the
// extremes 0x80 and 0xBF are enough, because UTF-8 only restricts the byte right
// after the lead, later ones may always be anything in 0x80..0xBF.
func (utf8Validator) isValidPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	buf := append([]byte(nil), p...)
	n := len(p)
	for c1 := byte(0x80); c1 <= 0xBF; c1++ {
		if utf8.Valid(append(buf[:n], c1)) {
			return true
		}
		for _, c2 := range []byte{0x80, 0xBF} {
			if utf8.Valid(append(buf[:n], c1, c2)) {
				return true
			}
			for _, c3 := range []byte{0x80, 0xBF} {
				if utf8.Valid(append(buf[:n], c1, c2, c3)) {
					return true
				}
			}
		}
	}
	return false
}

// bruteFailIndex returns the index of the first byte after which b can no
// longer be the start of valid UTF-8, or -1. Being a valid prefix is
// monotone (no extension of a dead prefix is alive), so a binary search over
// the brute-force oracle finds the smallest bad prefix length.
func (v utf8Validator) bruteFailIndex(b []byte) int {
	k := sort.Search(len(b)+1, func(k int) bool { return !v.isValidPrefix(b[:k]) })
	if k > len(b) {
		return -1
	}
	return k - 1
}

// checkFailFast feeds b one byte at a time and in the given chunks and
// checks that false comes exactly with the byte at the oracle's index.
func (v utf8Validator) checkFailFast(t *testing.T, b []byte, chunks []int) {
	t.Helper()
	want := v.bruteFailIndex(b)
	v.reset()
	got := -1
	for i := range b {
		if !v.feed(b[i : i+1]) {
			got = i
			break
		}
	}
	if got != want {
		t.Fatalf("% x: byte-wise first failure at %d, oracle says %d", b, got, want)
	}
	if want < 0 && v.complete() != utf8.Valid(b) {
		t.Fatalf("% x: complete() = %v, utf8.Valid = %v", b, v.complete(), utf8.Valid(b))
	}
	if want >= 0 && v.feed([]byte("a")) {
		t.Fatalf("% x: feed succeeded again after a failure", b)
	}

	// With chunks, the failing feed must be the one holding byte want.
	v.reset()
	start := 0
	for _, end := range append(chunks, len(b)) {
		if end < start || end > len(b) {
			continue
		}
		ok := v.feed(b[start:end])
		holdsFail := want >= start && want < end
		if ok == holdsFail {
			t.Fatalf("% x: feed of [%d:%d] = %v, first bad byte at %d", b, start, end, ok, want)
		}
		if !ok {
			return
		}
		start = end
	}
}

func TestUTF8FailFast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var v utf8Validator
	iters := 5000
	if testing.Short() {
		iters = 500
	}
	failed := 0
	for range iters {
		b := v.testString(r, 10)
		var chunks []int
		for range r.IntN(4) {
			chunks = append(chunks, r.IntN(len(b)+1))
		}
		sort.Ints(chunks)
		v.checkFailFast(t, b, chunks)
		if v.bruteFailIndex(b) >= 0 {
			failed++
		}
	}
	// Guard against a generator that never produces the interesting case.
	if failed < iters/10 {
		t.Fatalf("only %d of %d inputs were invalid", failed, iters)
	}
}

func TestUTF8ResetAfterFailure(t *testing.T) {
	var v utf8Validator
	if v.feed([]byte{0xFF}) {
		t.Fatal("0xFF accepted")
	}
	if v.complete() {
		t.Fatal("complete() after failure")
	}
	v.reset()
	if !v.feed([]byte("ok")) || !v.complete() {
		t.Fatal("validator unusable after reset")
	}
	v.feed([]byte{0xE2, 0x82})
	v.reset()
	if !v.complete() || !v.feed([]byte("x")) {
		t.Fatal("reset kept a pending partial character")
	}
}

func TestUTF8NoAllocs(t *testing.T) {
	in := []byte(strings.Repeat("héllo wörld ✓ 😀 ", 20))
	var v utf8Validator
	allocs := testing.AllocsPerRun(100, func() {
		v.reset()
		v.feed(in[:7])
		v.feed(in[7:])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func FuzzUTF8Validator(f *testing.F) {
	f.Add([]byte("hello"), uint(2))
	f.Add([]byte("κόσμε"), uint(3))
	f.Add([]byte("\xf0\x9f\x98\x80"), uint(2))
	f.Add([]byte("\xed\xa0\x80"), uint(1))
	f.Fuzz(func(t *testing.T, b []byte, split uint) {
		s := int(split % uint(len(b)+1))
		var v utf8Validator
		if got, want := v.feed(b[:s]) && v.feed(b[s:]) && v.complete(), utf8.Valid(b); got != want {
			t.Fatalf("%q split at %d: got %v, want %v", b, s, got, want)
		}
		if len(b) <= 64 {
			v.reset()
			v.checkFailFast(t, b, []int{s})
		}
	})
}

func BenchmarkUTF8(b *testing.B) {
	// input returns n bytes of valid UTF-8: pure ASCII, or chat-like text
	// that mixes ASCII with 2-, 3- and 4-byte characters.
	input := func(kind string, n int) []byte {
		sample := "The quick brown fox jumps over the lazy dog. "
		if kind == "mixed" {
			sample = "Hello, мир! Grüße aus Köln — 你好世界 🙂 ok; "
		}
		b := []byte(strings.Repeat(sample, n/len(sample)+1))[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		return append(b, bytes.Repeat([]byte{'.'}, n-len(b))...)
	}
	for _, kind := range []string{"ascii", "mixed"} {
		for _, n := range []int{16, 1024, 64 << 10} {
			in := input(kind, n)
			b.Run(fmt.Sprintf("%s/%dB/validator", kind, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				var v utf8Validator
				for b.Loop() {
					v.reset()
					if !v.feed(in) || !v.complete() {
						b.Fatal("rejected valid input")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%dB/utf8.Valid", kind, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if !utf8.Valid(in) {
						b.Fatal("rejected valid input")
					}
				}
			})
		}
	}
}
