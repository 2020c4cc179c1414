package websocket

// This file is the receiving half of the sans-I/O protocol core: bytes in,
// events out. It never touches a socket, so the transports (net/http,
// client dial, anything else that yields bytes) share it, and tests and
// fuzzing drive it with plain byte slices.

// eventKind says what the decoder found.
type eventKind uint8

const (
	eventNone eventKind = iota // all input consumed, more is needed
	eventData                  // a chunk of a data message's payload
	eventPing
	eventPong
	eventClose
)

// event is one thing the decoder found in its input.
type event struct {
	kind eventKind
	// data is the payload chunk (eventData) or the whole control payload. It
	// is unmasked in place and aliases the decoder's input or its control
	// buffer: it is valid until the next call to parse.
	data []byte
	// typ, first, fin and compressed describe the message eventData belongs
	// to: first marks its first chunk and fin its last. A message of zero
	// length is one event with first and fin both set. From the decoder a
	// compressed chunk is as received; from the session it is inflated
	// (and aliases the inflater's window).
	typ        MessageType
	first, fin bool
	compressed bool
	// code and reason are the decoded close frame body (eventClose).
	code   StatusCode
	reason string
}

// decoder turns received bytes into events, enforcing every receiving rule
// of RFC 6455: masking direction, reserved bits and opcodes, control frame
// limits, fragmentation order, UTF-8 of text (fail fast, across fragments),
// close payloads, and the maximum message length. Once it has returned an
// error it keeps returning it.
//
// Its fields are ordered by size, not by topic, so that it packs without
// padding: every connection carries one.
type decoder struct {
	maxLength int64 // <= 0: unlimited
	remaining int64 // payload bytes of the current frame not yet seen
	msgLen    int64 // payload bytes of the message so far (on the wire)
	hdr       frameHeader
	err       error

	// A control frame's payload is unmasked in place when it is whole in
	// the input, and gathered here only when it arrives in pieces, which
	// is rare: most connections never allocate it.
	ctrl *[maxControlPayload]byte

	hdrBuf  [maxHeaderSize]byte // a header split across inputs
	hdrLen  uint8
	ctrlLen uint8 // bytes gathered in ctrl
	maskPos uint8 // position in the mask key, 0-3
	utf8    utf8Validator

	expectMasked  bool // a server decodes masked client frames
	allowRSV1     bool // permessage-deflate was negotiated
	inFrame       bool
	msgOpen       bool // a data message has started and not finished
	msgFirst      bool // the next data event is the message's first
	msgType       MessageType
	msgCompressed bool
}

// parse consumes input from b and returns how much it consumed and at most
// one event. When the event is eventNone, all of b was consumed. Payload
// bytes are unmasked in place in b.
func (d *decoder) parse(b []byte) (n int, ev event, err error) {
	if d.err != nil {
		return 0, ev, d.err
	}
	n, ev, err = d.parseFrame(b)
	if err != nil {
		d.err = err
	}
	return n, ev, err
}

func (d *decoder) parseFrame(b []byte) (n int, ev event, err error) {
	for {
		if !d.inFrame {
			hn, err := d.readHeader(b[n:])
			if err != nil {
				return n, ev, err
			}
			if hn == 0 {
				return len(b), ev, nil
			}
			n += hn
		}
		if d.hdr.opcode.isControl() {
			take := int(min(int64(len(b)-n), d.remaining))
			if d.ctrlLen == 0 && int64(take) == d.remaining {
				p := b[n : n+take]
				d.unmask(p)
				d.remaining = 0
				n += take
				d.inFrame = false
				ev, err = d.controlEvent(p)
				return n, ev, err
			}
			if d.ctrl == nil {
				d.ctrl = new([maxControlPayload]byte)
			}
			chunk := d.ctrl[d.ctrlLen : int(d.ctrlLen)+take]
			copy(chunk, b[n:n+take])
			d.unmask(chunk)
			d.ctrlLen += uint8(take) // at most 125 in all
			d.remaining -= int64(take)
			n += take
			if d.remaining > 0 {
				return n, ev, nil
			}
			d.inFrame = false
			ev, err = d.controlEvent(d.ctrl[:d.ctrlLen])
			return n, ev, err
		}

		take := int(min(int64(len(b)-n), d.remaining))
		if take == 0 && d.remaining > 0 {
			return n, ev, nil
		}
		chunk := b[n : n+take]
		d.unmask(chunk)
		if d.msgType == TextMessage && !d.msgCompressed && !d.utf8.feed(chunk) {
			return n, ev, errInvalidUTF8
		}
		d.remaining -= int64(take)
		n += take
		frameDone := d.remaining == 0
		fin := frameDone && d.hdr.fin
		if frameDone {
			d.inFrame = false
		}
		if fin {
			if d.msgType == TextMessage && !d.msgCompressed && !d.utf8.complete() {
				return n, ev, errInvalidUTF8
			}
			d.msgOpen = false
		}
		if take == 0 && !d.msgFirst && !fin {
			continue // an empty middle fragment tells the reader nothing
		}
		ev = event{kind: eventData, data: chunk, typ: d.msgType, first: d.msgFirst, fin: fin, compressed: d.msgCompressed}
		d.msgFirst = false
		return n, ev, nil
	}
}

