package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// CompressionOptions turns on permessage-deflate (RFC 7692) for a connection.
// A nil *CompressionOptions means compression is off: nothing is offered by a
// client and every offer is declined by a server. A non-nil value, even the
// zero value, means on; the zero value is a good default: level 1, messages
// of 128 bytes and more compressed, context takeover in both directions, no
// window limits.
//
// Compression is negotiated, so it is used only when both sides agree; when
// the peer declines, or its offer cannot be accepted, the connection proceeds
// uncompressed. The package documentation's Compression section says what
// is supported and how errors close the connection.
//
// Memory: with context takeover (the default) each connection keeps, between
// messages, a compress/flate writer for the messages it sends and a 32 KiB
// window of the messages it received. Heap held per server connection after
// a 1 KiB message each way, measured by BenchmarkCompressedConnMemory with Go
// 1.26 on linux/amd64: 1,245,728 bytes at Level 1 (the default) and 852,512
// at level 6, against 5,728 for a connection without compression; the flate
// writer is nearly all of it (BenchmarkCompressionMemory: 846,666 bytes at
// levels 6 and 9, 770,624 Huffman-only). With NoContextTakeover (6,048
// bytes measured), nothing is held between messages: writers and readers
// come from pools for one message. When only the peer's messages use
// context takeover, the 32 KiB window remains (38,816 bytes measured). For
// many mostly idle connections NoContextTakeover is the choice; context
// takeover pays off for streams of small, similar messages (a 1 KiB JSON
// message repeated: 2% of its size with takeover, 18% without, in
// BenchmarkCompress).
type CompressionOptions struct {
	// Level is the compress/flate level for messages we send: 1
	// (flate.BestSpeed) to 9 (flate.BestCompression), -1
	// (flate.DefaultCompression) or -2 (flate.HuffmanOnly). 0 and any
	// other value mean flate.BestSpeed, which costs a fraction of the
	// CPU of higher levels for a small loss of ratio on typical
	// WebSocket messages.
	Level int

	// Threshold is the size in bytes below which messages are sent
	// uncompressed, as deflate gains little on them and costs a flush.
	// 0 means 128. A negative value compresses every message.
	Threshold int

	// NoContextTakeover asks for, and uses, no context takeover in both
	// directions: each message is compressed on its own. This saves the
	// per-connection memory described above at the cost of ratio on
	// small, similar messages, and lets a broadcast message be
	// compressed once for all such connections.
	NoContextTakeover bool

	// ServerMaxWindowBits (8 to 15, 0 meaning no limit) limits the LZ77
	// window the server compresses with: a server uses it for its own
	// messages, a client asks the server for it.
	ServerMaxWindowBits int

	// ClientMaxWindowBits (8 to 15, 0 meaning no limit) is the same for
	// the client's messages: a client limits itself, a server asks the
	// client for it. It saves memory only in the peer; Go's inflater
	// always allocates a 32 KiB window.
	ClientMaxWindowBits int
}

const (
	compressDefaultLevel     = flate.BestSpeed
	compressDefaultThreshold = 128
	// compressWindow is the largest LZ77 window (2^15 bytes, RFC 1951).
	compressWindow = 1 << 15
)

// level returns the flate level to use, applying the documented default.
func (o *CompressionOptions) level() int {
	if o == nil {
		return compressDefaultLevel
	}
	return compressLevel(o.Level)
}

// compressLevel maps 0 and invalid levels to the default.
func compressLevel(level int) int {
	if level == flate.NoCompression || level < flate.HuffmanOnly || level > flate.BestCompression {
		return compressDefaultLevel
	}
	return level
}

func (o *CompressionOptions) threshold() int {
	if o == nil || o.Threshold == 0 {
		return compressDefaultThreshold
	}
	if o.Threshold < 0 {
		return 0
	}
	return o.Threshold
}

// deflateTail is the empty stored block of a sync flush. RFC 7692 §7.2.1
// strips it from every compressed message; §7.2.2 puts it back before
// inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTrailer is deflateTail followed by a final empty stored block, so
// that the inflater ends with io.EOF instead of waiting for more blocks.
var inflateTrailer = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var (
	errInflateTooLarge = errors.New("websocket: decompressed message too large")
	errInflateCorrupt  = errors.New("websocket: invalid compressed data")
)

