package websocket

import (
	"context"
	"errors"
	"io"
	"slices"
)

// readEvent returns the next event of the protocol core, reading from the
// network as needed and feeding the session. Pings are answered and close
// frames handled here, for every reading style. The caller holds readSem.
func (c *Conn) readEvent(ctx context.Context) (event, error) {
	for {
		if !c.drained() {
			n, ev, err := c.sess.feed(c.rd.rbuf[c.rd.rpos:c.rd.rend])
			c.rd.rpos += n
			if err != nil {
				return event{}, c.failProtocol(err)
			}
			if ev.kind != eventNone {
				return c.handleEvent(ev)
			}
		}
		if err := c.fill(ctx); err != nil {
			return event{}, err
		}
	}
}

// drained reports whether everything read from the network has been turned
// into events, so that the next event needs a read.
func (c *Conn) drained() bool { return c.rd.rpos == c.rd.rend && !c.sess.pending() }

// fill reads from the network into the (fully consumed) read buffer.
func (c *Conn) fill(ctx context.Context) error {
	n, err := c.netRead(ctx, nil)
	c.rd.rpos, c.rd.rend = 0, n
	return err
}

// netRead reads from the network into dst, or into the read buffer when
// dst is nil, bounded by ctx. A context's error leaves the connection
// intact; any other failure ends it (1006).
func (c *Conn) netRead(ctx context.Context, dst []byte) (int, error) {
	if err := c.beforeWait(); err != nil {
		return 0, err
	}
	g, err := startIO(ctx, c.netConn, readDeadline)
	if err != nil {
		return 0, err
	}
	var n int
	if dst == nil {
		n, err = c.readNet()
	} else {
		n, err = c.netConn.Read(dst)
	}
	return n, c.readResult(n, g.end(err))
}

// beforeWait runs before a read that may wait for the peer: it reports a
// connection already done, and sends the frames a write batch holds back,
// since the peer may be waiting for them.
func (c *Conn) beforeWait() error {
	if c.ReadyState() == Closed {
		return c.closeErr // set before the state moved to Closed
	}
	if c.batching.Load() {
		c.endBatch()
	}
	c.sess.release()
	return nil
}

// filled takes the result of a read into the read buffer.
func (c *Conn) filled(n int, err error) error {
	c.rd.rpos, c.rd.rend = 0, n
	return c.readResult(n, err)
}

// readResult takes the result of a read from the network: bytes mean
// success (an error comes back on the next read), a context's error leaves
// the connection intact, any other error ends it.
func (c *Conn) readResult(n int, err error) error {
	if n > 0 {
		c.heardFromPeer()
		return nil
	}
	if err == nil {
		return nil
	}
	if isContextErr(err) {
		return err // the connection is intact: the read can be retried
	}
	return c.failTransport(err)
}

// handleEvent applies the protocol's reactions to a control event and
// returns the event for the reading style to surface.
func (c *Conn) handleEvent(ev event) (event, error) {
	switch ev.kind {
	case eventPing:
		c.writeQueued() // the pong; a failure surfaces on the next read or write
		c.firePing(ev.data)
	case eventPong:
		c.pongReceived(ev.data)
		c.firePong(ev.data)
	case eventClose:
		return event{}, c.receiveClose(ev.code, ev.reason)
	}
	return ev, nil
}

// receiveClose completes the closing handshake after the peer's close frame
// (RFC 6455 §5.5.1, §7.1.2): echo it unless we sent ours first, let the TCP
// connection go down, and report the peer's code and reason.
func (c *Conn) receiveClose(code StatusCode, reason string) error {
	c.endBatch()
	c.closeMu.Lock()
	reply := !c.closeSent
	c.closeSent = true
	c.closeRecv = true
	c.closeMu.Unlock()
	c.state.CompareAndSwap(int32(Open), int32(Closing))
	if reply {
		c.sess.queueClose(code, "")
		c.writeQueued()
	}
	ce := &CloseError{Code: code, Reason: reason}
	c.linger()
	c.finish(ce)
	return ce
}

// failProtocol fails the connection after the peer broke the protocol
// (RFC 6455 §7.1.7): send a close frame with the code the error carries,
// then drop the TCP connection.
func (c *Conn) failProtocol(err error) error {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		pe = &ProtocolError{Code: StatusProtocolError, Reason: err.Error()}
	}
	c.endBatch()
	c.closeMu.Lock()
	send := !c.closeSent
	c.closeSent = true
	c.closeMu.Unlock()
	c.state.CompareAndSwap(int32(Open), int32(Closing))
	if send {
		c.sess.queueClose(pe.Code, pe.Reason)
		c.writeQueued()
	}
	if c.debugEnabled() {
		c.log().Debug("websocket: failing the connection: the peer broke the protocol", "remote", c.openNetConnAddr(), "error", pe)
	}
	c.fireError(pe)
	c.linger()
	c.finish(pe)
	return pe
}

