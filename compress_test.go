package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// compressTestMessages returns messages that mix repetitive JSON, text and
// incompressible bytes, plus sizes around the window and flush boundaries.
func compressTestMessages(seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	var msgs [][]byte
	msgs = append(msgs, nil, []byte("a"), []byte("hello, hello, hello"))
	for i := range 20 {
		msgs = append(msgs, fmt.Appendf(nil, `{"id":%d,"user":"user-%d","text":"message number %d","tags":["a","b"]}`, i, i%3, i))
	}
	msgs = append(msgs,
		random(100),
		bytes.Repeat([]byte("abcdefgh"), 5000),
		random(70_000),
		[]byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 2000)),
		random(1<<15), random(1<<15+1), random(1<<16),
	)
	return msgs
}

func TestCompressRoundTrip(t *testing.T) {
	msgs := compressTestMessages(1)
	for _, takeover := range []bool{true, false} {
		for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
			t.Run(fmt.Sprintf("takeover=%v/level=%d", takeover, level), func(t *testing.T) {
				c := deflateNewCompressor(level, 0, takeover, 0)
				d := deflateNewDecompressor(takeover)
				defer c.close()
				var wire, out []byte
				for i, m := range msgs {
					var err error
					wire, err = c.compress(wire[:0], m)
					if err != nil {
						t.Fatalf("message %d: compress: %v", i, err)
					}
					if bytes.HasSuffix(wire, deflateTail) && len(m) > 0 {
						t.Fatalf("message %d: tail not stripped", i)
					}
					out, err = d.decompress(out[:0], wire, int64(len(m)))
					if err != nil {
						t.Fatalf("message %d: decompress: %v", i, err)
					}
					if !bytes.Equal(out, m) {
						t.Fatalf("message %d: round trip differs (len %d vs %d)", i, len(out), len(m))
					}
				}
			})
		}
	}
}

// TestCompressInterop checks the wire form against a plain flate reader: a
// peer with context takeover inflates all messages as one deflate stream,
// each followed by the 00 00 ff ff tail (RFC 7692 §7.2.2).
func TestCompressInterop(t *testing.T) {
	msgs := compressTestMessages(2)
	for _, takeover := range []bool{true, false} {
		c := deflateNewCompressor(flate.BestSpeed, 0, takeover, 0)
		var stream []byte
		for _, m := range msgs {
			wire, err := c.compress(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if !takeover {
				// Each message must stand alone.
				r := flate.NewReader(bytes.NewReader(append(wire, inflateTrailer...)))
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, m) {
					t.Fatalf("standalone message of %d bytes: %d bytes, %v", len(m), len(got), err)
				}
			}
			stream = append(append(stream, wire...), deflateTail...)
		}
		r := flate.NewReader(bytes.NewReader(stream))
		for i, m := range msgs {
			got := make([]byte, len(m))
			if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, m) {
				t.Fatalf("takeover=%v message %d: %v", takeover, i, err)
			}
		}
	}
}