// compressWriterPools holds idle flate writers, one pool per level from
// flate.HuffmanOnly (-2) to flate.BestCompression (9).
var compressWriterPools [flate.BestCompression - flate.HuffmanOnly + 1]sync.Pool

func compressGetWriter(w io.Writer, level int) *flate.Writer {
	if fw, ok := compressWriterPools[level-flate.HuffmanOnly].Get().(*flate.Writer); ok {
		fw.Reset(w)
		return fw
	}
	fw, err := flate.NewWriter(w, level)
	if err != nil {
		// Unreachable: callers normalise levels. Falling back keeps a
		// bad level from ever panicking on a connection.
		fw, _ = flate.NewWriter(w, compressDefaultLevel)
	}
	return fw
}

// compressPutWriter pools fw. It is not Reset here, as a Reset clears the
// hash tables and costs as much as a small message; compressGetWriter resets
// it anyway. Callers empty their compressSink first, so a pooled writer
// keeps no message alive.
func compressPutWriter(fw *flate.Writer, level int) {
	compressWriterPools[level-flate.HuffmanOnly].Put(fw)
}

// compressSink is the io.Writer behind a flate.Writer: it appends to a slice
// the caller owns, so compressed bytes land directly in the frame buffer.
type compressSink struct{ b []byte }

