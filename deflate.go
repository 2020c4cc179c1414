package websocket

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
)

// This file connects permessage-deflate (extension.go, compress.go) to a
// connection: the handshakes store what was agreed, the write paths compress,
// the read paths inflate. Every hook in the protocol code is a single call
// behind a nil check of c.pmd (or of the event's compressed flag, which only
// a connection with c.pmd set can see), so a connection without compression
// pays one comparison per call and no allocation.

// deflateConn is a connection's permessage-deflate state, created by the
// handshake when compression was agreed.
type deflateConn struct {
	params deflateParams
	// comp is used only by the holder of msgSem, decomp only by the holder
	// of readSem, so neither needs a lock of its own.
	comp   *messageCompressor
	decomp *messageDecompressor

	// The stream NextReader returned for the current compressed message;
	// it lives here so that opening one allocates only the inflater.
	stream     deflateStream
	streamOpen bool
	raw        deflateRaw
}

// errorString is an error whose text is fixed, for handshake failures that
// carry no further structure.
type errorString string

func (e errorString) Error() string { return string(e) }

// negotiateServerExtensions answers the client's Sec-WebSocket-Extensions
// and, when compression is agreed, sets the connection up for it. An error
// means the header was unreadable with compression on; the handshake answers
// it with 400 and the error's text.
func (c *Conn) negotiateServerExtensions(offers []string, opts *CompressionOptions) (string, error) {
	params, resp, ok, err := deflateNegotiateServer(offers, opts)
	if err != nil {
		return "", errorString(strings.TrimPrefix(err.Error(), "websocket: "))
	}
	if ok {
		c.enableDeflate(params, opts)
	}
	return resp, nil
}

// clientExtensionOffer is the client's Sec-WebSocket-Extensions value, or
// "" to send none.
func clientExtensionOffer(opts *CompressionOptions) string { return deflateClientOffer(opts) }

// acceptClientExtensions checks the server's Sec-WebSocket-Extensions and
// sets the connection up for what it agreed to. An error fails the
// handshake (RFC 6455 §4.1, RFC 7692 §5.1).
func (c *Conn) acceptClientExtensions(values []string, opts *CompressionOptions) error {
	params, ok, err := deflateAcceptResponse(opts, values)
	if err != nil {
		return errorString(strings.TrimPrefix(err.Error(), "websocket: "))
	}
	if ok {
		c.enableDeflate(params, opts)
	}
	return nil
}

// Extensions returns the extensions agreed in the opening handshake as a
// Sec-WebSocket-Extensions value, or "" when none were.
func (c *Conn) Extensions() string {
	if c.pmd == nil {
		return ""
	}
	return c.pmd.params.format()
}

// enableDeflate switches the connection to permessage-deflate with the
// agreed params: RSV1 becomes legal on a message's first frame.
func (c *Conn) enableDeflate(params deflateParams, opts *CompressionOptions) {
	isServer := !c.client
	c.pmd = &deflateConn{
		params: params,
		comp:   params.newCompressor(isServer, opts),
		decomp: params.newDecompressor(isServer),
	}
	c.dec.allowRSV1 = true
}

// releaseDeflate returns pooled flate state when the connection ends. A
// compressor or decompressor in use by a writer or reader at that moment is
// left alone (taking it from under them would corrupt a pooled object); the
// write path releases the compressor itself once it sees the connection is
// closed, and anything else is reclaimed with the connection by the garbage
// collector.
func (c *Conn) releaseDeflate() {
	d := c.pmd
	if d == nil {
		return
	}
	select {
	case c.msgSem <- struct{}{}:
		d.comp.close()
		<-c.msgSem
	default:
	}
	select {
	case c.readSem <- struct{}{}:
		d.closeStream()
		d.decomp.close()
		<-c.readSem
	default:
	}
}

// Compressed output and received compressed messages go through pooled
// buffers, so an idle connection holds none. Buffers that grew past
// deflateBufKeep are left to the garbage collector rather than pinned in the
// pool.
const deflateBufKeep = 256 << 10

var deflateBufPool = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteBuf); return &b }}

func deflateBufGet() *[]byte { return deflateBufPool.Get().(*[]byte) }

// deflateBufPut returns bp to the pool, keeping b, the grown slice that was
// last appended into it.
func deflateBufPut(bp *[]byte, b []byte) {
	if cap(b) > deflateBufKeep {
		return
	}
	*bp = b[:0]
	deflateBufPool.Put(bp)
}

