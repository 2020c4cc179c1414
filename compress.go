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

// messageDecompressor inflates whole messages of one connection in one
// direction (peer to us), for callers that have the whole compressed
// payload at hand. It is the streaming inflater (inflate.go) run to the
// end of the message.
type messageDecompressor struct{ f inflater }

func deflateNewDecompressor(takeover bool) *messageDecompressor {
	return &messageDecompressor{f: inflater{takeover: takeover}}
}

// decompress appends the inflated form of one whole compressed message (the
// concatenated payloads of its frames, as received) to dst. An empty payload
// is an empty message. It never inflates more than limit+1 bytes: past
// limit it returns an error wrapping errInflateTooLarge (a negative limit
// means none). Invalid data gives an error wrapping errInflateCorrupt.
// After an error the decompressor's window is unreliable; the connection
// must be failed.
func (d *messageDecompressor) decompress(dst, compressed []byte, limit int64) ([]byte, error) {
	if limit > math.MaxInt64/4 {
		limit = -1 // no real bound, and limit+1 must not overflow
	}
	f := &d.f
	f.begin()
	defer f.finish()
	f.write(compressed)
	start := len(dst)
	for {
		room := inflateWindow
		if limit >= 0 {
			room = int(min(int64(room), limit+1-int64(len(dst)-start)))
		}
		out, end, err := f.next(room, true)
		if err != nil {
			return dst[:start], fmt.Errorf("%w: %v", errInflateCorrupt, err)
		}
		if cur := len(dst) - start; cap(dst)-len(dst) < len(out) {
			// Double the message part, jumping straight to limit+1 when
			// the doubling after this one would pass it, so that a bomb
			// costs about twice the limit in total.
			want := int64(max(2*cur, cur+len(out), 512))
			if limit >= 0 && 2*want > limit+1 {
				want = max(limit+1, int64(cur+len(out)))
			}
			grown := make([]byte, len(dst), start+int(want))
			copy(grown, dst)
			dst = grown
		}
		dst = append(dst, out...)
		if limit >= 0 && int64(len(dst)-start) > limit {
			return dst[:start], fmt.Errorf("%w: over %d bytes", errInflateTooLarge, limit)
		}
		if end {
			return dst, nil
		}
	}
}

// close releases the decompressor's state when the connection ends.
func (d *messageDecompressor) close() { d.f.close() }

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

// peerTakeover reports whether the peer may use context takeover for the
// messages it sends, so that their inflater must keep its window.
func (dp deflateParams) peerTakeover(isServer bool) bool {
	noTakeover := dp.serverNoContextTakeover
	if isServer {
		noTakeover = dp.clientNoContextTakeover
	}
	return !noTakeover
}
