package websocket

import (
	"encoding/binary"
	"errors"
	"sync"
)

// This file is the receiving half of permessage-deflate: an RFC 1951
// inflater that is fed compressed bytes as they arrive and hands out the
// inflated bytes as it makes them. compress/flate pulls its input from an
// io.Reader and cannot pause when the input runs out (its errors are
// sticky), so a protocol core that is given bytes, and never reads, needs
// an inflater that keeps its whole state between calls: bits not yet
// consumed, where it is in a block, and the window. The inflated bytes are
// made in the window itself and handed out as slices of it, so inflating
// costs no buffer or copy besides the window.

// inflateWindow is the LZ77 window: the largest distance RFC 1951 allows.
const inflateWindow = 1 << 15

// inflateStep is where the inflater is in the deflate stream.
type inflateStep uint8

const (
	infHeader    inflateStep = iota // a block header (3 bits)
	infStoredLen                    // LEN and NLEN of a stored block
	infStored                       // the bytes of a stored block
	infDynHeader                    // HLIT, HDIST, HCLEN
	infCodeLens                     // the code length code lengths
	infLens                         // the literal/length and distance code lengths
	infSym                          // a literal/length symbol
	infDist                         // a distance symbol and its extra bits
	infCopy                         // a back-reference being copied out
	infDone                         // the final block has ended
)

var (
	errInflateTooLarge = errors.New("websocket: decompressed message too large")
	errInflateCorrupt  = errors.New("websocket: invalid compressed data")
)

// huffman is a canonical Huffman code (RFC 1951 §3.2.2) for decoding.
// Codes of up to huffFastBits bits are looked up in fast at once, longer
// ones are found by walking the code lengths.
type huffman struct {
	fast  [1 << huffFastBits]uint16 // symbol<<4 | length; 0: not there
	count [16]uint16                // codes of each length
	sym   [320]uint16               // symbols in canonical order
}

const huffFastBits = 9

