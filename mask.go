package websocket

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// maskBytes XORs b in place with the 4-byte key (RFC 6455 §5.3), starting at
// key offset pos (taken modulo 4), and returns the key offset for the byte
// after b, so that a payload masked in several pieces gives the same result
// as in one piece.
func maskBytes(key [4]byte, pos int, b []byte) int {
	pos &= 3
	if len(b) >= 8 {
		// Rotating the key so that its byte 0 lines up with b[0] lets whole
		// words be XORed; words are multiples of 4 bytes, so pos is unchanged
		// by the word loops. Unaligned 8-byte loads are single instructions on
		// the platforms that matter (amd64, arm64), so no alignment head is
		// needed; elsewhere encoding/binary falls back to byte accesses.
		k32 := bits.RotateLeft32(binary.LittleEndian.Uint32(key[:]), -8*pos)
		k := uint64(k32)<<32 | uint64(k32)
		for len(b) >= 64 {
			w := b[:64]
			binary.LittleEndian.PutUint64(w[0:], binary.LittleEndian.Uint64(w[0:])^k)
			binary.LittleEndian.PutUint64(w[8:], binary.LittleEndian.Uint64(w[8:])^k)
			binary.LittleEndian.PutUint64(w[16:], binary.LittleEndian.Uint64(w[16:])^k)
			binary.LittleEndian.PutUint64(w[24:], binary.LittleEndian.Uint64(w[24:])^k)
			binary.LittleEndian.PutUint64(w[32:], binary.LittleEndian.Uint64(w[32:])^k)
			binary.LittleEndian.PutUint64(w[40:], binary.LittleEndian.Uint64(w[40:])^k)
			binary.LittleEndian.PutUint64(w[48:], binary.LittleEndian.Uint64(w[48:])^k)
			binary.LittleEndian.PutUint64(w[56:], binary.LittleEndian.Uint64(w[56:])^k)
			b = b[64:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}

// newMaskKey returns a fresh unpredictable masking key. RFC 6455 §5.3 asks for
// keys an attacker cannot predict, so it uses crypto/rand rather than a fast
// PRNG: it is safe for concurrent use, keeps the stack buffer from escaping
// (except in -race builds), and on Linux 6.11+ is served from the vDSO, about
// 40 ns per key, which is small next to the write of the frame it masks.
func newMaskKey() [4]byte {
	var k [4]byte
	rand.Read(k[:]) // never returns an error since Go 1.24: it crashes the program instead
	return k
}
