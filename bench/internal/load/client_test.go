package load

import (
	"errors"
	"testing"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

// feed hands a byte stream to the parser in chunks of the given size, the
// way reads would, and counts completed messages.
func feed(t *testing.T, c *client, stream []byte, chunk int) (int, error) {
	t.Helper()
	total := 0
	for len(stream) > 0 {
		n := min(chunk, len(stream), len(c.rbuf)-c.r)
		c.r += copy(c.rbuf[c.r:], stream[:n])
		stream = stream[n:]
		done, err := c.parse()
		total += done
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func TestParseWholeAndFragmented(t *testing.T) {
	want := Payload(3000, false)
	var stream []byte
	// One message in one frame, then the same message in three fragments.
	stream = wire.AppendHeader(stream, true, wire.OpBinary, len(want), nil)
	stream = append(stream, want...)
	stream = wire.AppendHeader(stream, false, wire.OpBinary, 1000, nil)
	stream = append(stream, want[:1000]...)
	stream = wire.AppendHeader(stream, false, wire.OpContinuation, 1500, nil)
	stream = append(stream, want[1000:2500]...)
	stream = wire.AppendHeader(stream, true, wire.OpContinuation, 500, nil)
	stream = append(stream, want[2500:]...)
	for _, chunk := range []int{1, 7, 100, 4096} {
		c := &client{rbuf: make([]byte, 512), want: want, op: wire.OpBinary}
		n, err := feed(t, c, stream, chunk)
		if err != nil || n != 2 {
			t.Fatalf("chunk %d: %d messages, %v; want 2", chunk, n, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	want := Payload(16, false)
	bad := want[:len(want):len(want)]
	bad = append([]byte(nil), bad...)
	bad[5] ^= 1
	cases := map[string][]byte{
		"changed byte": append(wire.AppendHeader(nil, true, wire.OpBinary, 16, nil), bad...),
		"too long":     append(wire.AppendHeader(nil, true, wire.OpBinary, 17, nil), append(want, 0)...),
		"too short":    append(wire.AppendHeader(nil, true, wire.OpBinary, 15, nil), want[:15]...),
		"masked":       wire.AppendClientFrame(nil, wire.OpBinary, want, [4]byte{1, 2, 3, 4}),
		"text":         append(wire.AppendHeader(nil, true, wire.OpText, 16, nil), want...),
		"close":        wire.AppendHeader(nil, true, wire.OpClose, 0, nil),
	}
	for name, stream := range cases {
		c := &client{rbuf: make([]byte, 512), want: want, op: wire.OpBinary}
		if n, err := feed(t, c, stream, 64); err == nil {
			t.Errorf("%s: accepted (%d messages)", name, n)
		}
	}
	c := &client{rbuf: make([]byte, 512), want: want, op: wire.OpBinary}
	if _, err := feed(t, c, cases["changed byte"], 64); !errors.Is(err, errMismatch) {
		t.Errorf("changed byte: %v, want errMismatch", err)
	}
}

func TestPayloadText(t *testing.T) {
	for _, b := range Payload(1000, true) {
		if b < ' ' || b > '~' {
			t.Fatalf("text payload byte %#x is not printable ASCII", b)
		}
	}
}

// The fairness figures are per-connection rates, nearest-rank percentiles
// of the connections' round trips over the window.
func TestSetSpread(t *testing.T) {
	counts := make([]uint64, 100)
	for i := range counts {
		counts[i] = uint64(100 - i) // 100 down to 1, unsorted for setSpread
	}
	var r EchoResult
	r.setSpread(counts, 2)
	if r.PerConnMin != 0.5 || r.PerConnP1 != 0.5 || r.PerConnP50 != 25 || r.PerConnP99 != 49.5 || r.PerConnMax != 50 {
		t.Fatalf("spread %v %v %v %v %v", r.PerConnMin, r.PerConnP1, r.PerConnP50, r.PerConnP99, r.PerConnMax)
	}
	if counts[0] != 100 {
		t.Fatal("setSpread reordered its input")
	}
}
