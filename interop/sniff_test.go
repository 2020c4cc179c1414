package interop

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sniffConn watches the frames crossing our side's TCP connection, in both
// directions, without changing a byte. It lets a case check what the APIs
// hide: that a message really went as several frames, that the pong we sent
// carried the ping's payload.
type sniffConn struct {
	net.Conn
	in, out frameScanner
	// outDone, for a connection seen through a sniffRelay, is closed once
	// the relay has passed on the end of what our server wrote; nil when
	// the sniffer wraps our own end and sees each write as it is made.
	outDone chan struct{}
}

// awaitOut reports whether ok holds for what our side wrote. A sniffer on
// our own end sees a write as it is made, so ok is asked once; a relayed
// one sees it once the relay has read it, so ok is asked again as frames
// arrive, until it holds, our server ends its stream, or a long timeout.
func (s *sniffConn) awaitOut(ok func() bool) bool {
	if s.outDone == nil {
		return ok()
	}
	timeout := time.NewTimer(caseTimeout)
	defer timeout.Stop()
	for {
		// The channel is taken before ok is asked: bytes fed in between
		// then leave a token in it, instead of going unnoticed.
		changed := s.out.changed()
		if ok() {
			return true
		}
		select {
		case <-changed:
		case <-s.outDone:
			return ok()
		case <-timeout.C:
			return false
		}
	}
}

// newClientSniff wraps a connection our client dialed: both directions
// start with the HTTP handshake.
func newClientSniff(c net.Conn) *sniffConn {
	s := &sniffConn{Conn: c}
	s.in.reset(true)
	s.out.reset(true)
	return s
}

// startServer is called by our server's handler before the handshake: the
// request has been read in full (the client sends nothing before the
// response), the response is yet to be written. Until then the connection
// may have carried plain HTTP requests, which the scanners ignore.
func (s *sniffConn) startServer() {
	s.in.reset(false)
	s.out.reset(true)
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	s.in.feed(p[:n])
	return n, err
}

func (s *sniffConn) Write(p []byte) (int, error) {
	n, err := s.Conn.Write(p)
	s.out.feed(p[:n])
	return n, err
}

// CloseWrite passes the half-close through: the library uses it to end a
// connection politely, and hiding it would change what goes on the wire.
func (s *sniffConn) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sniffListener wraps every accepted connection in a sniffConn.
type sniffListener struct{ net.Listener }

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c}, nil
}

// frameRecord is one frame seen on the wire; Payload is kept (unmasked)
// for control frames only.
type frameRecord struct {
	Fin     bool
	Rsv1    bool // set on the first frame of a compressed message
	Opcode  byte
	Length  uint64
	Payload []byte
}

// frameScanner parses a byte stream into frame headers incrementally; it
// never fails, it only stops making sense of garbage.
type frameScanner struct {
	mu        sync.Mutex
	active    bool
	inHeaders bool   // skipping an HTTP head up to CRLFCRLF
	tail      []byte // last bytes of the HTTP head seen
	head      []byte // the HTTP head, up to maxHead bytes
	hdr       []byte // frame header being collected
	remaining uint64 // payload bytes of the current frame still to come
	cur       frameRecord
	mask      [4]byte
	masked    bool
	off       uint64
	frames    []frameRecord
	notify    chan struct{} // gets a token when bytes have been fed
}

// changed returns a channel that gets a token when bytes have been fed.
func (f *frameScanner) changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notify == nil {
		f.notify = make(chan struct{}, 1)
	}
	return f.notify
}

func (f *frameScanner) reset(inHeaders bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.inHeaders = true, inHeaders
	f.tail, f.head, f.hdr, f.remaining, f.frames = nil, nil, nil, 0, nil
}

// maxHead bounds the HTTP head a scanner keeps.
const maxHead = 16 << 10

