package conformance

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"
	"unicode/utf8"
)

// readTimeout bounds every wait for the library. Failing cases wait this long,
// passing ones never do.
var readTimeout = func() time.Duration {
	if s := os.Getenv("CONFORMANCE_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	return 3 * time.Second
}()

// maxFrame bounds what the tester will allocate for one frame from the library.
const maxFrame = 64 << 20

type splitMode uint8

const (
	splitNone   splitMode = iota // everything in one write
	splitFrames                  // one write per frame
	splitBytes                   // one write per byte
	splitRandom                  // writes of random sizes (1..64 bytes)
)

func (s splitMode) String() string {
	return [...]string{"whole", "per-frame", "byte-at-a-time", "random-chunks"}[s]
}

// rawPeer is the hand-written end of a connection: the client when the library
// is the server, the server when the library is the client.
type rawPeer struct {
	conn     net.Conn
	br       *bufio.Reader
	isClient bool // the tester plays the client: masks what it sends, expects unmasked frames
	rng      *rand.Rand

	// message reassembly state for nextItem
	partOp         byte
	partData       []byte
	inMsg          bool
	partCompressed bool

	lastKey  [4]byte
	keyCount int
	keys     map[[4]byte]bool // every mask key seen from the library

	sending chan error // result of the write in flight, if any

	// endAfterClose ends the tester's half of an HTTP/2 stream after the
	// closing handshake, as HTTP/2 clients do.
	endAfterClose bool

	deflateState
}

func newRawPeer(conn net.Conn, br *bufio.Reader, isClient bool, seed uint64) *rawPeer {
	return &rawPeer{
		conn:     conn,
		br:       br,
		isClient: isClient,
		rng:      rand.New(rand.NewPCG(seed, 0x5eed)),
		keys:     map[[4]byte]bool{},
	}
}

func (p *rawPeer) encode(f frame) []byte {
	if f.gen != nil {
		f.payload = f.gen()
	}
	mask := p.isClient
	switch f.mask {
	case maskForceOff:
		mask = false
	case maskForceOn:
		mask = true
	}
	if f.compress {
		return p.encodeCompressed(f, mask)
	}
	return encodeFrame(f, mask, p.rng)
}

// sendFrames writes the frames in the given split mode and waits until they
// are written. Write errors are returned but callers usually ignore them: a
// library that failed the connection early may already have closed TCP, which
// is the behaviour being tested.
func (p *rawPeer) sendFrames(frames []frame, split splitMode) error {
	p.startSend(frames, split)
	return p.waitSend()
}

// startSend writes the frames on a goroutine, so that the tester can read the
// library's echo while a large message is still going out; otherwise both
// ends could block on full TCP buffers. Frames are encoded here, on the
// caller's goroutine, which owns p.rng.
func (p *rawPeer) startSend(frames []frame, split splitMode) {
	if err := p.waitSend(); err != nil {
		// Keep the earlier error for the caller of the next waitSend.
		p.sending = make(chan error, 1)
		p.sending <- err
		return
	}
	var all []byte
	var chunks [][]byte
	for _, f := range frames {
		b := p.encode(f)
		if split == splitFrames {
			chunks = append(chunks, b)
		}
		all = append(all, b...)
	}
	switch split {
	case splitNone:
		chunks = [][]byte{all}
	case splitBytes:
		for i := range all {
			chunks = append(chunks, all[i:i+1])
		}
	case splitRandom:
		for len(all) > 0 {
			n := 1 + p.rng.IntN(64)
			n = min(n, len(all))
			chunks = append(chunks, all[:n])
			all = all[n:]
		}
	}
	done := make(chan error, 1)
	p.sending = done
	conn := p.conn
	go func() {
		conn.SetWriteDeadline(time.Now().Add(readTimeout + 60*time.Second))
		for i, c := range chunks {
			if _, err := conn.Write(c); err != nil {
				done <- err
				return
			}
			// A pause lets each piece leave as its own TCP segment, so the
			// library really sees partial frames rather than a coalesced buffer.
			if split >= splitBytes && i < len(chunks)-1 && len(chunks) <= 1024 {
				time.Sleep(200 * time.Microsecond)
			}
		}
		done <- nil
	}()
}

// waitSend waits for the frames of the last startSend to be written.
func (p *rawPeer) waitSend() error {
	if p.sending == nil {
		return nil
	}
	err := <-p.sending
	p.sending = nil
	return err
}

// item is what the library sent, at message level: a whole data message
// (fragments reassembled) or one control frame.
type item struct {
	op   byte
	data []byte
}

func (it item) String() string {
	switch it.op {
	case opClose:
		code, reason := parseClose(it.data)
		if code == codeEmpty {
			return "close(no status)"
		}
		return fmt.Sprintf("close(%d %q)", code, reason)
	case opText, opBinary, opPing, opPong:
		if len(it.data) <= 64 {
			return fmt.Sprintf("%s(%d bytes %q)", opName(it.op), len(it.data), it.data)
		}
		return fmt.Sprintf("%s(%d bytes, sha1 %x)", opName(it.op), len(it.data), sha1.Sum(it.data))
	}
	return opName(it.op)
}

func parseClose(p []byte) (uint16, string) {
	if len(p) < 2 {
		return codeEmpty, string(p)
	}
	return uint16(p[0])<<8 | uint16(p[1]), string(p[2:])
}

// protoViolation is an error in what the library itself sent.
type protoViolation struct{ msg string }

func (e *protoViolation) Error() string { return "library sent an invalid frame: " + e.msg }

// nextItem reads frames until a whole message or a control frame is available,
// checking every rule the RFC puts on the sender as it goes.
func (p *rawPeer) nextItem(timeout time.Duration) (item, error) {
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, err := readFrame(p.br, maxFrame)
		if err != nil {
			return item{}, err
		}
		if err := p.check(f); err != nil {
			return item{}, err
		}
		switch f.op {
		case opClose, opPing, opPong:
			return item{op: f.op, data: f.payload}, nil
		case opText, opBinary:
			if p.inMsg {
				return item{}, &protoViolation{"new data frame while a fragmented message is open"}
			}
			p.partOp, p.partData, p.inMsg = f.op, append([]byte(nil), f.payload...), true
			p.partCompressed = f.rsv&rsv1 != 0
		case opCont:
			if !p.inMsg {
				return item{}, &protoViolation{"continuation frame without a message"}
			}
			p.partData = append(p.partData, f.payload...)
		}
		if f.fin {
			p.inMsg = false
			it := item{op: p.partOp, data: p.partData}
			p.partData = nil
			if p.partCompressed {
				p.compressedIn++
				if it.data, err = p.inflate(it.data); err != nil {
					return it, &protoViolation{"compressed message does not inflate: " + err.Error()}
				}
			}
			if it.op == opText && !utf8.Valid(it.data) {
				return it, &protoViolation{"text message is not valid UTF-8"}
			}
			return it, nil
		}
	}
}

