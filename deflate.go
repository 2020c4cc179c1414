package websocket

import (
	"context"
	"strings"
	"sync"
)

// This file connects permessage-deflate (extension.go, compress.go) to a
// connection: the handshakes store what was agreed, the write paths
// compress, and the session (session.go) inflates what is read. Every hook
// in the write path is a single call behind a nil check of c.pmd, and the
// session inflates only messages with RSV1, which only a connection with
// compression agreed accepts, so a connection without compression pays one
// comparison per call and no allocation.

// deflateConn is a connection's permessage-deflate state, created by the
// handshake when compression was agreed.
type deflateConn struct {
	params deflateParams
	// comp is used only by the holder of msgSem, so it needs no lock of
	// its own. Received messages are inflated by the session (c.sess), which
	// only the holder of readSem uses.
	comp *messageCompressor
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
	}
	c.sess.enableDeflate(params.peerTakeover(isServer))
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
	if c.msgSem.tryAcquire() {
		d.comp.close()
		c.msgSem.release()
	}
	if c.readSem.tryAcquire() {
		c.sess.close()
		c.readSem.release()
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
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return err
	}
	defer c.msgSem.release()
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