func (f *frameScanner) feed(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return // a server connection's scanner waits for startServer
	}
	if f.notify != nil {
		defer func() {
			select {
			case f.notify <- struct{}{}:
			default:
			}
		}()
	}
	for len(p) > 0 {
		switch {
		case f.inHeaders:
			i := 0
			for ; i < len(p); i++ {
				f.tail = append(f.tail, p[i])
				if len(f.head) < maxHead {
					f.head = append(f.head, p[i])
				}
				if len(f.tail) > 4 {
					f.tail = f.tail[1:]
				}
				if bytes.Equal(f.tail, []byte("\r\n\r\n")) {
					f.inHeaders = false
					f.tail = nil
					i++
					break
				}
			}
			p = p[i:]
		case f.remaining > 0:
			k := uint64(len(p))
			if k > f.remaining {
				k = f.remaining
			}
			if f.cur.Opcode >= 8 {
				for _, b := range p[:k] {
					if f.masked {
						b ^= f.mask[f.off%4]
					}
					f.cur.Payload = append(f.cur.Payload, b)
					f.off++
				}
			}
			f.remaining -= k
			p = p[k:]
			if f.remaining == 0 {
				f.frames = append(f.frames, f.cur)
			}
		default:
			f.hdr = append(f.hdr, p[0])
			p = p[1:]
			f.parseHeader()
		}
	}
}

// parseHeader completes the frame header in f.hdr once it has all its bytes.
func (f *frameScanner) parseHeader() {
	h := f.hdr
	if len(h) < 2 {
		return
	}
	need := 2
	switch h[1] & 0x7f {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	masked := h[1]&0x80 != 0
	if masked {
		need += 4
	}
	if len(h) < need {
		return
	}
	var n uint64
	switch h[1] & 0x7f {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:10])
	default:
		n = uint64(h[1] & 0x7f)
	}
	f.cur = frameRecord{Fin: h[0]&0x80 != 0, Rsv1: h[0]&0x40 != 0, Opcode: h[0] & 0x0f, Length: n}
	f.masked = masked
	if masked {
		copy(f.mask[:], h[need-4:need])
	}
	f.off = 0
	f.hdr = f.hdr[:0]
	f.remaining = n
	if n == 0 {
		f.frames = append(f.frames, f.cur)
	}
}

// snapshot returns the frames seen so far.
func (f *frameScanner) snapshot() []frameRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frameRecord(nil), f.frames...)
}

// headerValues returns the values of the header field name in the HTTP
// head the scanner saw, if it was a 101 response.
func (f *frameScanner) headerValues(name string) (values []string, isResponse bool) {
	f.mu.Lock()
	head := string(f.head)
	f.mu.Unlock()
	lines := strings.Split(head, "\r\n")
	if !strings.HasPrefix(lines[0], "HTTP/1.1 101") {
		return nil, false
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			values = append(values, strings.TrimSpace(v))
		}
	}
	return values, true
}

// count returns how many frames with the opcode were seen.
func (f *frameScanner) count(op byte) int {
	n := 0
	for _, fr := range f.snapshot() {
		if fr.Opcode == op {
			n++
		}
	}
	return n
}

// controls returns the payloads of the control frames with the opcode.
func (f *frameScanner) controls(op byte) [][]byte {
	var out [][]byte
	for _, fr := range f.snapshot() {
		if fr.Opcode == op {
			out = append(out, fr.Payload)
		}
	}
	return out
}

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// TestAwaitOutSeesEarlyBytes checks that awaitOut notices bytes fed
// between its check and its wait: here they arrive during the first
// check, as the 101 response can on a relayed connection. Missing them
// once cost a case its whole timeout.
func TestAwaitOutSeesEarlyBytes(t *testing.T) {
	s := &sniffConn{outDone: make(chan struct{})}
	s.out.reset(true)
	calls := 0
	ok := func() bool {
		calls++
		if calls == 1 {
			s.out.feed([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
			return false
		}
		v, _ := s.out.headerValues("Upgrade")
		return len(v) == 1
	}
	got := make(chan bool, 1)
	go func() { got <- s.awaitOut(ok) }()
	select {
	case v := <-got:
		if !v {
			t.Fatal("awaitOut reported false")
		}
	case <-time.After(10 * time.Second):
		close(s.outDone) // lets awaitOut return
		t.Fatal("awaitOut missed the bytes fed before it waited")
	}
}