// TestCompressContextTakeover sends a random (incompressible) message twice:
// only with context takeover can the second copy refer to the first.
func TestCompressContextTakeover(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	m := make([]byte, 4096)
	for i := range m {
		m[i] = byte(r.Uint32())
	}
	sizes := map[bool]int{}
	for _, takeover := range []bool{true, false} {
		c := deflateNewCompressor(flate.BestSpeed, 0, takeover, 0)
		d := deflateNewDecompressor(takeover)
		var last []byte
		for range 3 {
			wire, err := c.compress(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			out, err := d.decompress(nil, wire, 1<<20)
			if err != nil || !bytes.Equal(out, m) {
				t.Fatalf("takeover=%v: %v", takeover, err)
			}
			last = wire
		}
		sizes[takeover] = len(last)
	}
	if sizes[true] > len(m)/4 || sizes[false] < len(m) {
		t.Fatalf("third copy compressed to %d bytes with takeover, %d without; want <%d and >=%d", sizes[true], sizes[false], len(m)/4, len(m))
	}
	// A decompressor without the window cannot read the takeover form.
	c := deflateNewCompressor(flate.BestSpeed, 0, true, 0)
	first, _ := c.compress(nil, m)
	second, _ := c.compress(nil, m)
	d := deflateNewDecompressor(false)
	if _, err := d.decompress(nil, first, 1<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := d.decompress(nil, second, 1<<20); err == nil && bytes.Equal(out, m) {
		t.Fatal("second message decoded without the dictionary; test does not exercise takeover")
	}
}

// TestDecompressHistoryWindow checks the carried window across messages
// smaller and larger than 32 KiB, against a reference stream reader.
func TestDecompressHistoryWindow(t *testing.T) {
	var msgs [][]byte
	base := compressTestMessages(4)
	for i := range 60 {
		msgs = append(msgs, base[(i*7)%len(base)])
	}
	c := deflateNewCompressor(flate.BestCompression, 0, true, 0)
	d := deflateNewDecompressor(true)
	for i, m := range msgs {
		wire, err := c.compress(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.decompress(make([]byte, 3, 10), wire, -1)
		if err != nil || !bytes.Equal(out[3:], m) {
			t.Fatalf("message %d (%d bytes): %v", i, len(m), err)
		}
		if d.f.s != nil && d.f.s.have > inflateWindow {
			t.Fatalf("history grew to %d", d.f.s.have)
		}
	}
}

func TestCompressEmptyMessage(t *testing.T) {
	c := deflateNewCompressor(flate.BestSpeed, 0, true, 0)
	wire, err := c.compress(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7692 §7.2.3.6: an empty message compresses to a single 0x00.
	if !bytes.Equal(wire, []byte{0}) {
		t.Fatalf("empty message = % x, want 00", wire)
	}
	d := deflateNewDecompressor(true)
	for _, in := range [][]byte{wire, nil} {
		out, err := d.decompress(nil, in, 0)
		if err != nil || len(out) != 0 {
			t.Fatalf("decompress(% x) = %q, %v", in, out, err)
		}
	}
}

func TestCompressFragments(t *testing.T) {
	msgs := compressTestMessages(5)
	for _, bits := range []int{0, 10} {
		for _, takeover := range []bool{true, false} {
			c := deflateNewCompressor(flate.BestSpeed, 0, takeover, bits)
			d := deflateNewDecompressor(takeover)
			for i, m := range msgs {
				var wire []byte
				pieces := [][]byte{m[:len(m)/3], m[len(m)/3 : len(m)/2], m[len(m)/2:]}
				for j, p := range pieces {
					var err error
					wire, err = c.compressFragment(wire, p, j == len(pieces)-1)
					if err != nil {
						t.Fatal(err)
					}
				}
				if bits != 0 {
					if dist := deflateTestMaxDistance(t, wire); dist > 1<<bits {
						t.Fatalf("bits=%d message %d: distance %d", bits, i, dist)
					}
				}
				out, err := d.decompress(nil, wire, int64(len(m)))
				if err != nil || !bytes.Equal(out, m) {
					t.Fatalf("bits=%d takeover=%v message %d: %v", bits, takeover, i, err)
				}
			}
		}
	}
}

// TestCompressWindowBits checks the rule that honours a peer's
// max_window_bits below 15 with Go's 32 KiB-window deflater: no
// back-reference in our output ever reaches further than 2^bits, and no
// message depends on an earlier one.
func TestCompressWindowBits(t *testing.T) {
	msgs := compressTestMessages(6)
	for bits := 8; bits < 15; bits++ {
		c := deflateNewCompressor(flate.BestCompression, 0, true, bits)
		if c.takeover {
			t.Fatalf("bits=%d: context takeover kept", bits)
		}
		d := deflateNewDecompressor(false)
		fits := bytes.Repeat([]byte("abcd"), 1<<bits/4)
		tooLong := append(append([]byte{}, fits...), 'x')
		if wire, _ := c.compress(nil, fits); deflateTestMaxDistance(t, wire) == 0 {
			t.Errorf("bits=%d: a repetitive %d-byte message was compressed without back-references", bits, len(fits))
		}
		if wire, _ := c.compress(nil, tooLong); deflateTestMaxDistance(t, wire) != 0 {
			t.Errorf("bits=%d: a %d-byte message used back-references", bits, len(tooLong))
		}
		for i, m := range msgs {
			wire, err := c.compress(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			dist := deflateTestMaxDistance(t, wire)
			if dist > 1<<bits {
				t.Fatalf("bits=%d message %d (%d bytes): back-reference of %d", bits, i, len(m), dist)
			}
			out, err := d.decompress(nil, wire, -1)
			if err != nil || !bytes.Equal(out, m) {
				t.Fatalf("bits=%d message %d: %v", bits, i, err)
			}
		}
	}
	if c := deflateNewCompressor(flate.BestSpeed, 0, true, 15); c.windowBits != 0 || !c.takeover {
		t.Errorf("15 bits must mean no limit: %+v", c)
	}
	c := deflateNewCompressor(flate.BestSpeed, 0, false, 10)
	for _, tt := range []struct {
		n     int
		whole bool
		want  int
	}{
		{1024, true, flate.BestSpeed},
		{1025, true, flate.HuffmanOnly},
		{10, false, flate.HuffmanOnly},
	} {
		if got := c.messageLevel(tt.n, tt.whole); got != tt.want {
			t.Errorf("messageLevel(%d, %v) = %d, want %d", tt.n, tt.whole, got, tt.want)
		}
	}
}

func TestCompressMessageOnce(t *testing.T) {
	msgs := compressTestMessages(7)
	c := deflateNewCompressor(flate.DefaultCompression, 0, false, 9)
	for _, m := range msgs {
		level, ok := c.sharedLevel(len(m))
		if !ok {
			t.Fatal("sharedLevel refused without takeover")
		}
		wire := compressMessageOnce(level, m)
		if want, _ := deflateNewCompressor(flate.DefaultCompression, 0, false, 9).compress(nil, m); !bytes.Equal(wire, want) {
			t.Fatalf("%d bytes: shared payload differs from a per-connection one", len(m))
		}
		if dist := deflateTestMaxDistance(t, wire); dist > 1<<9 {
			t.Fatalf("%d bytes: distance %d", len(m), dist)
		}
		for _, takeover := range []bool{true, false} {
			out, err := deflateNewDecompressor(takeover).decompress(nil, wire, -1)
			if err != nil || !bytes.Equal(out, m) {
				t.Fatalf("%d bytes: %v", len(m), err)
			}
		}
	}
	if _, ok := deflateNewCompressor(1, 0, true, 0).sharedLevel(10); ok {
		t.Fatal("sharedLevel accepted a takeover compressor")
	}
	// Out-of-range levels fall back to the default instead of failing.
	if got := compressMessageOnce(42, []byte("abc")); len(got) == 0 {
		t.Fatal("no output for an invalid level")
	}
}

func TestCompressionOptionsDefaults(t *testing.T) {
	tests := []struct {
		opts      *CompressionOptions
		level     int
		threshold int
	}{
		{nil, flate.BestSpeed, 128},
		{&CompressionOptions{}, flate.BestSpeed, 128},
		{&CompressionOptions{Level: 9, Threshold: 10}, 9, 10},
		{&CompressionOptions{Level: -1, Threshold: -1}, -1, 0},
		{&CompressionOptions{Level: -2}, -2, 128},
		{&CompressionOptions{Level: 10}, flate.BestSpeed, 128},
		{&CompressionOptions{Level: -3}, flate.BestSpeed, 128},
	}
	for _, tt := range tests {
		if l, th := tt.opts.level(), tt.opts.threshold(); l != tt.level || th != tt.threshold {
			t.Errorf("%+v: level %d threshold %d, want %d %d", tt.opts, l, th, tt.level, tt.threshold)
		}
	}
	c := deflateNewCompressor(1, 128, true, 0)
	if c.wants(127) || !c.wants(128) {
		t.Error("threshold not applied")
	}
	if !deflateNewCompressor(1, 0, true, 0).wants(0) {
		t.Error("threshold 0 must compress everything")
	}
}

func TestDecompressLimit(t *testing.T) {
	m := bytes.Repeat([]byte("0123456789"), 1000)
	wire := compressMessageOnce(1, m)
	for _, tt := range []struct {
		limit   int64
		tooBig  bool
		initial []byte
	}{
		{int64(len(m)), false, nil},
		{int64(len(m)) + 1, false, nil},
		{int64(len(m)) - 1, true, nil},
		{0, true, nil},
		{-1, false, nil},
		{math.MaxInt64, false, nil},
		{int64(len(m)), false, []byte("prefix")},
		{int64(len(m)) - 1, true, make([]byte, 5, 100000)},
	} {
		d := deflateNewDecompressor(false)
		out, err := d.decompress(tt.initial, wire, tt.limit)
		if tt.tooBig {
			if !errors.Is(err, errInflateTooLarge) || len(out) != len(tt.initial) {
				t.Errorf("limit %d: %d bytes, %v; want errInflateTooLarge", tt.limit, len(out), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(out[len(tt.initial):], m) || !bytes.Equal(out[:len(tt.initial)], tt.initial) {
			t.Errorf("limit %d: %v", tt.limit, err)
		}
	}
}

// TestDecompressBomb inflates 10 MiB of zeros (about 10 KiB on the wire)
// with a 1 MiB limit: it must fail without allocating much more than the
// limit.
func TestDecompressBomb(t *testing.T) {
	wire := compressMessageOnce(flate.BestCompression, make([]byte, 10<<20))
	if len(wire) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(wire))
	}
	const limit = 1 << 20
	for _, takeover := range []bool{false, true} {
		d := deflateNewDecompressor(takeover)
		_, _ = d.decompress(nil, compressMessageOnce(1, []byte("warm the pool")), limit)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		out, err := d.decompress(nil, wire, limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, errInflateTooLarge) {
			t.Fatalf("takeover=%v: err = %v, want errInflateTooLarge", takeover, err)
		}
		if len(out) != 0 {
			t.Fatalf("returned %d bytes on error", len(out))
		}
		// Doubling the output buffer up to limit+1 costs about 2x the
		// limit; allow for an inflater from an emptied pool.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 5*limit/2 {
			t.Fatalf("takeover=%v: allocated %d bytes for a %d-byte limit", takeover, alloc, limit)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	valid := compressMessageOnce(1, []byte(strings.Repeat("corrupt me ", 100)))
	tests := map[string][]byte{
		"reserved block type": {0x07},
		"all ones":            bytes.Repeat([]byte{0xff}, 32),
		"stored length check": {0x00, 0x05, 0x00, 0x05, 0x00, 'h'},
		// Fixed-Huffman block whose first symbol is a match of
		// distance 1, before any output.
		"distance before start": {0x02, 0x02},
		"truncated":             valid[:len(valid)/2],
	}
	for name, in := range tests {
		for _, takeover := range []bool{false, true} {
			out, err := deflateNewDecompressor(takeover).decompress(nil, in, 1<<20)
			if !errors.Is(err, errInflateCorrupt) {
				t.Errorf("%s: %q, %v; want errInflateCorrupt", name, out, err)
			}
		}
	}
	// The pooled inflater must be usable after an error.
	d := deflateNewDecompressor(false)
	if _, err := d.decompress(nil, []byte{0x07}, 100); err == nil {
		t.Fatal("no error")
	}
	out, err := d.decompress(nil, valid, 1<<20)
	if err != nil || len(out) != 1100 {
		t.Fatalf("after error: %d bytes, %v", len(out), err)
	}
}

func FuzzInflate(f *testing.F) {
	f.Add([]byte{0x00}, uint16(0), false)
	f.Add(compressMessageOnce(1, []byte("hello hello hello")), uint16(100), false)
	f.Add(compressMessageOnce(9, make([]byte, 5000)), uint16(4000), true)
	f.Add([]byte{0x07}, uint16(10), false)
	f.Add([]byte{0x02, 0x82, 0x08, 0x00}, uint16(10), true)
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, takeover bool) {
		d := deflateNewDecompressor(takeover)
		ds := deflateNewDecompressor(takeover)
		for range 2 { // twice, to exercise the carried window
			out, err := d.decompress(nil, data, int64(limit))
			if len(out) > int(limit) {
				t.Fatalf("%d bytes out, limit %d", len(out), limit)
			}
			// Fed in pieces, the inflater must agree with decompress.
			sout, serr := inflateChunked(&ds.f, data, 1+len(data)/3, int64(limit))
			if len(sout) > int(limit) {
				t.Fatalf("reader: %d bytes out, limit %d", len(sout), limit)
			}
			if (err == nil) != (serr == nil) || (err == nil && !bytes.Equal(out, sout)) {
				t.Fatalf("decompress: %d bytes, %v; reader: %d bytes, %v", len(out), err, len(sout), serr)
			}
			if err != nil {
				if !errors.Is(err, errInflateCorrupt) && !errors.Is(err, errInflateTooLarge) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
		}
	})
}

// deflateTestMaxDistance decodes one compressed message (tail stripped) and
// returns the largest back-reference distance it uses. It is a small, slow
// RFC 1951 decoder that exists only because compress/flate does not expose
// distances.
func deflateTestMaxDistance(t *testing.T, msg []byte) int {
	t.Helper()
	br := &deflateTestBits{data: append(append([]byte{}, msg...), inflateTrailer...)}
	maxDist, out := 0, 0
	lbase := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lext := []int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dbase := []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dext := []int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	for {
		final := br.bits(1)
		btype := br.bits(2)
		switch btype {
		case 0:
			br.n, br.pos = 0, br.pos+deflateTestBoolInt(br.n > 0)
			if br.pos+4 > len(br.data) {
				t.Fatal("short stored block")
			}
			n := int(br.data[br.pos]) | int(br.data[br.pos+1])<<8
			br.pos += 4 + n
			out += n
		case 1, 2:
			var lit, dist deflateTestHuff
			if btype == 1 {
				lens := make([]int, 288+30)
				for i := range 288 {
					lens[i] = map[bool]int{true: 8, false: 9}[i < 144 || i >= 280]
					if i >= 256 && i < 280 {
						lens[i] = 7
					}
				}
				for i := range 30 {
					lens[288+i] = 5
				}
				lit, dist = deflateTestBuild(lens[:288]), deflateTestBuild(lens[288:])
			} else {
				hlit, hdist, hclen := br.bits(5)+257, br.bits(5)+1, br.bits(4)+4
				order := []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
				cl := make([]int, 19)
				for i := range hclen {
					cl[order[i]] = br.bits(3)
				}
				clh := deflateTestBuild(cl)
				lens := make([]int, 0, hlit+hdist)
				for len(lens) < hlit+hdist {
					switch sym := clh.decode(t, br); {
					case sym < 16:
						lens = append(lens, sym)
					case sym == 16:
						prev := lens[len(lens)-1]
						for range 3 + br.bits(2) {
							lens = append(lens, prev)
						}
					case sym == 17:
						lens = append(lens, make([]int, 3+br.bits(3))...)
					default:
						lens = append(lens, make([]int, 11+br.bits(7))...)
					}
				}
				lit, dist = deflateTestBuild(lens[:hlit]), deflateTestBuild(lens[hlit:])
			}
			for {
				sym := lit.decode(t, br)
				if sym < 256 {
					out++
					continue
				}
				if sym == 256 {
					break
				}
				length := lbase[sym-257] + br.bits(lext[sym-257])
				ds := dist.decode(t, br)
				d := dbase[ds] + br.bits(dext[ds])
				if d > out {
					t.Fatalf("distance %d before start of message (%d bytes out)", d, out)
				}
				maxDist = max(maxDist, d)
				out += length
			}
		default:
			t.Fatal("reserved block type")
		}
		if final == 1 {
			return maxDist
		}
	}
}

func deflateTestBoolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type deflateTestBits struct {
	data []byte
	pos  int // current byte
	n    uint
}

func (b *deflateTestBits) bits(k int) int {
	v := 0
	for i := range k {
		if b.pos >= len(b.data) {
			panic("deflateTestBits: out of data")
		}
		v |= int(b.data[b.pos]>>b.n&1) << i
		b.n++
		if b.n == 8 {
			b.n, b.pos = 0, b.pos+1
		}
	}
	return v
}

type deflateTestHuff struct {
	count  [16]int
	symbol []int
}

func deflateTestBuild(lens []int) deflateTestHuff {
	var h deflateTestHuff
	for _, l := range lens {
		h.count[l]++
	}
	h.count[0] = 0
	for l := 1; l < 16; l++ {
		for s, sl := range lens {
			if sl == l {
				h.symbol = append(h.symbol, s)
			}
		}
	}
	return h
}

func (h *deflateTestHuff) decode(t *testing.T, b *deflateTestBits) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= b.bits(1)
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+code-first]
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	t.Fatal("bad Huffman code")
	return 0
}

// compressBenchMessages are a 1 KiB JSON-like message and a 64 KiB text.
func compressBenchMessages() map[string][]byte {
	var j bytes.Buffer
	for i := 0; j.Len() < 1024; i++ {
		fmt.Fprintf(&j, `{"id":%d,"type":"chat","user":"user-%02d","room":"lobby","text":"message %d from the load generator","ts":%d},`, i, i%7, i*31, 1732170000+i)
	}
	r := rand.New(rand.NewPCG(9, 9))
	words := strings.Fields("the of and to in is was that for on with as by at from his her it an were which be this are had not or but have they one their you all")
	var txt bytes.Buffer
	for txt.Len() < 64<<10 {
		txt.WriteString(words[r.IntN(len(words))])
		txt.WriteByte(' ')
	}
	return map[string][]byte{"json1k": j.Bytes()[:1024], "text64k": txt.Bytes()[:64<<10]}
}

func BenchmarkCompress(b *testing.B) {
	for name, m := range compressBenchMessages() {
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/takeover=%v", name, takeover), func(b *testing.B) {
				c := deflateNewCompressor(flate.BestSpeed, 0, takeover, 0)
				defer c.close()
				var wire []byte
				b.SetBytes(int64(len(m)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if wire, err = c.compress(wire[:0], m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(wire))/float64(len(m)), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	for name, m := range compressBenchMessages() {
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/takeover=%v", name, takeover), func(b *testing.B) {
				// With takeover each message needs the previous one as
				// its dictionary, so the stream is pre-compressed in the
				// order the loop will replay it, cycling over 64 copies.
				c := deflateNewCompressor(flate.BestSpeed, 0, takeover, 0)
				wires := make([][]byte, 64)
				for i := range wires {
					wires[i], _ = c.compress(nil, m)
				}
				d := deflateNewDecompressor(takeover)
				var out []byte
				b.SetBytes(int64(len(m)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i == len(wires) {
						// Restart the stream: a fresh window matches
						// the compressor's first message again.
						i, d = 0, deflateNewDecompressor(takeover)
					}
					var err error
					if out, err = d.decompress(out[:0], wires[i], int64(len(m))); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkCompressionMemory reports the heap held between messages by one
// connection's compressor and decompressor (B/conn), after each has handled
// a 1 KiB message, with pools emptied so that pooled objects do not count.
func BenchmarkCompressionMemory(b *testing.B) {
	m := compressBenchMessages()["json1k"]
	for _, tt := range []struct {
		name     string
		level    int
		takeover bool
	}{
		{"takeover/level=1", flate.BestSpeed, true},
		{"takeover/level=6", flate.DefaultCompression, true},
		{"takeover/level=9", flate.BestCompression, true},
		{"takeover/huffman", flate.HuffmanOnly, true},
		{"no-takeover/level=1", flate.BestSpeed, false},
	} {
		b.Run(tt.name, func(b *testing.B) {
			const pairs = 8
			var total uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&before)
				cs := make([]*messageCompressor, pairs)
				ds := make([]*messageDecompressor, pairs)
				for i := range pairs {
					cs[i] = deflateNewCompressor(tt.level, 0, tt.takeover, 0)
					ds[i] = deflateNewDecompressor(tt.takeover)
					wire, _ := cs[i].compress(nil, m)
					if _, err := ds[i].decompress(nil, wire, -1); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				total += (after.HeapAlloc - before.HeapAlloc) / pairs
				runtime.KeepAlive(cs)
				runtime.KeepAlive(ds)
			}
			b.ReportMetric(float64(total)/float64(b.N), "B/conn")
		})
	}
}

// inflateChunked inflates one message given to the inflater in pieces of
// chunk bytes, as the session does with frames and reads, applying limit as
// decompress does.
func inflateChunked(f *inflater, data []byte, chunk int, limit int64) ([]byte, error) {
	f.begin()
	defer f.finish()
	var out []byte
	for {
		n := min(chunk, len(data))
		f.write(data[:n])
		data = data[n:]
		fin := len(data) == 0
		for {
			room := inflateWindow
			if limit >= 0 {
				room = int(min(int64(room), limit+1-int64(len(out))))
			}
			b, end, err := f.next(room, fin)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errInflateCorrupt, err)
			}
			out = append(out, b...)
			if limit >= 0 && int64(len(out)) > limit {
				return nil, fmt.Errorf("%w: over %d bytes", errInflateTooLarge, limit)
			}
			if end {
				return out, nil
			}
			if !f.pending() && !fin {
				break
			}
		}
	}
}

func TestDecompressReader(t *testing.T) {
	msgs := compressTestMessages(10)
	for _, chunk := range []int{1, 3, 100, 1 << 20} {
		for _, takeover := range []bool{true, false} {
			c := deflateNewCompressor(flate.BestSpeed, 0, takeover, 0)
			d := deflateNewDecompressor(takeover)
			for i, m := range msgs {
				wire, err := c.compress(nil, m)
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				if i%3 == 2 {
					// Interleave with whole-message decoding: both
					// keep the same window.
					got, err = d.decompress(nil, wire, -1)
				} else {
					got, err = inflateChunked(&d.f, wire, chunk, int64(len(m)))
				}
				if err != nil || !bytes.Equal(got, m) {
					t.Fatalf("chunk %d takeover=%v message %d (%d bytes): got %d bytes, %v", chunk, takeover, i, len(m), len(got), err)
				}
			}
		}
	}
}

func TestDecompressReaderErrors(t *testing.T) {
	bomb := compressMessageOnce(flate.BestCompression, make([]byte, 10<<20))
	d := deflateNewDecompressor(true)
	if out, err := inflateChunked(&d.f, bomb, 512, 1<<20); !errors.Is(err, errInflateTooLarge) {
		t.Fatalf("bomb: %d bytes, %v", len(out), err)
	}
	if _, err := inflateChunked(&deflateNewDecompressor(false).f, []byte{0x07}, 1, 100); !errors.Is(err, errInflateCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	// A message cut short (its last block unfinished) is corrupt.
	wire := compressMessageOnce(flate.BestSpeed, []byte(strings.Repeat("cut short ", 500)))
	if _, err := inflateChunked(&deflateNewDecompressor(false).f, wire[:len(wire)/2], 7, -1); !errors.Is(err, errInflateCorrupt) {
		t.Fatalf("cut short: %v", err)
	}
}

// FuzzInflateStream checks the streaming inflater against compress/flate:
// for any payload, fed in pieces of any size, it makes exactly the bytes
// the reference makes of the payload and RFC 7692's trailer, or fails
// where the reference does.
func FuzzInflateStream(f *testing.F) {
	f.Add(compressMessageOnce(1, []byte("hello hello hello")), uint16(1), false)
	f.Add(compressMessageOnce(9, bytes.Repeat([]byte("abcdefgh"), 9000)), uint16(7), true)
	f.Add(compressMessageOnce(-2, []byte("huffman only, huffman only")), uint16(2), false)
	f.Add([]byte{0x01, 0x03, 0x00, 0xfc, 0xff, 'a', 'b', 'c'}, uint16(1), false)
	f.Add([]byte{0x07}, uint16(1), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, twice bool) {
		const limit = 1 << 20
		ref, refErr := io.ReadAll(io.LimitReader(flate.NewReader(io.MultiReader(bytes.NewReader(data), bytes.NewReader(inflateTrailer))), limit+1))
		if len(data) == 0 {
			ref, refErr = nil, nil
		}
		d := deflateNewDecompressor(twice)
		for range 1 + btoi(twice) {
			got, err := inflateChunked(&d.f, data, max(int(chunk), 1), limit)
			switch {
			case refErr == nil && len(ref) <= limit:
				if err != nil || !bytes.Equal(got, ref) {
					t.Fatalf("got %d bytes, %v; reference %d bytes", len(got), err, len(ref))
				}
			case refErr == nil:
				if !errors.Is(err, errInflateTooLarge) {
					t.Fatalf("over the limit: %d bytes, %v", len(got), err)
				}
				return
			default:
				if err == nil {
					t.Fatalf("reference failed (%v after %d bytes), inflater made %d bytes", refErr, len(ref), len(got))
				}
				return
			}
			if twice {
				// Takeover: the reference for the second round inflates the
				// message again with the first's output as its dictionary.
				ref, refErr = io.ReadAll(io.LimitReader(flate.NewReaderDict(io.MultiReader(bytes.NewReader(data), bytes.NewReader(inflateTrailer)), ref), limit+1))
				if len(data) == 0 {
					ref, refErr = nil, nil
				}
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
