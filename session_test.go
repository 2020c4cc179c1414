package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// sessionConfig is how a test session is set up.
type sessionConfig struct {
	maxLength int64
	deflate   bool
	takeover  bool
}

func newTestSession(cfg sessionConfig) *session {
	s := new(session)
	s.init(false, cfg.maxLength)
	if cfg.deflate {
		s.enableDeflate(cfg.takeover)
	}
	return s
}

// sessionRun feeds input to a new server session in pieces whose sizes
// come from cuts (cycled; none: all at once) and records what it reports:
// whole messages, control frames with the pongs queued for them, and the
// error it stopped with. Each piece is copied into a buffer that is
// scribbled over once feed has consumed it, as a transport reuses its
// read buffer, so that a chunk kept past its lifetime shows.
func sessionRun(t *testing.T, input, cuts []byte, cfg sessionConfig) []string {
	s := newTestSession(cfg)
	defer s.close()
	var out []string
	var msg []byte
	var typ MessageType
	for i := 0; len(input) > 0; i++ {
		k := len(input)
		if len(cuts) > 0 {
			k = min(k, 1+int(cuts[i%len(cuts)]))
		}
		buf := bytes.Clone(input[:k])
		input = input[k:]
		p := buf
		for {
			n, ev, err := s.feed(p)
			p = p[n:]
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ProtocolError", err)
				}
				if _, _, again := s.feed([]byte{0x81}); again != err {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				return append(out, fmt.Sprintf("error %d", pe.Code))
			}
			if ev.kind == eventNone {
				if len(p) != 0 || s.pending() {
					t.Fatalf("eventNone with %d bytes left, pending %v", len(p), s.pending())
				}
				break
			}
			switch ev.kind {
			case eventData:
				if ev.first {
					msg, typ = msg[:0], ev.typ
				} else if ev.typ != typ {
					t.Fatalf("chunk of type %v in a %v message", ev.typ, typ)
				}
				msg = append(msg, ev.data...)
				if ev.fin {
					if cfg.maxLength > 0 && int64(len(msg)) > cfg.maxLength {
						t.Fatalf("message of %d bytes delivered, limit %d", len(msg), cfg.maxLength)
					}
					if typ == TextMessage && !utf8Valid(msg) {
						t.Fatalf("invalid UTF-8 delivered: %q", msg)
					}
					out = append(out, fmt.Sprintf("%v %q", typ, msg))
				}
			case eventPing:
				out = append(out, fmt.Sprintf("ping %q, queued % x", ev.data, s.takeOut()))
			case eventPong:
				out = append(out, fmt.Sprintf("pong %q", ev.data))
			case eventClose:
				out = append(out, fmt.Sprintf("close %d %q", ev.code, ev.reason))
			}
		}
		for j := range buf {
			buf[j] = 0xAA
		}
	}
	return out
}

// sessionSeeds are inputs that reach every kind of event: fragmented
// text, control frames between fragments, compressed messages whole and
// fragmented, invalid UTF-8 plain and compressed, and a close.
func sessionSeeds() [][]byte {
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	big := compressMessageOnce(1, []byte(strings.Repeat("séance ", 3000)))
	bad := compressMessageOnce(1, []byte("valid, then \xff, then more text"))
	return [][]byte{
		join(clientFrame(true, 0, opText, []byte("hello"))),
		join(clientFrame(false, 0, opText, []byte("hel")), clientFrame(true, 0, opPing, []byte("p")),
			clientFrame(true, 0, opContinuation, []byte("lo")), clientFrame(true, 0, opClose, appendClosePayload(nil, 1000, "bye"))),
		join(clientFrame(true, rsv1, opText, compressMessageOnce(1, []byte("compressed hello hello hello"))),
			clientFrame(true, 0, opBinary, []byte{1, 2, 3})),
		join(clientFrame(false, rsv1, opText, big[:len(big)/2]), clientFrame(true, 0, opPong, nil),
			clientFrame(true, 0, opContinuation, big[len(big)/2:])),
		join(clientFrame(true, rsv1, opText, bad)),
		join(clientFrame(true, 0, opText, []byte("caf\xc3")), clientFrame(true, 0, opText, []byte("x"))),
		join(clientFrame(true, rsv1, opBinary, compressMessageOnce(9, make([]byte, 100000)))),
	}
}

// FuzzSession feeds the session arbitrary bytes, whole and in arbitrary
// pieces: it must report the same messages, control frames, replies and
// error either way, never deliver a message over the limit or text that
// is not UTF-8, and never panic.
func FuzzSession(f *testing.F) {
	for i, seed := range sessionSeeds() {
		f.Add(seed, []byte{byte(i), 0, 3, 250}, true, i%2 == 0, uint16(0))
		f.Add(seed, []byte{0}, true, true, uint16(1000))
	}
	f.Fuzz(func(t *testing.T, input, cuts []byte, deflate, takeover bool, limit uint16) {
		cfg := sessionConfig{maxLength: int64(limit), deflate: deflate, takeover: takeover}
		if limit == 0 {
			cfg.maxLength = 1 << 20
		}
		whole := sessionRun(t, input, nil, cfg)
		cut := sessionRun(t, input, cuts, cfg)
		if strings.Join(whole, "\n") != strings.Join(cut, "\n") {
			t.Fatalf("fed whole:\n%s\nfed in pieces %v:\n%s", strings.Join(whole, "\n"), cuts, strings.Join(cut, "\n"))
		}
	})
}

