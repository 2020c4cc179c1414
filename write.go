package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultWriteTimeout is the bound on a write when the options give none.
// A peer that reads at all drains a socket buffer in far less (a megabyte
// over a 1 Mbit/s link takes 8 s, and the kernel buffers hundreds of KiB of
// it); a peer that has stopped reading is found in seconds, and a sender
// is not held longer than the closing handshake's 5 s plus a margin for
// slow links and pauses.
const DefaultWriteTimeout = 10 * time.Second

// ErrWriteTimeout is returned by a write that the write timeout (see
// ServerOptions.WriteTimeout) cut short: the peer did not take the bytes in
// time. The frame is then half-sent, so the connection is dropped, and the
// reads and OnClose report StatusAbnormalClosure. It matches
// os.ErrDeadlineExceeded with errors.Is, and has Timeout() true as a
// net.Error does.
var ErrWriteTimeout error = writeTimeoutError{}

type writeTimeoutError struct{}

func (writeTimeoutError) Error() string        { return "websocket: write timed out" }
func (writeTimeoutError) Timeout() bool        { return true }
func (writeTimeoutError) Temporary() bool      { return false }
func (writeTimeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// configureBounds applies the options' write timeout and keepalive.
func (c *Conn) configureBounds(writeTimeout, pingInterval, pongTimeout time.Duration) {
	if writeTimeout != 0 {
		c.writeTimeout = writeTimeout
	}
	if pingInterval > 0 {
		if pongTimeout <= 0 {
			pongTimeout = pingInterval
		}
		k := c.keepalive()
		k.interval, k.timeout = pingInterval, pongTimeout
	}
}

// Write buffers are pooled, not owned by connections, so an idle
// connection holds none.
const (
	smallWriteBuf = 4096 + maxHeaderSize
	largeWriteBuf = 64<<10 + maxHeaderSize
)

var (
	smallWritePool = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteBuf); return &b }}
	largeWritePool = sync.Pool{New: func() any { b := make([]byte, 0, largeWriteBuf); return &b }}
)

func checkMessageType(typ MessageType) error {
	if typ != TextMessage && typ != BinaryMessage {
		return fmt.Errorf("websocket: invalid message type %d", typ)
	}
	return nil
}

// Write sends p as one message of type typ. It waits for any message being
// written by another goroutine to finish first. The write is bounded by ctx
// and by the write timeout (the earlier wins): if ctx ends during the
// write, or the timeout passes (ErrWriteTimeout), the connection is
// dropped, since a frame cut in the middle cannot be recovered.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	if err := checkMessageType(typ); err != nil {
		return err
	}
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return err
	}
	defer c.msgSem.release()
	if c.ReadyState() != Open {
		return ErrClosed
	}
	if c.pmd != nil {
		return c.writeDeflate(ctx, opcode(typ), p)
	}
	return c.writeFrame(ctx, true, 0, opcode(typ), p)
}

// writeControl sends a control frame, bounded by the close timeout as well
// as the write timeout, so that a peer that stops reading cannot hold the
// reading goroutine (which answers pings and close frames) for long.
func (c *Conn) writeControl(op opcode, p []byte) error {
	return c.writeFrameWithin(context.Background(), c.controlLimit(), true, 0, op, p)
}

// writeQueued writes the frames the session queued (pongs, close replies),
// bounded as a control frame is.
func (c *Conn) writeQueued() error {
	b := c.sess.takeOut()
	if len(b) == 0 {
		return nil
	}
	return c.writeBytes(context.Background(), c.controlLimit(), b)
}

// controlLimit bounds the writing of a control frame: the close timeout or
// the write timeout, whichever is shorter.
func (c *Conn) controlLimit() time.Duration {
	limit := c.closeTimeout
	if c.writeTimeout > 0 && c.writeTimeout < limit {
		limit = c.writeTimeout
	}
	return limit
}

// writeBytes writes b, whole frames, bounded by ctx and limit (if
// positive). Like every write it ends the connection if it fails.
func (c *Conn) writeBytes(ctx context.Context, limit time.Duration, b []byte) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if c.writeFailed {
		return ErrClosed
	}
	g, err := c.beginWrite(ctx, limit)
	if err != nil {
		return err
	}
	return c.endWrite(g, c.sendLocked(b))
}

// writeFrame writes one frame whole, bounded by ctx and the write timeout.
func (c *Conn) writeFrame(ctx context.Context, fin bool, rsv uint8, op opcode, p []byte) error {
	return c.writeFrameWithin(ctx, c.writeTimeout, fin, rsv, op, p)
}