func (s *compressSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// messageCompressor compresses the messages of one connection in one
// direction (ours to the peer). It is not safe for concurrent use; the write
// path serialises messages anyway.
//
// Go's compress/flate always compresses with a 32 KiB window, while the peer
// may demand max_window_bits below 15 (RFC 7692 §7.1.2). Such a limit is
// still honoured: without context takeover, a message no longer than
// 2^bits bytes cannot hold a back-reference further than its own length, so
// it is compressed at the configured level; a longer message, or one whose
// length is not known up front (streamed fragments), is compressed with
// flate.HuffmanOnly, which emits no back-references at all. Context takeover
// is dropped for our direction in that case, which a compressor may always do
// on its own: the peer's decompressor simply never sees a reference into
// earlier messages.
type messageCompressor struct {
	level      int
	threshold  int
	takeover   bool
	windowBits int // 8..14, or 0 for the full 32 KiB window

	fw        *flate.Writer // with takeover: kept across messages
	fwLevel   int
	sink      compressSink
	inMessage bool
}

// deflateNewCompressor returns a compressor. windowBits is the limit the
// peer imposed on us (0 or 15: none).
func deflateNewCompressor(level, threshold int, takeover bool, windowBits int) *messageCompressor {
	if windowBits >= 15 || windowBits < 0 {
		windowBits = 0
	}
	if windowBits != 0 {
		takeover = false
	}
	return &messageCompressor{level: compressLevel(level), threshold: threshold, takeover: takeover, windowBits: windowBits}
}

// wants reports whether a message of n bytes should be compressed at all
// (the Threshold option).
func (c *messageCompressor) wants(n int) bool {
	return n >= c.threshold
}

// messageLevel picks the flate level for a message of n bytes under the
// window-bits rule; whole says n is the whole message.
func (c *messageCompressor) messageLevel(n int, whole bool) int {
	if c.windowBits == 0 || (whole && n <= 1<<c.windowBits) {
		return c.level
	}
	return flate.HuffmanOnly
}

// sharedLevel reports whether a whole message of n bytes may be sent on this
// connection as the standalone payload compressMessageOnce(level, …) makes,
// and at which level. It is false with context takeover, because the peer's
// window must then match our compressor's history exactly. Connections with
// equal levels share one compressed payload.
func (c *messageCompressor) sharedLevel(n int) (level int, ok bool) {
	if c.takeover {
		return 0, false
	}
	return c.messageLevel(n, true), true
}

// compress appends the compressed form of a whole message to dst, without
// the 00 00 ff ff tail (RFC 7692 §7.2.1). The result is the payload of the
// message's frames; the first frame carries RSV1.
func (c *messageCompressor) compress(dst, payload []byte) ([]byte, error) {
	return c.compressFragment(dst, payload, true)
}

// compressFragment compresses a message written in pieces (one per frame):
// each call appends the compressed bytes for p, flushed so that the fragment
// can go out at once; fin marks the last piece, whose tail is stripped.
// Every message must end with a call with fin set.
func (c *messageCompressor) compressFragment(dst, p []byte, fin bool) ([]byte, error) {
	if !c.inMessage {
		c.inMessage = true
		if c.fw == nil {
			c.fwLevel = c.level
			if !c.takeover {
				c.fwLevel = c.messageLevel(len(p), fin)
			}
			c.fw = compressGetWriter(&c.sink, c.fwLevel)
		}
	}
	c.sink.b = dst
	_, err := c.fw.Write(p)
	if err == nil {
		err = c.fw.Flush()
	}
	out := c.sink.b
	c.sink.b = nil
	if err != nil {
		c.reset()
		return dst, err
	}
	if fin {
		if !bytes.HasSuffix(out, deflateTail) {
			c.reset()
			return dst, errors.New("websocket: flate flush without sync marker")
		}
		out = out[:len(out)-len(deflateTail)]
		c.inMessage = false
		if !c.takeover {
			c.reset()
		}
	}
	return out, nil
}

// reset returns the flate writer to its pool. A compressor with takeover
// must then start the next message afresh, which the peer accepts: its
// window only ever contains what it received.
func (c *messageCompressor) reset() {
	if c.fw != nil {
		compressPutWriter(c.fw, c.fwLevel)
		c.fw = nil
	}
	c.inMessage = false
}

// close releases the compressor's resources when the connection ends.
func (c *messageCompressor) close() { c.reset() }

// compressMessageOnce compresses payload as a standalone message (no context
// takeover) with a pooled writer, for sending the same bytes to many
// connections whose sharedLevel returned level. The tail is stripped.
func compressMessageOnce(level int, payload []byte) []byte {
	level = compressLevel(level)
	var sink compressSink
	fw := compressGetWriter(&sink, level)
	// Writes to compressSink cannot fail, so neither can the flate writer.
	_, _ = fw.Write(payload)
	_ = fw.Flush()
	out := sink.b
	sink.b = nil
	compressPutWriter(fw, level)
	return out[:len(out)-len(deflateTail)]
}

// inflateSource feeds the inflater one message followed by inflateTrailer,
// without copying the message. It implements io.ByteReader so that
// compress/flate does not wrap it in a bufio.Reader.
type inflateSource struct {
	msg  []byte
	tail []byte
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(s.msg) > 0 {
		n := copy(p, s.msg)
		s.msg = s.msg[n:]
		return n, nil
	}
	if len(s.tail) > 0 {
		n := copy(p, s.tail)
		s.tail = s.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.msg) > 0 {
		b := s.msg[0]
		s.msg = s.msg[1:]
		return b, nil
	}
	if len(s.tail) > 0 {
		b := s.tail[0]
		s.tail = s.tail[1:]
		return b, nil
	}
	return 0, io.EOF
}

// inflateReaders pools flate readers. Even with context takeover a reader is
// needed only while a message is inflated: the window is carried over in
// messageDecompressor.history and handed back through Reset's dictionary.
var inflateReaders sync.Pool

// messageDecompressor inflates the messages of one connection in one
// direction (peer to us). It is not safe for concurrent use.
type messageDecompressor struct {
	takeover bool
	// history is the last ≤32 KiB of inflated output, the dictionary
	// for the next message when the peer uses context takeover.
	history []byte
	src     inflateSource
	// streamBuf is the input buffer of reader, reused across messages.
	streamBuf []byte
}

func deflateNewDecompressor(takeover bool) *messageDecompressor {
	return &messageDecompressor{takeover: takeover}
}

// decompress appends the inflated form of one whole compressed message (the
// concatenated payloads of its frames, as received) to dst. An empty payload
// is an empty message. It never inflates
// more than limit+1 bytes: past limit it returns an error wrapping
// errInflateTooLarge (a negative limit means none). Invalid data gives an
// error wrapping errInflateCorrupt. After an error the decompressor's window
// is unreliable; the connection must be failed.
func (d *messageDecompressor) decompress(dst, compressed []byte, limit int64) ([]byte, error) {
	if len(compressed) == 0 {
		// Not valid deflate once the tail is appended, but a natural way
		// for a peer to send an empty message; nothing to inflate.
		return dst, nil
	}
	d.src = inflateSource{msg: compressed, tail: inflateTrailer}
	var dict []byte
	if d.takeover {
		dict = d.history
	}
	var fr io.ReadCloser
	if r, ok := inflateReaders.Get().(io.ReadCloser); ok {
		if err := r.(flate.Resetter).Reset(&d.src, dict); err != nil {
			return dst, fmt.Errorf("%w: %v", errInflateCorrupt, err)
		}
		fr = r
	} else {
		fr = flate.NewReaderDict(&d.src, dict)
	}
	start := len(dst)
	dst, err := inflateAppend(dst, fr, limit)
	d.src = inflateSource{}
	inflateReaders.Put(fr)
	if err != nil {
		return dst[:start], err
	}
	if d.takeover {
		d.remember(dst[start:])
	}
	return dst, nil
}

// inflateAppend reads fr to the end into dst, stopping after limit+1 bytes.
func inflateAppend(dst []byte, fr io.Reader, limit int64) ([]byte, error) {
	if limit > math.MaxInt64/4 {
		limit = -1 // no real bound, and limit+1 arithmetic must not overflow
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			// Double the message part, jumping straight to limit+1
			// when the doubling after this one would pass it, so a
			// bomb costs about twice the limit in total.
			want := int64(max(2*(len(dst)-start), 512))
			if limit >= 0 && 2*want > limit+1 {
				want = max(limit+1, int64(len(dst)-start)+1)
			}
			grown := make([]byte, len(dst), start+int(want))
			copy(grown, dst)
			dst = grown
		}
		buf := dst[len(dst):cap(dst)]
		if limit >= 0 {
			if room := limit + 1 - int64(len(dst)-start); int64(len(buf)) > room {
				buf = buf[:room]
			}
		}
		n, err := fr.Read(buf)
		dst = dst[:len(dst)+n]
		if limit >= 0 && int64(len(dst)-start) > limit {
			return dst, fmt.Errorf("%w: over %d bytes", errInflateTooLarge, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("%w: %v", errInflateCorrupt, err)
		}
	}
}

// remember keeps the last 32 KiB of the window (history + out).
func (d *messageDecompressor) remember(out []byte) {
	if len(out) >= compressWindow {
		d.history = append(d.history[:0], out[len(out)-compressWindow:]...)
		return
	}
	if d.history == nil {
		d.history = make([]byte, 0, compressWindow)
	}
	if drop := len(d.history) + len(out) - compressWindow; drop > 0 {
		d.history = append(d.history[:0], d.history[drop:]...)
	}
	d.history = append(d.history, out...)
}

// close releases the decompressor's buffers when the connection ends.
func (d *messageDecompressor) close() { d.history, d.streamBuf = nil, nil }

// newCompressor returns the compressor for the messages this side sends,
// given the agreed parameters and our own options. Our own NoContextTakeover
// also applies when the peer did not echo it: dropping context takeover is
// always allowed for the sender.
func (dp deflateParams) newCompressor(isServer bool, opts *CompressionOptions) *messageCompressor {
	noTakeover, bits := dp.clientNoContextTakeover, dp.clientMaxWindowBits
	if isServer {
		noTakeover, bits = dp.serverNoContextTakeover, dp.serverMaxWindowBits
	} else if own := deflateOptBits(opts.ClientMaxWindowBits); own != 0 {
		// We told the server we would not exceed this.
		bits = deflateMinBits(bits, own)
	}
	return deflateNewCompressor(opts.level(), opts.threshold(), !noTakeover && !opts.NoContextTakeover, bits)
}

// newDecompressor returns the decompressor for the messages the peer sends.
// It keeps a window unless the agreement forbids the peer to use one.
func (dp deflateParams) newDecompressor(isServer bool) *messageDecompressor {
	noTakeover := dp.serverNoContextTakeover
	if isServer {
		noTakeover = dp.clientNoContextTakeover
	}
	return deflateNewDecompressor(!noTakeover)
}

// inflateStreamSource feeds the inflater a message whose compressed bytes
// arrive through an io.Reader (for example the frames of a message read on
// demand), then inflateTrailer. Its buffer makes it an io.ByteReader, so
// compress/flate reads it byte by byte without a bufio.Reader of its own.
type inflateStreamSource struct {
	src      io.Reader
	buf      []byte
	r, w     int
	srcDone  bool
	trailerN int   // bytes of inflateTrailer consumed
	total    int64 // bytes read from src
	err      error
}

func (s *inflateStreamSource) fill() error {
	if s.srcDone {
		if s.trailerN == len(inflateTrailer) || s.total == 0 {
			// An empty payload is an empty message, as in decompress.
			return io.EOF
		}
		s.r, s.w = 0, copy(s.buf, inflateTrailer[s.trailerN:])
		s.trailerN += s.w
		return nil
	}
	if s.err != nil {
		return s.err
	}
	for range 100 { // a reader returning 0, nil forever must not hang us
		n, err := s.src.Read(s.buf)
		s.r, s.w = 0, n
		s.total += int64(n)
		if err == io.EOF {
			s.srcDone = true
			if n == 0 {
				return s.fill()
			}
		} else if err != nil {
			s.err = err
			if n == 0 {
				return err
			}
		}
		if n > 0 {
			return nil
		}
	}
	s.err = io.ErrNoProgress
	return s.err
}

func (s *inflateStreamSource) Read(p []byte) (int, error) {
	if s.r == s.w {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r:s.w])
	s.r += n
	return n, nil
}