// build makes the code from the symbols' code lengths. It refuses
// over-subscribed and incomplete codes, except a code with a single symbol
// of length 1 and an empty code, as RFC 1951 allows for distances.
func (h *huffman) build(lens []uint8) bool {
	h.count = [16]uint16{}
	for _, l := range lens {
		h.count[l]++
	}
	h.count[0] = 0
	left, used := 1, 0
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return false
		}
		used += int(h.count[l])
	}
	if left != 0 && used != 0 && !(used == 1 && h.count[1] == 1) {
		return false
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lens {
		if l != 0 {
			h.sym[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	h.fast = [1 << huffFastBits]uint16{}
	code, idx := 0, 0
	for l := 1; l <= huffFastBits; l++ {
		for range h.count[l] {
			rev := 0
			for i := range l {
				rev |= (code >> i & 1) << (l - 1 - i)
			}
			for j := rev; j < 1<<huffFastBits; j += 1 << l {
				h.fast[j] = h.sym[idx]<<4 | uint16(l)
			}
			code++
			idx++
		}
		code <<= 1
	}
	return true
}

// fixedLit and fixedDist are the codes of fixed Huffman blocks (RFC 1951
// §3.2.6).
var fixedLit, fixedDist = func() (*huffman, *huffman) {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	var lit, dist huffman
	lit.build(lens[:])
	var dlens [32]uint8 // 30 and 31 take part in the code but are invalid
	for i := range dlens {
		dlens[i] = 5
	}
	dist.build(dlens[:])
	return &lit, &dist
}()

var (
	lenBase   = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	lensOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// inflateState is the inflater's state for one deflate stream, kept between
// calls. It is large (the window and three codes), so a connection without
// context takeover holds one only while a message is being inflated.
type inflateState struct {
	in    []byte // input not yet taken into bits; aliases the caller's bytes
	bits  uint64 // input bits not yet consumed, the next one lowest
	nbits uint

	step   inflateStep
	final  bool // the current block is the last
	stored int  // bytes left of a stored block

	nlit, ndist, ncode, nlens int
	lens                      [320]uint8
	lit, dist                 *huffman
	dynLit, dynDist, codeLen  huffman

	length int // of the back-reference being decoded or copied
	back   int

	win  [inflateWindow]byte
	wpos int // where the next inflated byte goes in win
	have int // bytes of history in win, at most inflateWindow
}

var inflateStates = sync.Pool{New: func() any { return new(inflateState) }}

// reset prepares s for a new deflate stream. keepWindow keeps the history
// (context takeover).
func (s *inflateState) reset(keepWindow bool) {
	s.in, s.bits, s.nbits = nil, 0, 0
	s.step, s.final, s.stored = infHeader, false, 0
	if !keepWindow {
		s.wpos, s.have = 0, 0
	}
}

// need makes at least n bits available, taking bytes from s.in, and
// reports whether it could.
func (s *inflateState) need(n uint) bool {
	for s.nbits < n {
		if len(s.in) == 0 {
			return false
		}
		s.bits |= uint64(s.in[0]) << s.nbits
		s.nbits += 8
		s.in = s.in[1:]
	}
	return true
}

// refill takes as many whole bytes of input into bits as fit.
func (s *inflateState) refill() {
	if len(s.in) >= 8 {
		// One load, keeping the bytes that fit whole; the rest are taken
		// again by the next refill, so they are cleared here.
		s.bits |= binary.LittleEndian.Uint64(s.in) << s.nbits
		n := (63 - s.nbits) >> 3
		s.in = s.in[n:]
		s.nbits += n * 8
		s.bits &= 1<<s.nbits - 1
		return
	}
	for s.nbits <= 56 && len(s.in) > 0 {
		s.bits |= uint64(s.in[0]) << s.nbits
		s.nbits += 8
		s.in = s.in[1:]
	}
}

func (s *inflateState) take(n uint) int {
	v := int(s.bits & (1<<n - 1))
	s.bits >>= n
	s.nbits -= n
	return v
}

// peek finds the next symbol of h without consuming it: n is the length of
// its code. ok is false when more input is needed; sym is -1 for a code
// that h does not have.
func (s *inflateState) peek(h *huffman) (sym int, n uint, ok bool) {
	if s.nbits < 15 {
		s.refill()
	}
	if e := h.fast[s.bits&(1<<huffFastBits-1)]; e != 0 && uint(e&15) <= s.nbits {
		return int(e >> 4), uint(e & 15), true
	}
	code, first, index := 0, 0, 0
	for l := uint(1); l <= 15; l++ {
		if l > s.nbits {
			return 0, 0, false
		}
		code |= int(s.bits>>(l-1)) & 1
		count := int(h.count[l])
		if code-first < count {
			return int(h.sym[index+code-first]), l, true
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return -1, 0, true
}

// inflate runs the stream on s.in, making at most max bytes (and no more
// than fit before the end of the window). It returns the bytes made, a
// slice of the window valid until the next call, and stops early when the
// input runs out (with s.in empty) or the stream ends (infDone). With an
// error it returns what it made before the bad data.
func (s *inflateState) inflate(max int) ([]byte, error) {
	start := s.wpos
	end := min(inflateWindow, s.wpos+max)
	for s.wpos < end {
		switch s.step {
		case infHeader:
			if s.final {
				s.step = infDone
				continue
			}
			if !s.need(3) {
				return s.win[start:s.wpos], nil
			}
			h := s.take(3)
			s.final = h&1 != 0
			switch h >> 1 {
			case 0:
				s.take(s.nbits % 8) // to a byte boundary
				s.step = infStoredLen
			case 1:
				s.lit, s.dist = fixedLit, fixedDist
				s.step = infSym
			case 2:
				s.step = infDynHeader
			default:
				return s.win[start:s.wpos], errInflateCorrupt
			}
		case infStoredLen:
			if !s.need(32) {
				return s.win[start:s.wpos], nil
			}
			v := s.take(32)
			if v&0xffff != ^(v>>16)&0xffff {
				return s.win[start:s.wpos], errInflateCorrupt
			}
			s.stored = v & 0xffff
			s.step = infStored
		case infStored:
			for s.stored > 0 && s.nbits >= 8 && s.wpos < end {
				s.put(byte(s.take(8)))
				s.stored--
			}
			n := min(s.stored, len(s.in), end-s.wpos)
			copy(s.win[s.wpos:], s.in[:n])
			s.in = s.in[n:]
			s.wrote(n)
			s.stored -= n
			if s.stored > 0 {
				if s.wpos < end {
					return s.win[start:s.wpos], nil // input ran out
				}
				continue
			}
			s.step = infHeader
		case infDynHeader:
			if !s.need(14) {
				return s.win[start:s.wpos], nil
			}
			s.nlit = s.take(5) + 257
			s.ndist = s.take(5) + 1
			s.ncode = s.take(4) + 4
			if s.nlit > 286 || s.ndist > 30 {
				return s.win[start:s.wpos], errInflateCorrupt
			}
			s.nlens = 0
			s.lens = [320]uint8{}
			s.step = infCodeLens
		case infCodeLens:
			for s.nlens < s.ncode {
				if !s.need(3) {
					return s.win[start:s.wpos], nil
				}
				s.lens[lensOrder[s.nlens]] = uint8(s.take(3))
				s.nlens++
			}
			if !s.codeLen.build(s.lens[:19]) {
				return s.win[start:s.wpos], errInflateCorrupt
			}
			s.lens = [320]uint8{}
			s.nlens = 0
			s.step = infLens
		case infLens:
			if done, err := s.readLens(); err != nil || !done {
				return s.win[start:s.wpos], err
			}
		case infSym:
			stalled, err := s.symbols(end)
			if err != nil {
				return s.win[start:s.wpos], err
			}
			if stalled {
				return s.win[start:s.wpos], nil // input ran out
			}
		case infDist:
			stalled, err := s.distance()
			if err != nil {
				return s.win[start:s.wpos], err
			}
			if stalled {
				return s.win[start:s.wpos], nil
			}
		case infCopy:
			s.copyBack(end)
		case infDone:
			return s.win[start:s.wpos], nil
		}
	}
	return s.win[start:s.wpos], nil
}

// readLens reads the code lengths of a dynamic block and builds its codes.
func (s *inflateState) readLens() (done bool, err error) {
	total := s.nlit + s.ndist
	for s.nlens < total {
		sym, n, ok := s.peek(&s.codeLen)
		if !ok {
			return false, nil
		}
		if sym < 0 {
			return false, errInflateCorrupt
		}
		if sym < 16 {
			s.take(n)
			s.lens[s.nlens] = uint8(sym)
			s.nlens++
			continue
		}
		var rep int
		var val uint8
		var extra uint
		switch sym {
		case 16:
			if s.nlens == 0 {
				return false, errInflateCorrupt
			}
			val, rep, extra = s.lens[s.nlens-1], 3, 2
		case 17:
			rep, extra = 3, 3
		default:
			rep, extra = 11, 7
		}
		if !s.need(n + extra) {
			return false, nil // the symbol is read again with its extra bits
		}
		s.take(n)
		rep += s.take(extra)
		if s.nlens+rep > total {
			return false, errInflateCorrupt
		}
		for range rep {
			s.lens[s.nlens] = val
			s.nlens++
		}
	}
	if s.lens[256] == 0 || !s.dynLit.build(s.lens[:s.nlit]) || !s.dynDist.build(s.lens[s.nlit:total]) {
		return false, errInflateCorrupt
	}
	s.lit, s.dist = &s.dynLit, &s.dynDist
	s.step = infSym
	return true, nil
}

// symbols decodes literals into the window until a back-reference, the end
// of the block, the end of the input (stalled) or end.
func (s *inflateState) symbols(end int) (stalled bool, err error) {
	for s.wpos < end {
		// Most symbols are decoded here, with the state in locals: literals,
		// and back-references whose codes are in the fast tables and whose
		// bits are all there. Anything else (the end of the block, long
		// codes, input running out, errors) is left to the general path
		// below, which decodes the same bits again.
		bits, nbits, wpos := s.bits, s.nbits, s.wpos
		lit, dist := s.lit, s.dist
		for wpos < end {
			if nbits < 48 {
				s.bits, s.nbits = bits, nbits
				s.refill()
				bits, nbits = s.bits, s.nbits
			}
			e := lit.fast[bits&(1<<huffFastBits-1)]
			l := uint(e & 15)
			if e == 0 || l > nbits {
				break
			}
			if sym := e >> 4; sym < 256 {
				s.win[wpos] = byte(sym)
				wpos++
				bits >>= l
				nbits -= l
				continue
			} else if sym == 256 || sym > 285 {
				break
			}
			i := e>>4 - 257
			ex := uint(lenExtra[i])
			if l+ex > nbits {
				break
			}
			length := int(lenBase[i]) + int(bits>>l&(1<<ex-1))
			b2, n2 := bits>>(l+ex), nbits-l-ex
			d := dist.fast[b2&(1<<huffFastBits-1)]
			dl := uint(d & 15)
			if d == 0 || dl > n2 || d>>4 > 29 {
				break
			}
			dex := uint(distExtra[d>>4])
			if dl+dex > n2 {
				break
			}
			back := int(distBase[d>>4]) + int(b2>>dl&(1<<dex-1))
			if back > min(s.have+wpos-s.wpos, inflateWindow) {
				break
			}
			bits, nbits = b2>>(dl+dex), n2-dl-dex
			s.wrote(wpos - s.wpos)
			s.bits, s.nbits = bits, nbits
			s.length, s.back = length, back
			s.copyBack(end)
			if s.length > 0 {
				s.step = infCopy // the window's end came first
				return false, nil
			}
			wpos = s.wpos
		}
		s.bits, s.nbits = bits, nbits
		s.wrote(wpos - s.wpos)
		if wpos == end {
			return false, nil
		}
		sym, n, ok := s.peek(s.lit)
		if !ok {
			return true, nil
		}
		switch {
		case sym < 0 || sym > 285:
			return false, errInflateCorrupt
		case sym < 256:
			s.take(n)
			s.put(byte(sym))
		case sym == 256:
			s.take(n)
			s.step = infHeader
			return false, nil
		default:
			i := sym - 257
			if !s.need(n + uint(lenExtra[i])) {
				return true, nil
			}
			s.take(n)
			s.length = int(lenBase[i]) + s.take(uint(lenExtra[i]))
			s.step = infDist
			return false, nil
		}
	}
	return false, nil
}

// distance decodes the distance of a back-reference; stalled means the
// input ran out first.
func (s *inflateState) distance() (stalled bool, err error) {
	sym, n, ok := s.peek(s.dist)
	if !ok {
		return true, nil
	}
	if sym < 0 || sym > 29 {
		return false, errInflateCorrupt
	}
	if !s.need(n + uint(distExtra[sym])) {
		return true, nil
	}
	s.take(n)
	s.back = int(distBase[sym]) + s.take(uint(distExtra[sym]))
	if s.back > s.have {
		return false, errInflateCorrupt
	}
	s.step = infCopy
	return false, nil
}

// copyBack copies the back-reference out, as far as end.
func (s *inflateState) copyBack(end int) {
	for s.length > 0 && s.wpos < end {
		src := (s.wpos - s.back) & (inflateWindow - 1)
		if src < s.wpos {
			// Within the window's straight part: copying what lies
			// between src and the growing end repeats the pattern of
			// period back, doubling each time.
			stop := s.wpos + min(s.length, end-s.wpos)
			w := s.wpos
			for w < stop {
				w += copy(s.win[w:stop], s.win[src:w])
			}
			s.length -= w - s.wpos
			s.wrote(w - s.wpos)
			continue
		}
		// From the end of the window, before it wrapped: src is ahead of
		// wpos, so a forward copy reads each byte before it is written.
		n := min(s.length, end-s.wpos, inflateWindow-src)
		copy(s.win[s.wpos:s.wpos+n], s.win[src:src+n])
		s.wrote(n)
		s.length -= n
	}
	if s.length == 0 {
		s.step = infSym
	}
}

func (s *inflateState) put(b byte) {
	s.win[s.wpos] = b
	s.wrote(1)
}

func (s *inflateState) wrote(n int) {
	s.wpos += n
	s.have = min(s.have+n, inflateWindow)
}

// inflater inflates the compressed messages of one connection: it is given
// each message's compressed payload as it arrives (in any pieces) and
// yields the inflated bytes as it goes, so that the size limit and UTF-8
// are checked on them at once, without the message ever being whole in
// memory. The window carries over between messages when the peer uses
// context takeover; otherwise the state is pooled between messages.
type inflater struct {
	takeover bool
	s        *inflateState
	msgIn    int64 // compressed bytes of the current message so far
	tail     bool  // the trailer has been given
	// full says the last next stopped at its limit: the input it already
	// took may hold more output (a long match, buffered bits), so more
	// may come out, or the corruption that follows, without new input.
	full bool

	// The session's state of the message being inflated; it lives here,
	// with the inflater, so that a connection without compression does
	// not carry it.
	active bool // a message is being inflated
	last   bool // its last frame's payload has been given to write
	first  bool // the next chunk is the message's first
	// held says the state is kept past the end of a message only because
	// the last chunk handed out is a slice of its window; it goes back (to
	// the pool, without context takeover) at the session's next feed or
	// release.
	held bool
	typ  MessageType
	made int64 // bytes inflated so far
	utf8 utf8Validator
}

// inflateTrailer is appended to every message: RFC 7692 §7.2.2's 00 00 ff
// ff, then a final empty stored block, so that a message ends where its
// stream does.
var inflateTrailer = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// begin starts a message.
func (f *inflater) begin() {
	if f.s == nil {
		f.s = inflateStates.Get().(*inflateState)
		f.s.reset(false)
	} else {
		f.s.reset(f.takeover)
	}
	if f.s.wpos == inflateWindow {
		f.s.wpos = 0
	}
	f.msgIn, f.tail, f.full = 0, false, false
}

// write gives the inflater the next compressed bytes of the message. They
// must stay unchanged until next has consumed them (pending is false).
func (f *inflater) write(p []byte) {
	f.s.in = p
	f.msgIn += int64(len(p))
}

// pending reports whether input given to write is still unconsumed, or
// the last call to next stopped at its limit with output possibly left.
func (f *inflater) pending() bool { return f.s != nil && (len(f.s.in) > 0 || f.full) }

// next inflates at most max bytes of what was written. With fin (the
// message's input is complete) it finishes the message, which is done once
// next reports end. out is valid until the next call. The error is
// errInflateCorrupt; out then holds what came before the bad data.
func (f *inflater) next(max int, fin bool) (out []byte, end bool, err error) {
	s := f.s
	if s.wpos == inflateWindow && max > 0 {
		s.wpos = 0 // the consumer has taken the window's last bytes
	}
	if fin && len(s.in) == 0 {
		if f.msgIn == 0 {
			return nil, true, nil // an empty payload is an empty message
		}
		if !f.tail {
			f.tail = true
			s.in = inflateTrailer
		}
	}
	out, err = s.inflate(max)
	// Output that stopped at its limit (max, or the window's end) may
	// have more behind it in what the inflater has already taken.
	f.full = err == nil && max > 0 && s.step != infDone && (len(out) == max || s.wpos == inflateWindow)
	if err != nil {
		return out, false, err
	}
	if s.step == infDone {
		s.in = nil // anything after the final block is ignored
		return out, fin, nil
	}
	if f.tail && len(s.in) == 0 && len(out) < max && s.wpos < inflateWindow {
		return nil, false, errInflateCorrupt // the stream is cut short
	}
	return out, false, nil
}

// finish ends a message (or abandons it): without context takeover the
// state goes back to the pool.
func (f *inflater) finish() {
	if f.s != nil && !f.takeover {
		f.s.in = nil
		inflateStates.Put(f.s)
		f.s = nil
	}
}

// close releases the state when the connection ends.
func (f *inflater) close() {
	if f.s != nil {
		f.s.in = nil
		if !f.takeover {
			inflateStates.Put(f.s)
		}
		f.s = nil
	}
}
