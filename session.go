package websocket

// This file is the protocol core above frames: bytes in; data message
// chunks (inflated when the peer compressed them), control events and the
// frames to send in reply out. It never does I/O, so every transport (the
// net/http connection, the client's dial, an event loop that owns its
// sockets) drives the same session with the bytes it read, and tests and
// fuzzing drive it with plain slices.
//
// The rules it enforces, beyond the decoder's (frame.go, decode.go):
// compressed messages are inflated as they arrive, one inflater for every
// reading style, with the inflated size held to the maximum length (1009)
// and compressed text checked for UTF-8 as it is inflated (1007 at the
// first bad byte, not after the message); a ping is answered by queuing a
// pong; a close frame ends the input.
//
// What stays with the transport is what involves other goroutines: who
// sent a close frame first is decided under the Conn's lock, since Close
// may run on any goroutine, and the transport writes the queued frames.

// session is one connection's receiving protocol state. It is used by one
// goroutine at a time (the Conn's reader).
type session struct {
	dec decoder
	inf *inflater // set when permessage-deflate was agreed

	// out holds frames to send (pongs, close replies), whole, for the
	// transport to write after the event that queued them.
	out []byte

	client bool // replies are masked
	closed bool // a close frame was received: nothing more is read
}

// init prepares the session of a server (client false: it expects masked
// frames) or of a client. maxLength <= 0 means no limit.
func (s *session) init(client bool, maxLength int64) {
	s.client = client
	s.dec.expectMasked = !client
	s.dec.maxLength = maxLength
}

// enableDeflate turns permessage-deflate on: RSV1 is allowed on a
// message's first frame, and such messages are inflated, with the peer's
// window carried over between messages when takeover is set.
func (s *session) enableDeflate(takeover bool) {
	s.dec.allowRSV1 = true
	s.inf = &inflater{takeover: takeover}
}

// errInflateTooBig and errInflateBad fail a connection whose peer sent a
// compressed message that inflates past the maximum length, or that is not
// valid deflate data (RFC 7692 §8 leaves the code to us; 1007 is the
// code for data that does not match the message's type).
var (
	errInflateTooBig = &ProtocolError{StatusMessageTooBig, "decompressed message exceeds the maximum length"}
	errInflateBad    = &ProtocolError{StatusInvalidFramePayloadData, "invalid compressed data"}
)

// feed consumes input from p and returns how much it consumed and at most
// one event. Data events carry a chunk of a message: for an uncompressed
// message it aliases p (unmasked in place); for a compressed one it is
// inflated and aliases the inflater's window. Either way it is valid until
// the next call to feed. When the event is eventNone all of p was
// consumed and more input is needed. The bytes of p must not change until
// feed has returned eventNone for them: the inflater may still be reading
// them (pending reports it). Once feed has returned an error it keeps
// returning it; after a close event nothing more is read.
func (s *session) feed(p []byte) (n int, ev event, err error) {
	if s.dec.err != nil {
		return 0, ev, s.dec.err
	}
	if s.closed {
		return len(p), ev, nil
	}
	s.release()
	for {
		for s.pending() {
			ev, err = s.inflateNext()
			if err != nil || ev.kind != eventNone {
				return n, ev, s.fail(err)
			}
		}
		var k int
		k, ev, err = s.dec.parse(p[n:])
		n += k
		if err != nil {
			return n, ev, s.fail(err)
		}
		switch ev.kind {
		case eventNone:
			return n, ev, nil
		case eventData:
			if !ev.compressed {
				return n, ev, nil
			}
			f := s.inf
			if ev.first {
				f.begin()
				f.active, f.first, f.typ, f.made = true, true, ev.typ, 0
				f.utf8.reset()
			}
			f.write(ev.data)
			f.last = ev.fin
			ev = event{}
			continue // inflated at the top of the loop
		case eventPing:
			s.out = appendFrame(s.out, true, 0, opPong, ev.data, s.client)
		case eventClose:
			s.closed = true
			s.dropInflate()
		}
		return n, ev, nil
	}
}

// pending reports whether the session holds input it has not turned into
// events yet (a compressed chunk being inflated), so that the transport
// calls feed again before it waits for the network.
func (s *session) pending() bool {
	f := s.inf
	return f != nil && f.active && (f.last || f.pending())
}

// inflateNext inflates the next chunk of the compressed message: a data
// event, or eventNone when the inflater needs more input.
func (s *session) inflateNext() (event, error) {
	f := s.inf
	room := inflateWindow
	if m := s.dec.maxLength; m > 0 {
		if left := m - f.made; left < int64(room) {
			room = int(left) + 1 // one byte more shows the limit is passed
		}
	}
	out, end, ierr := f.next(room, f.last)
	// The rules are applied in the order of the inflated bytes, so that
	// the first byte that breaks one decides the close code, however the
	// input was cut.
	within, over := out, false
	if m := s.dec.maxLength; m > 0 && int64(len(out)) > m-f.made {
		within, over = out[:m-f.made], true
	}
	if f.typ == TextMessage && !f.utf8.feed(within) {
		s.dropInflate()
		return event{}, errInvalidUTF8
	}
	if over {
		s.dropInflate()
		return event{}, errInflateTooBig
	}
	if ierr != nil {
		s.dropInflate()
		return event{}, errInflateBad
	}
	f.made += int64(len(out))
	if end && f.typ == TextMessage && !f.utf8.complete() {
		s.dropInflate()
		return event{}, errInvalidUTF8
	}
	if end {
		f.active = false
		f.held = true // out is a slice of the window
	} else if len(out) == 0 {
		return event{}, nil
	}
	ev := event{kind: eventData, data: out, typ: f.typ, first: f.first, fin: end, compressed: true}
	f.first = false
	return ev, nil
}

// release lets go of what the session keeps only for the last event's
// data: the transport calls it before it waits for the network, so that
// an idle connection holds no inflater state (without context takeover).
func (s *session) release() {
	if f := s.inf; f != nil && f.held {
		f.held = false
		f.finish()
	}
}

// dropInflate abandons the message being inflated.
func (s *session) dropInflate() {
	if f := s.inf; f != nil && f.active {
		f.active = false
		f.finish()
	}
}

// fail makes err sticky, as the decoder's own errors are.
func (s *session) fail(err error) error {
	if err != nil {
		s.dec.err = err
	}
	return err
}

// directRemaining returns how many payload bytes of the current frame are
// still to come when the transport may read them straight into the
// message's buffer and give them to feed there (an uncompressed data
// frame, nothing buffered); 0 otherwise.
func (s *session) directRemaining() int64 {
	if s.inf != nil && s.inf.active || s.dec.msgCompressed && s.dec.msgOpen {
		return 0
	}
	return s.dec.payloadRemaining()
}

// queueClose queues a close frame with code and reason (cut to fit a
// control frame): the echo of the peer's close, or the close that fails
// the connection. Whether one is due is the transport's call, made under
// its lock, since the application may close from any goroutine.
func (s *session) queueClose(code StatusCode, reason string) {
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	var p [maxControlPayload]byte
	s.out = appendFrame(s.out, true, 0, opClose, appendClosePayload(p[:0], code, reason), s.client)
}

// takeOut returns the frames queued to send and empties the queue; the
// slice is valid until the next call to feed.
func (s *session) takeOut() []byte {
	b := s.out
	s.out = s.out[:0]
	return b
}

// close releases the inflater's state when the connection ends.
func (s *session) close() {
	s.release()
	s.dropInflate()
	if s.inf != nil {
		s.inf.close()
	}
}