// failTransport ends the connection after the network failed or the peer
// dropped TCP without the closing handshake: that is close code 1006.
func (c *Conn) failTransport(err error) error {
	c.finish(&CloseError{Code: StatusAbnormalClosure, Reason: err.Error()})
	return c.closeErr
}

// ErrEventLoopReads is returned by Read, ReadMessage and NextReader on a
// connection whose event loop reads it (Start was called): its messages go
// to the OnMessage handler, and the two reading styles cannot share a
// connection.
var ErrEventLoopReads = errors.New("websocket: the event loop reads this connection (Start was called); use OnMessage")

// Read returns the next data message in a new slice. Control frames are
// handled on the way: pings answered, the closing handshake completed.
// Once the connection is closed Read returns a *CloseError (or the
// *ProtocolError that failed it). If ctx ends before a message starts to
// arrive, Read returns ctx.Err() and the connection stays usable. On a
// connection started with Start, Read returns ErrEventLoopReads at once.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	return c.ReadMessage(ctx, nil)
}

// ReadMessage is Read into a caller's buffer: the message is appended to
// buf[:0], growing it if needed, and the result is returned. Reusing the
// returned slice makes steady-state reading allocation-free. If ctx ends
// while a message is partly read, the connection is dropped, since the rest
// of the message could not be delivered.
func (c *Conn) ReadMessage(ctx context.Context, buf []byte) (MessageType, []byte, error) {
	if c.eventing.Load() {
		return 0, buf[:0], ErrEventLoopReads
	}
	if err := c.acquire(ctx, &c.readSem); err != nil {
		return 0, buf[:0], err
	}
	defer c.readSem.release()
	typ, msg, err := c.readMessage(ctx, buf[:0])
	if err == nil && !c.drained() && !c.batching.Load() {
		// More is already here: the replies to it can share a write.
		c.beginBatch()
	}
	return typ, msg, err
}

// readMessage assembles one data message. The caller holds readSem.
func (c *Conn) readMessage(ctx context.Context, buf []byte) (MessageType, []byte, error) {
	if err := c.skipPartial(ctx); err != nil {
		return 0, buf, err
	}
	for {
		ev, err := c.nextData(ctx, &buf, false)
		if err != nil {
			return 0, buf, err
		}
		if ev.kind == eventData {
			return c.continueMessage(ctx, buf, ev)
		}
	}
}

// readEventMessage is readMessage for the event loop. By default the
// message is the handler's to keep: a new slice of exactly its size (one
// allocation), read straight into it when the message is one uncompressed
// frame, and copied out of buf otherwise. With BorrowMessageData (c.borrow)
// nothing is allocated: a message that came out of the session whole (one
// frame inside the read buffer, unmasked and validated there, or inflated
// in one piece) is returned in place, others are assembled in buf. kept is
// the buffer to reuse.
// Type 0 with no error means only control frames came and the read buffer
// is drained: the loop should wait for the next message where it may park.
func (c *Conn) readEventMessage(buf []byte) (typ MessageType, msg, kept []byte, err error) {
	ctx := context.Background()
	for {
		ev, err := c.readEvent(ctx)
		if err != nil {
			return 0, nil, buf, err
		}
		if ev.kind != eventData {
			if c.drained() && c.polled() {
				return 0, nil, buf, nil
			}
			continue
		}
		if ev.fin {
			return ev.typ, c.ownMessage(ev.data, nil), buf, nil
		}
		if d := &c.sess.dec; !c.borrow && !ev.compressed && d.inFrame && d.hdr.fin {
			// One frame, of a size its header announced: it goes straight
			// into the caller's slice. Only what the read path would have
			// asked for at once is allocated ahead, so that an announced
			// size the peer never sends cannot reserve memory.
			size := len(ev.data) + int(min(d.remaining, 1<<20))
			own := append(make([]byte, 0, size), ev.data...)
			typ, msg, err := c.continueMessage(ctx, own, ev)
			return typ, msg, buf, err
		}
		typ, msg, err := c.continueMessage(ctx, append(buf[:0], ev.data...), ev)
		return typ, c.ownMessage(msg, err), msg, err
	}
}