// writeDeflate sends p as one message, compressed unless it is below the
// threshold. The caller holds msgSem.
func (c *Conn) writeDeflate(ctx context.Context, op opcode, p []byte) error {
	d := c.pmd
	if !d.comp.wants(len(p)) {
		return c.writeFrame(ctx, true, 0, op, p)
	}
	bp := deflateBufGet()
	out, err := d.comp.compress((*bp)[:0], p)
	if err == nil {
		err = c.writeFrame(ctx, true, rsv1, op, out)
	}
	deflateBufPut(bp, out)
	c.deflateWriteDone()
	return err
}

// deflateWriteDone releases the compressor once the connection is closed,
// for the writer that held it when finish ran. The caller holds msgSem.
func (c *Conn) deflateWriteDone() {
	if c.ReadyState() == Closed {
		c.pmd.comp.close()
	}
}

// flushDeflate sends the buffered part of a streamed message. The first
// fragment decides whether the message is compressed: it is when that
// fragment alone reaches the threshold, which a message longer than one
// fragment always does unless the threshold is above the fragment size.
func (w *MessageWriter) flushDeflate(fin bool) error {
	c := w.c
	comp := c.pmd.comp
	var rsv uint8
	if w.op != opContinuation {
		w.deflate = comp.wants(len(w.buf))
		if w.deflate {
			rsv = rsv1 // RFC 7692 §6: on the first frame only
		}
	}
	if !w.deflate {
		return c.writeFrame(w.ctx, fin, 0, w.op, w.buf)
	}
	bp := deflateBufGet()
	out, err := comp.compressFragment((*bp)[:0], w.buf, fin)
	if err == nil {
		err = c.writeFrame(w.ctx, fin, rsv, w.op, out)
	}
	deflateBufPut(bp, out)
	if err != nil {
		// The message is abandoned; the next one starts afresh, which the
		// peer accepts whatever its window holds.
		comp.reset()
	}
	if fin || err != nil {
		c.deflateWriteDone()
	}
	return err
}

// deflatePrepared caches a PreparedMessage's compressed payloads, one per
// flate level, for the connections that can share them.
type deflatePrepared struct {
	mu      sync.Mutex
	payload []deflatePreparedLevel
}

type deflatePreparedLevel struct {
	level int
	data  []byte
}

// get returns data compressed as a standalone message at level, compressing
// it on the first request only. The lock is held while compressing so that
// connections asking at once wait for one compression instead of each doing
// their own.
func (p *deflatePrepared) get(level int, data []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.payload {
		if e.level == level {
			return e.data
		}
	}
	out := compressMessageOnce(level, data)
	p.payload = append(p.payload, deflatePreparedLevel{level: level, data: out})
	return out
}

// writePreparedDeflate is WritePrepared on a connection with compression:
// connections whose sending direction has no context takeover share one
// compressed payload per level, the others compress for themselves.
func (c *Conn) writePreparedDeflate(ctx context.Context, pm *PreparedMessage) error {
	if err := c.acquire(ctx, c.msgSem); err != nil {
		return err
	}
	defer func() { <-c.msgSem }()
	if c.ReadyState() != Open {
		return ErrClosed
	}
	op, comp := opcode(pm.typ), c.pmd.comp
	if !comp.wants(len(pm.data)) {
		return c.writeFrame(ctx, true, 0, op, pm.data)
	}
	if level, ok := comp.sharedLevel(len(pm.data)); ok {
		return c.writeFrame(ctx, true, rsv1, op, pm.deflated.get(level, pm.data))
	}
	return c.writeDeflate(ctx, op, pm.data)
}

// readDeflated reads the rest of a compressed message whose first event
// readMessage got (its payload already appended to buf) and returns the
// message inflated into buf[:0]. The caller holds readSem.
func (c *Conn) readDeflated(ctx context.Context, typ MessageType, buf []byte, ev event) (MessageType, []byte, error) {
	bp := deflateBufGet()
	wire := append((*bp)[:0], buf...)
	buf = buf[:0]
	for !ev.fin {
		var err error
		if ev, err = c.nextData(ctx, &wire, true); err != nil {
			deflateBufPut(bp, wire)
			if isContextErr(err) {
				c.CloseNow()
			}
			return 0, buf, err
		}
	}
	out, err := c.pmd.decomp.decompress(buf, wire, c.maxLength)
	deflateBufPut(bp, wire)
	if err != nil {
		return 0, out, c.deflateFail(err)
	}
	if typ == TextMessage {
		// The decoder leaves compressed text alone; only the inflated
		// bytes can be checked (RFC 7692 §8 keeps RFC 6455 §8.1).
		var v utf8Validator
		if !v.feed(out) || !v.complete() {
			return 0, out, c.failProtocol(errInvalidUTF8)
		}
	}
	return typ, out, nil
}