// TestSessionCompressedUTF8FailsFast checks that compressed text is
// checked as it is inflated: a message whose first inflated bytes are not
// UTF-8 fails with 1007 before the rest of it has even arrived.
func TestSessionCompressedUTF8FailsFast(t *testing.T) {
	text := append([]byte("\xff"), strings.Repeat("a long, valid tail ", 5000)...)
	wire := compressMessageOnce(flate.BestSpeed, text)
	s := newTestSession(sessionConfig{maxLength: 1 << 20, deflate: true})
	// Only the first frame of the message, with a few hundred bytes.
	in := clientFrame(false, rsv1, opText, wire[:200])
	var err error
	for p := in; err == nil; {
		var n int
		var ev event
		n, ev, err = s.feed(p)
		p = p[n:]
		if err == nil && ev.kind == eventNone {
			t.Fatal("no error before the rest of the message")
		}
	}
	if !errors.Is(err, errInvalidUTF8) {
		t.Fatalf("err = %v, want errInvalidUTF8", err)
	}
}

// TestSessionInflatedLimit checks that a compressed message is held to the
// maximum length as it is inflated: the session fails with 1009 having
// inflated at most one window past the limit, with the message's frames
// still to come.
func TestSessionInflatedLimit(t *testing.T) {
	wire := compressMessageOnce(flate.BestCompression, make([]byte, 1<<20))
	s := newTestSession(sessionConfig{maxLength: 4096, deflate: true})
	in := clientFrame(false, rsv1, opBinary, wire[:len(wire)/2])
	got := 0
	var err error
	for p := in; err == nil; {
		var n int
		var ev event
		n, ev, err = s.feed(p)
		p = p[n:]
		got += len(ev.data)
		if err == nil && ev.kind == eventNone {
			t.Fatal("no error before the rest of the message")
		}
	}
	if !errors.Is(err, errInflateTooBig) || got > 4096 {
		t.Fatalf("err = %v after %d bytes delivered, want errInflateTooBig within 4096", err, got)
	}
}

// TestSessionQueuesPong checks that a ping is answered by a pong queued
// for the transport, with the ping's payload.
func TestSessionQueuesPong(t *testing.T) {
	s := newTestSession(sessionConfig{})
	_, ev, err := s.feed(clientFrame(true, 0, opPing, []byte("are you there")))
	if err != nil || ev.kind != eventPing {
		t.Fatalf("%v, %v", ev.kind, err)
	}
	want := appendFrame(nil, true, 0, opPong, []byte("are you there"), false)
	if got := s.takeOut(); !bytes.Equal(got, want) {
		t.Fatalf("queued % x, want % x", got, want)
	}
	if got := s.takeOut(); len(got) != 0 {
		t.Fatalf("queue not emptied: % x", got)
	}
}

// TestConnCompressedUTF8FailsFast is the connection-level regression test
// for fail-fast UTF-8 of compressed text: given only the first frame of a
// compressed text message whose first inflated byte is not UTF-8, every
// reading style fails the connection with 1007 at once. Before the
// session, the message was checked only once whole, so the reader waited
// for the rest (here it got the end of the input: 1006).
func TestConnCompressedUTF8FailsFast(t *testing.T) {
	text := append([]byte("\xff"), strings.Repeat("valid after the bad byte ", 2000)...)
	wire := compressMessageOnce(flate.BestSpeed, text)
	in := clientFrame(false, rsv1, opText, wire[:len(wire)/2])
	for _, style := range []string{"Read", "NextReader"} {
		c := newConn(false, 1<<20, time.Second)
		fc := &fakeConn{in: bytes.NewReader(in)}
		c.opened(fc, nil)
		c.flushed.Store(true)
		c.enableDeflate(deflateParams{}, &CompressionOptions{})
		var err error
		if style == "Read" {
			_, _, err = c.Read(context.Background())
		} else {
			var rd io.Reader
			if _, rd, err = c.NextReader(context.Background()); err == nil {
				_, err = io.ReadAll(rd)
			}
		}
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != StatusInvalidFramePayloadData {
			t.Fatalf("%s: err = %v, want a *ProtocolError with 1007", style, err)
		}
		// The close frame that failed the connection says why.
		if !bytes.Contains(fc.out.Bytes(), []byte("UTF-8")) {
			t.Fatalf("%s: close frame not sent: % x", style, fc.out.Bytes())
		}
	}
}