// ownMessage returns msg for OnMessage: itself when the handler borrows it,
// otherwise a copy that the handler owns. A failed read delivers nothing.
func (c *Conn) ownMessage(msg []byte, err error) []byte {
	if c.borrow || err != nil {
		return msg
	}
	own := make([]byte, len(msg))
	copy(own, msg)
	return own
}

// continueMessage completes a message whose first data event has been read
// and its payload appended to buf.
func (c *Conn) continueMessage(ctx context.Context, buf []byte, first event) (MessageType, []byte, error) {
	for ev := first; !ev.fin; {
		var err error
		if ev, err = c.nextData(ctx, &buf, true); err != nil {
			if isContextErr(err) {
				c.CloseNow() // the rest of the message cannot be delivered
			}
			return 0, buf, err
		}
	}
	return first.typ, buf, nil
}

// nextData returns the next event, appending data payloads to *buf. When a
// frame's payload is still to come and nothing is buffered, it is read
// straight into *buf and given to the session there, saving a copy for
// large messages.
func (c *Conn) nextData(ctx context.Context, buf *[]byte, started bool) (event, error) {
	if rem := c.sess.directRemaining(); rem > 0 && c.rd.rpos == c.rd.rend && started {
		b := *buf
		want := int(min(rem, 1<<20))
		if cap(b)-len(b) < want {
			b = slices.Grow(b, want)
		}
		dst := b[len(b) : len(b)+want]
		n, err := c.netRead(ctx, dst)
		*buf = b
		if n == 0 {
			return event{}, err
		}
		// Every byte read is payload of the current frame (at most what it
		// has left), so the session consumes all of it in place.
		_, ev, err := c.sess.feed(dst[:n])
		if err != nil {
			return event{}, c.failProtocol(err)
		}
		*buf = b[:len(b)+n]
		return ev, nil
	}
	ev, err := c.readEvent(ctx)
	if err == nil && ev.kind == eventData {
		*buf = append(*buf, ev.data...)
	}
	return ev, err
}

// skipPartial discards the rest of a message that a previous NextReader
// left unread.
func (c *Conn) skipPartial(ctx context.Context) error {
	for c.rd.inMsg {
		ev, err := c.readEvent(ctx)
		if err != nil {
			return err
		}
		if ev.kind == eventData && ev.fin {
			c.rd.inMsg = false
		}
	}
	return nil
}

// NextReader returns the type of the next data message and a reader for its
// payload, which streams it without holding it whole in memory. The reader
// is valid until the next call to NextReader, Read or ReadMessage, which
// discard whatever of it was not read. ctx bounds the wait for the message
// to start; the reader's Read calls are not bounded by it.
func (c *Conn) NextReader(ctx context.Context) (MessageType, io.Reader, error) {
	if c.eventing.Load() {
		return 0, nil, ErrEventLoopReads
	}
	if err := c.acquire(ctx, &c.readSem); err != nil {
		return 0, nil, err
	}
	defer c.readSem.release()
	if err := c.skipPartial(ctx); err != nil {
		return 0, nil, err
	}
	for {
		ev, err := c.readEvent(ctx)
		if err != nil {
			return 0, nil, err
		}
		if ev.kind != eventData {
			continue
		}
		if c.rd.msgRead == nil {
			c.rd.msgRead = &messageReader{c: c}
		}
		c.rd.msgRead.chunk = ev.data
		c.rd.msgRead.eof = ev.fin
		c.rd.inMsg = !ev.fin
		return ev.typ, c.rd.msgRead, nil
	}
}

// messageReader streams one message for NextReader.
type messageReader struct {
	c     *Conn
	chunk []byte // unread part of the last payload chunk (aliases rbuf or the inflater's window)
	eof   bool
}

// Read reads payload bytes of the message; it returns io.EOF at its end.
func (r *messageReader) Read(p []byte) (int, error) {
	c := r.c
	if err := c.acquire(context.Background(), &c.readSem); err != nil {
		return 0, err
	}
	defer c.readSem.release()
	return r.read(context.Background(), p)
}

// read is Read for a caller holding readSem.
func (r *messageReader) read(ctx context.Context, p []byte) (int, error) {
	c := r.c
	for len(r.chunk) == 0 {
		if r.eof || !c.rd.inMsg {
			return 0, io.EOF
		}
		ev, err := c.readEvent(ctx)
		if err != nil {
			return 0, err
		}
		if ev.kind != eventData {
			continue
		}
		r.chunk = ev.data
		if ev.fin {
			r.eof = true
			c.rd.inMsg = false
		}
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// isContextErr reports whether err is a context's error, which the read
// functions return when the caller's context ended; the network connection
// never returns one.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