// deflateFail fails the connection for an inflate error: 1009 for a message
// that inflates past MaxLength, 1007 for data that is not valid deflate.
// Other errors come from the transport, which has already ended the
// connection.
func (c *Conn) deflateFail(err error) error {
	switch {
	case errors.Is(err, errInflateTooLarge):
		return c.failProtocol(&ProtocolError{Code: StatusMessageTooBig, Reason: "decompressed message exceeds the maximum length"})
	case errors.Is(err, errInflateCorrupt):
		return c.failProtocol(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: strings.TrimPrefix(err.Error(), "websocket: ")})
	}
	return err
}

// deflateRaw is the compressed payload of the message being streamed, read
// frame by frame through the connection's messageReader. It takes no lock:
// its caller holds readSem.
type deflateRaw struct {
	c   *Conn
	ctx context.Context
}

func (r *deflateRaw) Read(p []byte) (int, error) { return r.c.msgRead.read(r.ctx, p) }

// openDeflateStream returns NextReader's reader for a compressed message
// whose first event NextReader has loaded into msgRead.
func (c *Conn) openDeflateStream(typ MessageType) io.Reader {
	d := c.pmd
	d.raw = deflateRaw{c: c, ctx: context.Background()}
	d.stream = deflateStream{c: c, typ: typ, ir: d.decomp.reader(&d.raw, c.maxLength)}
	d.streamOpen = true
	return &d.stream
}

// closeStream releases the inflater of an open stream. The caller holds
// readSem.
func (d *deflateConn) closeStream() {
	if d.streamOpen {
		d.stream.ir.Close()
		d.streamOpen = false
	}
}

// skipDeflate finishes a compressed message that NextReader's caller left
// unread. It is inflated to its end rather than skipped, because with
// context takeover the next message may refer to any of it, and so that a
// broken message fails the connection as it would if it had been read. The
// caller holds readSem.
func (c *Conn) skipDeflate(ctx context.Context) error {
	d := c.pmd
	if d == nil || !d.streamOpen {
		return nil
	}
	d.raw.ctx = ctx
	defer func() { d.raw.ctx = context.Background() }()
	var scratch [2048]byte
	for {
		_, err := d.stream.read(scratch[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if isContextErr(err) {
				// The inflater cannot resume after its input failed.
				c.CloseNow()
			}
			return err
		}
	}
}

// deflateStream is the reader NextReader returns for a compressed message:
// it inflates the frames as they are read, enforcing MaxLength on the
// inflated size and UTF-8 on inflated text.
type deflateStream struct {
	c    *Conn
	typ  MessageType
	ir   *inflateReader
	utf8 utf8Validator
	err  error // sticky: io.EOF at the end, or why the stream failed
}

// Read reads inflated bytes of the message; it returns io.EOF at its end.
func (s *deflateStream) Read(p []byte) (int, error) {
	c := s.c
	if err := c.acquire(context.Background(), c.readSem); err != nil {
		return 0, err
	}
	defer func() { <-c.readSem }()
	return s.read(p)
}

// read is Read for a caller holding readSem.
func (s *deflateStream) read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.c.pmd.streamOpen {
		// finish released the inflater: the connection is gone.
		return 0, s.fail(s.c.doneErr())
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.ir.Read(p)
	if s.typ == TextMessage && n > 0 && !s.utf8.feed(p[:n]) {
		return 0, s.fail(s.c.failProtocol(errInvalidUTF8))
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if s.typ == TextMessage && !s.utf8.complete() {
			return 0, s.fail(s.c.failProtocol(errInvalidUTF8))
		}
		return n, s.fail(io.EOF)
	}
	return 0, s.fail(s.c.deflateFail(err))
}

// fail ends the stream with err and releases its inflater.
func (s *deflateStream) fail(err error) error {
	s.err = err
	s.c.pmd.closeStream()
	return err
}
