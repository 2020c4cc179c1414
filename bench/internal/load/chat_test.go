package load

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket/bench/internal/chatref"
	"github.com/wsdriver/websocket/bench/internal/wire"
)

func TestParseMarker(t *testing.T) {
	cr := &chatRun{spec: ChatSpec{Text: 40}, base: time.Now()}
	m := &chatMember{sender: 3, seq: 17}
	msg := cr.appendMessage(nil, m)
	if len(msg) != 40 {
		t.Fatalf("message of %d bytes, want 40: %q", len(msg), msg)
	}
	s, stamp, ok := parseMarker(append([]byte("user-12: "), msg...))
	if !ok || s != 3 || stamp < 0 {
		t.Fatalf("parseMarker(%q) = %d, %d, %v", msg, s, stamp, ok)
	}
	for _, bad := range []string{"", "user-1: hello", " .... user-1 has joined.", "n: ~1.2", "n: ~1.2.3", "n: ~1..3 x", "n: ~a.2.3 x", "n: ~1.2.3x"} {
		if _, _, ok := parseMarker([]byte(bad)); ok {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
}

// TestChatReference runs the row against the reference chat in this
// process: every member gets every message, nobody is dropped at this size.
func TestChatReference(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- chatref.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	r, err := Chat(context.Background(), ChatSpec{
		Addr: ln.Addr().String(), Path: "/chat", Receivers: 20, Senders: 2, InFlight: 2, Text: 32,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The reference may drop a receiver even here: in one process, with
	// the race detector, a writer goroutine can wait behind the hub and the
	// senders for 256 messages (the unfairness the row measures). The load
	// must count such a drop, never lose a member otherwise.
	t.Logf("dropped %d, senders dropped %d (%s)", r.Dropped, r.SendersDropped, r.DropReason)
	if r.Lost != 0 {
		t.Fatalf("lost %d (%s)", r.Lost, r.LostReason)
	}
	if r.Dropped+r.SendersDropped > 0 && !strings.Contains(r.DropReason, "too slow") {
		t.Fatalf("drop reason %q", r.DropReason)
	}
	if r.Sent == 0 || r.Deliveries == 0 || r.Dropped < 20 && r.RecvMin == 0 {
		t.Fatalf("sent %d, deliveries %d, per open receiver min %d", r.Sent, r.Deliveries, r.RecvMin)
	}
	if r.P50ns <= 0 || r.P99ns < r.P50ns {
		t.Fatalf("latency p50 %d p99 %d", r.P50ns, r.P99ns)
	}
}

// TestChatMemberFrames feeds one member a ping, a fragmented message and a
// 1008 close from a raw server, and checks the member answers the ping,
// counts the message and records why it was closed.
func TestChatMemberFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	srv := a.c
	defer srv.Close()
	cr := &chatRun{spec: ChatSpec{Text: 32}, base: time.Now()}
	cr.phase.Store(phaseMeasure)
	m := &chatMember{conn: cc.(*net.TCPConn), sender: -1, rbuf: make([]byte, 64), rng: rand.NewPCG(1, 2)}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		cr.loop(m)
	}()

	text := append([]byte("user-1: "), cr.appendMessage(nil, &chatMember{sender: 0})...)
	var out []byte
	out = append(wire.AppendHeader(out, true, wire.OpPing, 4, nil), "ping"...)
	out = append(wire.AppendHeader(out, false, wire.OpText, 10, nil), text[:10]...)
	out = append(wire.AppendHeader(out, true, wire.OpContinuation, len(text)-10, nil), text[10:]...)
	reason := "send queue overflow: client too slow"
	out = wire.AppendHeader(out, true, wire.OpClose, 2+len(reason), nil)
	out = append(binary.BigEndian.AppendUint16(out, 1008), reason...)
	if _, err := srv.Write(out); err != nil {
		t.Fatal(err)
	}
	select {
	case <-loopDone:
	case <-time.After(30 * time.Second):
		t.Fatal("member did not end on the close frame")
	}
	if m.got != 1 || m.closeCode != 1008 || m.reason != reason || m.err != nil {
		t.Fatalf("got %d, close %d %q, err %v", m.got, m.closeCode, m.reason, m.err)
	}
	cc.Close()
	pong, err := io.ReadAll(srv)
	if err != nil {
		t.Fatal(err)
	}
	h, hl, err := wire.ParseHeader(pong)
	if err != nil || h.Op != wire.OpPong || !h.Masked || h.Len != 4 || len(pong) < hl+4 {
		t.Fatalf("reply %x: %+v %v", pong, h, err)
	}
	p := bytes.Clone(pong[hl : hl+4])
	wire.Mask(p, h.Key)
	if string(p) != "ping" {
		t.Fatalf("pong payload %q", p)
	}
}
