package conformance

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// Opcodes and header bits, spelled out here rather than taken from the library so
// that the suite checks the library against the RFC, not against itself.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA

	rsv1 byte = 0x40
	rsv2 byte = 0x20
	rsv3 byte = 0x10
)

// codeEmpty stands for a close frame with no payload at all. 1005 is the RFC's
// name for that situation and can never appear on the wire, so it cannot clash.
const codeEmpty uint16 = 1005

type maskMode uint8

const (
	maskAsRole   maskMode = iota // masked when the tester plays the client, as the RFC requires
	maskForceOff                 // a client frame without a mask (server must fail with 1002)
	maskForceOn                  // a server frame with a mask (client must fail with 1002)
)

type lenMode uint8

const (
	lenMinimal lenMode = iota
	len7
	len16
	len64
)

// frame is one frame the tester sends. The zero value of more means FIN is set,
// so the common case stays short in the tables.
type frame struct {
	op      byte
	more    bool // FIN clear: more fragments follow
	rsv     byte
	payload []byte
	mask    maskMode
	lenEnc  lenMode
	// useDecl makes the header announce declLen instead of len(payload); the
	// payload is then sent as given (usually a prefix), to check that the
	// library decides from the header, before the payload has arrived.
	useDecl bool
	declLen uint64
	// compress sends payload as one permessage-deflate message (RFC 7692):
	// compressed by the tester's connection compressor, RSV1 on the first
	// frame, split into fragments of fragSize compressed bytes if fragSize > 0.
	compress bool
	fragSize int
	between  *frame // sent after the first fragment of a compressed message
	// gen, if set, supplies the payload when the frame is sent, for payloads
	// too costly to build with the tables.
	gen func() []byte
}

func textF(s string) frame        { return frame{op: opText, payload: []byte(s)} }
func textB(b []byte) frame        { return frame{op: opText, payload: b} }
func binF(b []byte) frame         { return frame{op: opBinary, payload: b} }
func contF(b []byte) frame        { return frame{op: opCont, payload: b} }
func pingF(b []byte) frame        { return frame{op: opPing, payload: b} }
func pongF(b []byte) frame        { return frame{op: opPong, payload: b} }
func rawClose(b []byte) frame     { return frame{op: opClose, payload: b} }
func (f frame) frag() frame       { f.more = true; return f }
func (f frame) rsvd(r byte) frame { f.rsv = r; return f }
func (f frame) enc(m lenMode) frame {
	f.lenEnc = m
	return f
}
func (f frame) declare(n uint64) frame {
	f.useDecl, f.declLen = true, n
	return f
}
func (f frame) masked(m maskMode) frame { f.mask = m; return f }

func closeF(code uint16, reason string) frame {
	return rawClose(closePayload(code, reason))
}

// closePayload builds a close body; codeEmpty gives an empty body, so a frame
// that really carries the code 1005 must be built with rawClose.
func closePayload(code uint16, reason string) []byte {
	if code == codeEmpty {
		return nil
	}
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

// encodeFrame builds the wire bytes of f. The key is drawn from rng so that
// every frame gets a fresh one, as a client must.
func encodeFrame(f frame, mask bool, rng *rand.Rand) []byte {
	b0 := f.rsv&0x70 | f.op&0x0f
	if !f.more {
		b0 |= 0x80
	}
	n := uint64(len(f.payload))
	if f.useDecl {
		n = f.declLen
	}
	enc := f.lenEnc
	if enc == lenMinimal {
		switch {
		case n <= 125:
			enc = len7
		case n <= 0xffff:
			enc = len16
		default:
			enc = len64
		}
	}
	var maskBit byte
	if mask {
		maskBit = 0x80
	}
	out := make([]byte, 0, 14+len(f.payload))
	out = append(out, b0)
	switch enc {
	case len7:
		out = append(out, maskBit|byte(n))
	case len16:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	case len64:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, n)
	}
	if !mask {
		return append(out, f.payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rng.Uint32())
	out = append(out, key[:]...)
	for i, c := range f.payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// wireFrame is one frame read back from the library, already unmasked.
type wireFrame struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	key     [4]byte
	payload []byte
	minimal bool // length used the shortest encoding (RFC 6455 5.2: MUST)
}

// errFrameTooBig protects the tester from a library that announces absurd lengths.
var errFrameTooBig = errors.New("frame from library announces more than the tester's limit")

// readFrame parses one frame. It applies no policy beyond bounding memory: the
// caller decides which properties are violations for the side under test.
func readFrame(br *bufio.Reader, limit uint64) (wireFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return wireFrame{}, err
	}
	f := wireFrame{
		fin:    h[0]&0x80 != 0,
		rsv:    h[0] & 0x70,
		op:     h[0] & 0x0f,
		masked: h[1]&0x80 != 0,
	}
	n := uint64(h[1] & 0x7f)
	f.minimal = true
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return f, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
		f.minimal = n > 125
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return f, unexpected(err)
		}
		n = binary.BigEndian.Uint64(e[:])
		f.minimal = n > 0xffff && n>>63 == 0
	}
	if n > limit {
		return f, fmt.Errorf("%w: %d bytes", errFrameTooBig, n)
	}
	if f.masked {
		if _, err := io.ReadFull(br, f.key[:]); err != nil {
			return f, unexpected(err)
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(br, f.payload); err != nil {
		return f, unexpected(err)
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= f.key[i&3]
		}
	}
	return f, nil
}

// unexpected turns an EOF in the middle of a frame into ErrUnexpectedEOF, so that
// a truncated frame is never mistaken for a clean TCP close.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func opName(op byte) string {
	switch op {
	case opCont:
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
	return fmt.Sprintf("opcode-%d", op)
}