func (p *rawPeer) check(f wireFrame) error {
	if p.isClient && f.masked {
		return &protoViolation{"server frame is masked (RFC 6455 5.1: a server MUST NOT mask)"}
	}
	if !p.isClient {
		if !f.masked {
			return &protoViolation{"client frame is not masked (RFC 6455 5.3: a client MUST mask)"}
		}
		if p.keyCount > 0 && f.key == p.lastKey {
			return &protoViolation{fmt.Sprintf("client reused the previous mask key %x (RFC 6455 5.3: fresh key per frame)", f.key)}
		}
		p.keys[f.key] = true
		p.lastKey = f.key
		p.keyCount++
	}
	if f.rsv == rsv1 && p.deflate && (f.op == opText || f.op == opBinary) {
		// RFC 7692 6: RSV1 marks the first frame of a compressed message.
	} else if f.rsv != 0 {
		return &protoViolation{fmt.Sprintf("RSV bits %#x set on a %s frame (RFC 6455 5.2, RFC 7692 6.1)", f.rsv, opName(f.op))}
	}
	if !f.minimal {
		return &protoViolation{fmt.Sprintf("non-minimal length encoding for %d bytes (RFC 6455 5.2: MUST use the minimal number of bytes)", len(f.payload))}
	}
	switch f.op {
	case opCont, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin {
			return &protoViolation{"fragmented control frame"}
		}
		if len(f.payload) > 125 {
			return &protoViolation{fmt.Sprintf("control frame with %d bytes of payload", len(f.payload))}
		}
		if f.op == opClose {
			if err := checkSentClose(f.payload); err != nil {
				return err
			}
		}
	default:
		return &protoViolation{fmt.Sprintf("reserved opcode %d", f.op)}
	}
	return nil
}

func checkSentClose(p []byte) error {
	if len(p) == 1 {
		return &protoViolation{"close frame with a 1-byte payload"}
	}
	if len(p) == 0 {
		return nil
	}
	code, reason := parseClose(p)
	if !validCloseCode(code) {
		return &protoViolation{fmt.Sprintf("close code %d may not be sent on the wire", code)}
	}
	if !utf8.ValidString(reason) {
		return &protoViolation{"close reason is not UTF-8"}
	}
	return nil
}

// validCloseCode is the tester's own reading of RFC 6455 7.4 and the IANA
// registry: 1000-1003, 1007-1014 and 3000-4999 may be sent.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// expectTCPClose waits for the library to close the TCP connection. Any frame
// arriving instead is an error: nothing may follow a close frame.
func (p *rawPeer) expectTCPClose(timeout time.Duration) error {
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	f, err := readFrame(p.br, maxFrame)
	if err == nil {
		return fmt.Errorf("library sent a %s frame after the close frame, want TCP close", opName(f.op))
	}
	if isClosed(err) {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("library did not close TCP within %v", timeout)
	}
	return fmt.Errorf("waiting for TCP close: %w", err)
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// acceptKey computes Sec-WebSocket-Accept (RFC 6455 4.2.2 step 5.4).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func newKey(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func sameItem(a, b item) bool { return a.op == b.op && bytes.Equal(a.data, b.data) }