func (s *inflateStreamSource) ReadByte() (byte, error) {
	if s.r == s.w {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	b := s.buf[s.r]
	s.r++
	return b, nil
}

// inflateReader is the inflated view of one compressed message, from
// messageDecompressor.reader.
type inflateReader struct {
	d     *messageDecompressor
	fr    io.ReadCloser
	src   inflateStreamSource
	n     int64 // bytes inflated so far
	limit int64
	err   error
}

// reader returns a reader of the inflated message whose compressed payload
// (the frames' payloads, tail stripped as on the wire) src yields until
// io.EOF. It enforces limit like decompress, and fails with an error
// wrapping errInflateCorrupt on invalid data; an error from src is returned
// as is. Close must be called once the message is done with, to release the
// inflater; the next message must not start before. With context takeover
// the output read so far becomes the window for the next message, so the
// message must be read to io.EOF (or the connection failed).
func (d *messageDecompressor) reader(src io.Reader, limit int64) *inflateReader {
	if limit > math.MaxInt64/4 {
		limit = -1
	}
	r := &inflateReader{d: d, limit: limit}
	if d.streamBuf == nil {
		d.streamBuf = make([]byte, 4096)
	}
	r.src = inflateStreamSource{src: src, buf: d.streamBuf}
	var dict []byte
	if d.takeover {
		dict = d.history
	}
	if fr, ok := inflateReaders.Get().(io.ReadCloser); ok {
		if err := fr.(flate.Resetter).Reset(&r.src, dict); err != nil {
			r.err = fmt.Errorf("%w: %v", errInflateCorrupt, err)
		}
		r.fr = fr
	} else {
		r.fr = flate.NewReaderDict(&r.src, dict)
	}
	return r
}

func (r *inflateReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.fr == nil {
		return 0, errors.New("websocket: read after close")
	}
	if r.limit >= 0 {
		if room := r.limit + 1 - r.n; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := r.fr.Read(p)
	r.n += int64(n)
	if r.limit >= 0 && r.n > r.limit {
		r.err = fmt.Errorf("%w: over %d bytes", errInflateTooLarge, r.limit)
		return 0, r.err
	}
	if r.d.takeover {
		r.d.remember(p[:n])
	}
	switch {
	case err == nil:
	case err == io.EOF, r.src.srcDone && r.src.total == 0 && err == io.ErrUnexpectedEOF:
		r.err = io.EOF
	case r.src.err != nil && errors.Is(err, r.src.err):
		r.err = r.src.err
	case r.src.err != nil && err == io.ErrUnexpectedEOF:
		r.err = r.src.err // the transport failed mid-message
	default:
		r.err = fmt.Errorf("%w: %v", errInflateCorrupt, err)
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// Close returns the inflater to its pool.
func (r *inflateReader) Close() error {
	if r.fr != nil {
		r.src = inflateStreamSource{}
		inflateReaders.Put(r.fr)
		r.fr = nil
	}
	return nil
}
