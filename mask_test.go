package websocket

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"testing"
)

// TestMask compares maskBytes with the byte-at-a-time definition from
// RFC 6455 §5.3 over every short length and offset, with unaligned buffers, and
// over payloads masked in random pieces.
func TestMask(t *testing.T) {
	ref := func(key [4]byte, pos int, b []byte) int {
		for i := range b {
			b[i] ^= key[(pos+i)%4]
		}
		return (pos + len(b)) % 4
	}
	random := func(r *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}

	t.Run("AllLengths", func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for n := 0; n <= 200; n++ {
			for pos := 0; pos < 4; pos++ {
				// An odd offset into a larger buffer makes the word accesses
				// unaligned, and the guard bytes around it must stay untouched.
				const guard = 3
				buf := random(r, n+2*guard)
				orig := append([]byte(nil), buf...)
				key := [4]byte(random(r, 4))

				want := append([]byte(nil), buf...)
				wantPos := ref(key, pos, want[guard:guard+n])
				gotPos := maskBytes(key, pos, buf[guard:guard+n])
				if !bytes.Equal(buf, want) {
					t.Fatalf("n=%d pos=%d: got % x, want % x", n, pos, buf, want)
				}
				if gotPos != wantPos {
					t.Fatalf("n=%d pos=%d: returned %d, want %d", n, pos, gotPos, wantPos)
				}
				maskBytes(key, pos, buf[guard:guard+n])
				if !bytes.Equal(buf, orig) {
					t.Fatalf("n=%d pos=%d: masking twice did not restore the input", n, pos)
				}
			}
		}
	})

	t.Run("Split", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for range 2000 {
			n := r.IntN(600)
			data := random(r, n)
			key := [4]byte(random(r, 4))
			pos := r.IntN(4)

			want := append([]byte(nil), data...)
			ref(key, pos, want)

			got := append([]byte(nil), data...)
			p, start := pos, 0
			for start < n {
				end := start + r.IntN(n-start+1)
				p = maskBytes(key, p, got[start:end])
				start = end
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d pos=%d: pieces differ from one-shot reference", n, pos)
			}
			if want := (pos + n) % 4; p != want {
				t.Fatalf("n=%d pos=%d: final offset %d, want %d", n, pos, p, want)
			}
		}
	})

	// pos is taken modulo 4, so a caller may pass a running byte count.
	t.Run("PosWraps", func(t *testing.T) {
		key := [4]byte{1, 2, 3, 4}
		for pos := 0; pos < 16; pos++ {
			got := []byte("0123456789abcdefghij")
			want := append([]byte(nil), got...)
			ref(key, pos%4, want)
			if p := maskBytes(key, pos, got); p != (pos+len(got))%4 || !bytes.Equal(got, want) {
				t.Fatalf("pos=%d: offset %d, % x want % x", pos, p, got, want)
			}
		}
	})
}

func TestMaskNoAllocs(t *testing.T) {
	buf := make([]byte, 1000)
	key := [4]byte{9, 8, 7, 6}
	if a := testing.AllocsPerRun(100, func() { maskBytes(key, 1, buf[1:]) }); a != 0 {
		t.Errorf("maskBytes: %v allocations per run", a)
	}
	// The race detector makes crypto/rand.Read's buffer escape, so the key
	// check only holds, and only runs, in a normal build.
	race := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			race = race || s.Key == "-race" && s.Value == "true"
		}
	}
	if race {
		t.Log("skipping the newMaskKey allocation check under -race")
	} else if a := testing.AllocsPerRun(100, func() { _ = newMaskKey() }); a != 0 {
		t.Errorf("newMaskKey: %v allocations per run", a)
	}
}

// TestMaskNewKeyUnique calls newMaskKey from several goroutines (for -race)
// and checks that keys do not repeat; with 32 random bits, a collision among
// 4000 keys has a probability below 0.2%, and more than 2 almost none.
func TestMaskNewKeyUnique(t *testing.T) {
	const workers, per = 4, 1000
	keys := make([][4]byte, workers*per)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				keys[w*per+i] = newMaskKey()
			}
		}()
	}
	wg.Wait()
	seen := make(map[[4]byte]bool, len(keys))
	for _, k := range keys {
		seen[k] = true
	}
	if dup := len(keys) - len(seen); dup > 2 {
		t.Fatalf("%d repeated keys among %d", dup, len(keys))
	}
}

func FuzzMask(f *testing.F) {
	f.Add([]byte("hello, websocket world, long enough for words"), uint32(0x37fa213d), uint8(1), uint(13))
	f.Add([]byte{}, uint32(0), uint8(0), uint(0))
	f.Fuzz(func(t *testing.T, data []byte, k uint32, pos uint8, split uint) {
		key := [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		p := int(pos % 4)
		s := int(split % uint(len(data)+1))
		want := append([]byte(nil), data...)
		for i := range want {
			want[i] ^= key[(p+i)%4]
		}
		wantPos := (p + len(want)) % 4
		got := append([]byte(nil), data...)
		gotPos := maskBytes(key, maskBytes(key, p, got[:s]), got[s:])
		if !bytes.Equal(got, want) || gotPos != wantPos {
			t.Fatalf("key=% x pos=%d split=%d: got % x (%d), want % x (%d)", key, p, s, got, gotPos, want, wantPos)
		}
	})
}

func BenchmarkMask(b *testing.B) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for _, n := range []int{16, 1024, 64 << 10} {
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				maskBytes(key, 1, buf)
			}
		})
	}
}

// BenchmarkMaskCopyBaseline is the yardstick for BenchmarkMask: a plain copy
// touches the same bytes with SIMD and no arithmetic.
func BenchmarkMaskCopyBaseline(b *testing.B) {
	for _, n := range []int{16, 1024, 64 << 10} {
		src, dst := make([]byte, n), make([]byte, n)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				copy(dst, src)
			}
		})
	}
}

func BenchmarkMaskNewKey(b *testing.B) {
	var k [4]byte
	for b.Loop() {
		k = newMaskKey()
	}
	_ = k
}