// readHeader reads (part of) a frame header from b, returning how many bytes
// it used, or 0 with the bytes saved when the header is not complete yet.
func (d *decoder) readHeader(b []byte) (int, error) {
	var h frameHeader
	var hn int
	var err error
	if d.hdrLen == 0 {
		h, hn, err = parseFrameHeader(b)
		if err != nil {
			return 0, err
		}
		if hn == 0 {
			d.hdrLen = uint8(copy(d.hdrBuf[:], b))
			return 0, nil
		}
	} else {
		old := int(d.hdrLen)
		d.hdrLen += uint8(copy(d.hdrBuf[d.hdrLen:], b))
		h, hn, err = parseFrameHeader(d.hdrBuf[:d.hdrLen])
		if err != nil {
			return 0, err
		}
		if hn == 0 {
			return 0, nil
		}
		hn -= old // only the bytes of b that belong to the header
		d.hdrLen = 0
	}
	if err := d.startFrame(h); err != nil {
		return 0, err
	}
	return hn, nil
}

// startFrame checks a complete header against the protocol state.
func (d *decoder) startFrame(h frameHeader) error {
	if !h.opcode.isKnown() {
		return errReservedOpcode
	}
	if h.masked != d.expectMasked {
		if d.expectMasked {
			return errUnmaskedClient
		}
		return errMaskedServer
	}
	if h.rsv&(rsv2|rsv3) != 0 {
		return errReservedBits
	}
	if h.opcode.isControl() {
		if h.rsv != 0 {
			return errReservedBits
		}
		if !h.fin {
			return errFragmentedControl
		}
		if h.length > maxControlPayload {
			return errControlTooLong
		}
		d.ctrlLen = 0
	} else {
		if h.opcode == opContinuation {
			if !d.msgOpen {
				return errUnexpectedContinue
			}
			if h.rsv != 0 {
				return errReservedBits // RSV1 belongs on a message's first frame only
			}
		} else {
			if d.msgOpen {
				return errExpectedContinue
			}
			if h.rsv&rsv1 != 0 && !d.allowRSV1 {
				return errReservedBits
			}
			d.msgOpen = true
			d.msgFirst = true
			d.msgType = MessageType(h.opcode)
			d.msgCompressed = h.rsv&rsv1 != 0
			d.msgLen = 0
			d.utf8.reset()
		}
		// The length is checked as soon as the header says it: a peer that
		// announces too much is stopped before it sends the payload. A
		// compressed message is limited after inflating; on the wire it may
		// exceed the limit by deflate's framing overhead (compressedSlack).
		d.msgLen += h.length
		limit := d.maxLength
		if d.msgCompressed {
			limit += compressedSlack(limit)
		}
		if d.maxLength > 0 && (d.msgLen > limit || d.msgLen < 0) {
			return errTooBig
		}
	}
	d.hdr = h
	d.inFrame = true
	d.remaining = h.length
	d.maskPos = 0
	return nil
}

func (d *decoder) unmask(p []byte) {
	if d.hdr.masked {
		d.maskPos = uint8(maskBytes(d.hdr.maskKey, int(d.maskPos), p))
	}
}

// controlEvent turns the complete payload p of a control frame into an
// event.
func (d *decoder) controlEvent(p []byte) (event, error) {
	switch d.hdr.opcode {
	case opPing:
		return event{kind: eventPing, data: p}, nil
	case opPong:
		return event{kind: eventPong, data: p}, nil
	}
	code, reason, err := parseClosePayload(p)
	if err != nil {
		return event{}, err
	}
	return event{kind: eventClose, data: p, code: code, reason: reason}, nil
}

// payloadRemaining returns how many payload bytes of the current data frame
// are still to come, so a transport can read them straight into a caller's
// buffer; 0 when the decoder is between frames or in a control frame.
func (d *decoder) payloadRemaining() int64 {
	if !d.inFrame || d.hdr.opcode.isControl() || d.hdrLen != 0 {
		return 0
	}
	return d.remaining
}

// compressedSlack is how far a compressed message may exceed the maximum
// length on the wire. Incompressible data grows by deflate's stored-block
// headers: 5 bytes per block, and zlib makes a block at most as large as its
// window, so a peer with the smallest window (2^8 = 256 bytes) adds about
// 2%. The inflated size is limited exactly, which is what stops
// compression bombs; this only bounds what is buffered before inflating.
func compressedSlack(limit int64) int64 { return limit>>5 + 1024 }
