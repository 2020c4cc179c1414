package websocket

import (
	"encoding/binary"
	"fmt"
)

// opcode is the 4-bit frame type of RFC 6455 §5.2. It is unexported: users
// speak in MessageType, control frames are the library's business.
type opcode uint8

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

// isControl reports whether op is a control opcode (the high bit of the
// 4-bit opcode is set, RFC 6455 §5.5).
func (op opcode) isControl() bool { return op&0x8 != 0 }

// isKnown reports whether op is defined by RFC 6455; the rest are reserved.
func (op opcode) isKnown() bool {
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
		return true
	}
	return false
}

func (op opcode) String() string {
	switch op {
	case opContinuation:
		return "continuation"
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opClose:
		return "close"
	case opPing:
		return "ping"
	case opPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%#x)", uint8(op))
}

// Reserved bits of the first header byte. RSV1 marks a compressed message
// when permessage-deflate is negotiated (RFC 7692 §6); RSV2 and RSV3 have no
// meaning in this library.
const (
	rsv1 = 0x40
	rsv2 = 0x20
	rsv3 = 0x10
)

// maxHeaderSize is the largest frame header: 2 bytes, 8 bytes of extended
// length and a 4-byte masking key.
const maxHeaderSize = 14

// maxControlPayload is the limit on control frame payloads (RFC 6455 §5.5).
const maxControlPayload = 125

// frameHeader is a decoded frame header. It carries no policy: whether a
// header is acceptable is decided by the decoder.
type frameHeader struct {
	fin     bool
	rsv     uint8 // the three reserved bits, as they sit in the first byte
	opcode  opcode
	masked  bool
	maskKey [4]byte
	length  int64
}

// parseFrameHeader decodes the frame header at the start of b. It returns
// n == 0 and no error when b does not hold the whole header yet. The only
// errors are encodings RFC 6455 §5.2 forbids outright: a 64-bit length with
// the most significant bit set, and a length not in its minimal encoding.
func parseFrameHeader(b []byte) (h frameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = b[0] & (rsv1 | rsv2 | rsv3)
	h.opcode = opcode(b[0] & 0x0f)
	h.masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		if h.length < 126 {
			return h, 0, errNonMinimalLength
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, 0, errLengthTopBit
		}
		if u <= 0xffff {
			return h, 0, errNonMinimalLength
		}
		h.length = int64(u)
		n = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.maskKey[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// appendFrameHeader appends the header of a frame with the given fields,
// using the minimal length encoding.
func appendFrameHeader(dst []byte, fin bool, rsv uint8, op opcode, length int64, masked bool, key [4]byte) []byte {
	b0 := rsv | byte(op)
	if fin {
		b0 |= 0x80
	}
	var b1 byte
	if masked {
		b1 = 0x80
	}
	switch {
	case length < 126:
		dst = append(dst, b0, b1|byte(length))
	case length <= 0xffff:
		dst = append(dst, b0, b1|126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if masked {
		dst = append(dst, key[:]...)
	}
	return dst
}

// frameHeaderSize returns the size of the header appendFrameHeader writes.
func frameHeaderSize(length int64, masked bool) int {
	n := 2
	switch {
	case length < 126:
	case length <= 0xffff:
		n += 2
	default:
		n += 8
	}
	if masked {
		n += 4
	}
	return n
}

// appendFrame appends a whole frame. A masked frame gets a fresh key and
// its payload is masked in the copy, never in the caller's slice.
func appendFrame(dst []byte, fin bool, rsv uint8, op opcode, payload []byte, masked bool) []byte {
	var key [4]byte
	if masked {
		key = newMaskKey()
	}
	dst = appendFrameHeader(dst, fin, rsv, op, int64(len(payload)), masked, key)
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		maskBytes(key, 0, dst[start:])
	}
	return dst
}