// writeFrameWithin writes one frame whole, bounded by ctx and by limit (if
// positive). A failed write leaves the stream in an unknown state, so it
// ends the connection.
func (c *Conn) writeFrameWithin(ctx context.Context, limit time.Duration, fin bool, rsv uint8, op opcode, p []byte) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if c.writeFailed {
		return ErrClosed
	}
	g, err := c.beginWrite(ctx, limit)
	if err != nil {
		return err
	}
	return c.endWrite(g, c.writeFrameLocked(fin, rsv, op, p))
}

// beginWrite arms the write deadline for one write: the earlier of ctx's
// deadline and limit from now; when ctx is cancelled the deadline moves to
// the past so that a blocked write returns. The guard it returns (nil when
// ctx cannot end) goes to endWrite. The caller holds frameMu.
//
// The hot path is a context that cannot end: it costs no allocation and
// one read of the monotonic clock, and the deadline is moved only when the
// one armed before leaves less than 15/16 of limit, since moving it takes
// the runtime's locks and a connection writing many small messages would
// otherwise pay for it every time. A write is so bounded by at least 15/16
// of limit and at most limit.
func (c *Conn) beginWrite(ctx context.Context, limit time.Duration) (*ioGuard, error) {
	if ctx.Done() == nil {
		if limit > 0 {
			dl := time.Since(monoEpoch) + limit
			if d := dl - c.wdl; c.wdl == 0 || d < 0 || d > limit>>4 {
				c.netConn.SetWriteDeadline(monoEpoch.Add(dl))
				c.wdl = dl
			}
		} else if c.wdl != 0 {
			c.netConn.SetWriteDeadline(time.Time{})
			c.wdl = 0
		}
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var dl time.Time
	if limit > 0 {
		dl = time.Now().Add(limit)
	}
	if cdl, ok := ctx.Deadline(); ok && (dl.IsZero() || cdl.Before(dl)) {
		dl = cdl
	}
	set := c.netConn.SetWriteDeadline
	set(dl)
	c.wdl = 0 // the guard clears the deadline when it ends
	g := &ioGuard{ctx: ctx, set: set, fired: make(chan struct{})}
	g.stop = context.AfterFunc(ctx, func() {
		set(aLongTimeAgo)
		close(g.fired)
	})
	return g, nil
}

// monoEpoch is the origin of the write deadlines a Conn remembers (wdl):
// time.Since of a time with a monotonic reading reads one clock, where
// time.Now reads two.
var monoEpoch = time.Now()

// endWrite ends a write begun by beginWrite and turns its error into one of
// the library's: the context's error if ctx ended, ErrWriteTimeout if the
// write timeout passed, ErrClosed if the connection was closed meanwhile
// (by Close's timer, CloseNow or keepalive), else the network's error
// wrapped. Any failure drops the connection. The caller holds frameMu.
func (c *Conn) endWrite(g *ioGuard, err error) error {
	if err = g.end(err); err == nil {
		return nil
	}
	switch {
	case isContextErr(err):
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = ErrWriteTimeout
	case errors.Is(err, net.ErrClosed):
		err = ErrClosed
	default:
		err = fmt.Errorf("websocket: write failed: %w", err)
	}
	// Whatever the cause, the stream is cut: later writes report a closed
	// connection, reads and OnClose the cause. A socket closed under the
	// write is already being finished by whoever closed it, with the
	// reason that matters.
	c.writeFailed = true
	if err != ErrClosed {
		ce := &CloseError{Code: StatusAbnormalClosure, Reason: strings.TrimPrefix(err.Error(), "websocket: ")}
		if err == ErrWriteTimeout {
			// Not the context's error: a read that returns it must not
			// look like one whose own context ended.
			ce.err = err
		}
		c.finish(ce)
	}
	return err
}

func (c *Conn) writeFrameLocked(fin bool, rsv uint8, op opcode, p []byte) error {
	pool := &smallWritePool
	if len(p) > smallWriteBuf-maxHeaderSize {
		pool = &largeWritePool
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	b := (*bp)[:0]

	if !c.client {
		b = appendFrameHeader(b, fin, rsv, op, int64(len(p)), false, [4]byte{})
		if len(p) <= cap(b)-len(b) {
			return c.sendLocked(append(b, p...))
		}
		if err := c.flushBatchLocked(); err != nil {
			return err
		}
		// Header and payload go out in one writev, without copying.
		v := frameVecPool.Get().(*frameVec)
		v.bufs = append(v.bufs, b, p)
		err := c.writeVec(v)
		clear(v.bufs)
		v.bufs = v.bufs[:0]
		frameVecPool.Put(v)
		return err
	}

	// A client masks a copy of the payload, one buffer at a time.
	key := newMaskKey()
	b = appendFrameHeader(b, fin, rsv, op, int64(len(p)), true, key)
	pos := 0
	for {
		n := min(len(p), cap(b)-len(b))
		start := len(b)
		b = append(b, p[:n]...)
		pos = maskBytes(key, pos, b[start:])
		p = p[n:]
		if err := c.sendLocked(b); err != nil {
			return err
		}
		if len(p) == 0 {
			return nil
		}
		b = b[:0]
	}
}

// NextWriter returns a writer for one message of type typ. Written bytes are
// buffered and sent as fragments; Close sends the last fragment. No other
// message can be sent until the writer is closed (control frames can). ctx
// bounds the whole message.
func (c *Conn) NextWriter(ctx context.Context, typ MessageType) (*MessageWriter, error) {
	if err := checkMessageType(typ); err != nil {
		return nil, err
	}
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return nil, err
	}
	if c.ReadyState() != Open {
		c.msgSem.release()
		return nil, ErrClosed
	}
	if c.msgWrite == nil {
		c.msgWrite = &MessageWriter{c: c}
	}
	w := c.msgWrite
	w.ctx = ctx
	w.op = opcode(typ)
	w.closed = false
	w.err = nil
	w.bp = smallWritePool.Get().(*[]byte)
	w.buf = (*w.bp)[:0]
	return w, nil
}

// MessageWriter writes one message as a stream (see NextWriter). It
// implements io.WriteCloser.
type MessageWriter struct {
	c      *Conn
	ctx    context.Context
	op     opcode // opcode of the next fragment: the type, then continuation
	bp     *[]byte
	buf    []byte
	closed bool
	err    error
	// deflate says the message is being compressed (see flushDeflate).
	deflate bool
}

// fragmentSize is how much a MessageWriter buffers before it sends a
// fragment.
const fragmentSize = smallWriteBuf - maxHeaderSize

// Write buffers p, sending full fragments as the buffer fills.
func (w *MessageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("websocket: write to a closed message writer")
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == fragmentSize {
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
		k := copy(w.buf[len(w.buf):fragmentSize], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

func (w *MessageWriter) flush(fin bool) error {
	var err error
	if w.c.ReadyState() != Open {
		err = ErrClosed // no data may follow a close frame (RFC 6455 §5.5.1)
	} else if w.c.pmd != nil {
		err = w.flushDeflate(fin)
	} else {
		err = w.c.writeFrame(w.ctx, fin, 0, w.op, w.buf)
	}
	w.op = opContinuation
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// Close sends what is buffered as the message's final fragment and lets the
// next message be written.
func (w *MessageWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.flush(true)
	}
	*w.bp = w.buf[:0]
	smallWritePool.Put(w.bp)
	w.bp, w.buf = nil, nil
	w.c.msgSem.release()
	return err
}

// PreparedMessage is a message encoded once to be written to many
// connections, for broadcast. A server writes its frame bytes as they are;
// a client, which must mask every frame with a fresh key, encodes it anew.
type PreparedMessage struct {
	typ   MessageType
	data  []byte
	frame []byte // the unmasked frame, as a server sends it
	// deflated holds the compressed payloads shared by connections that
	// compress without context takeover.
	deflated deflatePrepared
}

// NewPreparedMessage encodes data as one message of type typ. data must not
// be modified afterwards.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if err := checkMessageType(typ); err != nil {
		return nil, err
	}
	return &PreparedMessage{
		typ:   typ,
		data:  data,
		frame: appendFrame(nil, true, 0, opcode(typ), data, false),
	}, nil
}

// WritePrepared sends pm, like Write, or several prepared messages in
// order. Given several, a server connection without compression sends them
// all with one system call (writev), with no other message between them: a
// writer that has fallen behind (a chat member's queue, a feed) catches up
// at the cost of one write, not one per message. With compression,
// connections that compress without context takeover share one compressed
// payload per flate level, made by the first of them to send pm; the
// others compress it for themselves. ctx and the write timeout bound the
// whole call; on error, how many of the messages went out is unknown and
// the connection is dropped, as with any failed write.
func (c *Conn) WritePrepared(ctx context.Context, pms ...*PreparedMessage) error {
	if c.pmd != nil || c.client {
		for _, pm := range pms {
			var err error
			if c.pmd != nil {
				err = c.writePreparedDeflate(ctx, pm)
			} else {
				err = c.Write(ctx, pm.typ, pm.data)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return err
	}
	defer c.msgSem.release()
	if c.ReadyState() != Open {
		return ErrClosed
	}
	if len(pms) == 1 {
		return c.writeBytes(ctx, c.writeTimeout, pms[0].frame)
	}
	return c.writeFrames(ctx, pms)
}

// writeFrames sends the frames of several prepared messages with one
// writev, or adds them to the open write batch. The caller holds msgSem.
func (c *Conn) writeFrames(ctx context.Context, pms []*PreparedMessage) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if c.writeFailed {
		return ErrClosed
	}
	g, err := c.beginWrite(ctx, c.writeTimeout)
	if err != nil {
		return err
	}
	if c.batching.Load() {
		for _, pm := range pms {
			if err := c.sendLocked(pm.frame); err != nil {
				return c.endWrite(g, err)
			}
		}
		return c.endWrite(g, nil)
	}
	v := frameVecPool.Get().(*frameVec)
	for _, pm := range pms {
		v.bufs = append(v.bufs, pm.frame)
	}
	err = c.writeVec(v)
	clear(v.bufs)
	v.bufs = v.bufs[:0]
	frameVecPool.Put(v)
	return c.endWrite(g, err)
}

// Write batching. When several messages arrive together, their replies
// should not cost a system call each. So when a read returns a message and
// more bytes are already buffered, a batch opens: frames written from then
// on (from any goroutine) are gathered and go out in one write when the
// batch ends. It ends before the reader waits for the network, before a
// close frame is answered, when it holds maxBatch bytes, and at the latest
// batchDelay after it opened, so a reader that stops reading cannot hold
// frames back.
const (
	maxBatch   = 64 << 10
	batchDelay = 500 * time.Microsecond
)

// sendLocked writes b, one or more whole frames, or adds it to the open
// batch. The caller holds frameMu.
func (c *Conn) sendLocked(b []byte) error {
	if c.batching.Load() {
		bt := c.bat
		if len(bt.buf)+len(b) > cap(bt.buf) {
			if err := c.flushBatchLocked(); err != nil {
				return err
			}
		}
		if len(b) <= cap(bt.buf) {
			bt.buf = append(bt.buf, b...)
			return nil
		}
	}
	_, err := c.netConn.Write(b)
	return err
}

// flushBatchLocked writes what the batch holds. The caller holds frameMu.
func (c *Conn) flushBatchLocked() error {
	bt := c.bat
	if bt == nil || len(bt.buf) == 0 {
		return nil
	}
	_, err := c.netConn.Write(bt.buf)
	bt.buf = bt.buf[:0]
	return err
}

// beginBatch opens a batch; the reading goroutine calls it.
func (c *Conn) beginBatch() {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if c.batching.Load() || c.writeFailed {
		return
	}
	if c.bat == nil {
		c.bat = new(writeBatch)
	}
	bt := c.bat
	bt.slot = largeWritePool.Get().(*[]byte)
	bt.buf = (*bt.slot)[:0]
	c.batching.Store(true)
	if bt.timer == nil {
		bt.timer = time.AfterFunc(batchDelay, c.endBatch)
	} else {
		bt.timer.Reset(batchDelay)
	}
}

// endBatch sends what the batch gathered and closes it. The reading
// goroutine and the batch timer call it; a call with no batch open does
// nothing.
func (c *Conn) endBatch() {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if !c.batching.Load() {
		return
	}
	var err error
	bt := c.bat
	if !c.writeFailed && len(bt.buf) > 0 {
		c.beginWrite(context.Background(), c.writeTimeout)
		err = c.flushBatchLocked()
	}
	c.batching.Store(false)
	*bt.slot = bt.buf[:0]
	largeWritePool.Put(bt.slot)
	bt.slot, bt.buf = nil, nil
	if err != nil {
		c.endWrite(nil, err)
	}
}

// frameVec is a writev's list of buffers (a frame's header and payload,
// or several frames). Kept in a pool rather than in each Conn: an idle
// connection should not carry it, and a net.Buffers on the stack would
// escape to the heap at every write.
type frameVec struct {
	bufs net.Buffers
	work net.Buffers // what WriteTo consumes
}

var frameVecPool = sync.Pool{New: func() any { return &frameVec{bufs: make(net.Buffers, 0, 8)} }}

// writeVec writes v.bufs with one writev where the transport has it: a
// TCP connection (net.Buffers), or the event-loop backend's connection.
func (c *Conn) writeVec(v *frameVec) error {
	if nc := loopNetConn(c.netConn); nc != nil {
		return nc.WriteBuffers(v.bufs)
	}
	v.work = v.bufs // WriteTo empties the slice it is given
	_, err := v.work.WriteTo(c.netConn)
	v.work = nil
	return err
}

// writeBatch is a connection's write batch (see sendLocked), made the first
// time it batches; its buffer is pooled and held only while a batch is
// open.
type writeBatch struct {
	buf   []byte      // frames gathered while batching
	slot  *[]byte     // buf's pool slot
	timer *time.Timer // ends a batch that lasts too long
}
