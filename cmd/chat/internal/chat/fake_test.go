package chat

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is an in-memory Conn. Written messages arrive on msgs; Close and
// Abort end it and, like a real transport, report Disconnected.
type fakeConn struct {
	msgs    chan string
	block   chan struct{} // non-nil: writes wait for it (a slow consumer)
	entered chan struct{} // a write started waiting on block
	ended   chan struct{}
	client  chan *Client
	once    sync.Once
	mu      sync.Mutex
	code    int
	reason  string
	aborted atomic.Bool
	pings   atomic.Int32
	pong    atomic.Pointer[Client] // if set, each ping is answered at once, as a live peer does
}

func newFake() *fakeConn {
	return &fakeConn{msgs: make(chan string, 10000), ended: make(chan struct{}), client: make(chan *Client, 1),
		entered: make(chan struct{}, 10000)}
}

func (f *fakeConn) WriteText(ctx context.Context, p *Payload) error {
	if f.block != nil {
		f.entered <- struct{}{}
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.ended:
			return errors.New("fake: closed")
		}
	}
	select {
	case <-f.ended:
		return errors.New("fake: closed")
	default:
	}
	select {
	case f.msgs <- string(p.Data):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeConn) Ping(ctx context.Context) error {
	f.pings.Add(1)
	if c := f.pong.Load(); c != nil {
		c.Alive()
	}
	return nil
}

func (f *fakeConn) Close(code int, reason string) error {
	f.mu.Lock()
	if f.code == 0 {
		f.code, f.reason = code, reason
	}
	f.mu.Unlock()
	f.end()
	return nil
}

func (f *fakeConn) Abort() { f.aborted.Store(true); f.end() }

func (f *fakeConn) end() {
	f.once.Do(func() {
		close(f.ended)
		go func() {
			c := <-f.client
			c.Disconnected()
		}()
	})
}

func (f *fakeConn) closeStatus() (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.code, f.reason
}

// hang up from the client side, as a transport's OnClose would.
func (f *fakeConn) hangUp() { f.end() }

type tc struct {
	t *testing.T
	f *fakeConn
	c *Client
}

func connect(t *testing.T, h *Hub, o ConnectOptions) *tc {
	t.Helper()
	f := newFake()
	c, err := h.Connect(f, o)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	f.client <- c
	return &tc{t: t, f: f, c: c}
}

func (x *tc) next() string {
	x.t.Helper()
	select {
	case m := <-x.f.msgs:
		return m
	case <-time.After(5 * time.Second):
		x.t.Fatalf("%s: no message within 5s", x.c.Nick())
		return ""
	}
}

func (x *tc) expect(want string) {
	x.t.Helper()
	if got := x.next(); got != want {
		x.t.Fatalf("%s got %q, want %q", x.c.Nick(), got, want)
	}
}

// nextEvent reads JSON events until one of type typ arrives.
func (x *tc) nextEvent(typ string) Event {
	x.t.Helper()
	for {
		m := x.next()
		var e Event
		if err := json.Unmarshal([]byte(m), &e); err != nil {
			x.t.Fatalf("bad JSON %q: %v", m, err)
		}
		if e.Type == typ {
			return e
		}
	}
}

func (x *tc) quiet(d time.Duration) {
	x.t.Helper()
	select {
	case m := <-x.f.msgs:
		x.t.Fatalf("%s: unexpected message %q", x.c.Nick(), m)
	case <-time.After(d):
	}
}

func (x *tc) say(s string) { x.c.Receive([]byte(s)) }

func (x *tc) sayJSON(s string) {
	b, _ := json.Marshal(map[string]string{"type": "message", "text": s})
	x.c.Receive(b)
}

func (x *tc) waitEnded() {
	x.t.Helper()
	select {
	case <-x.f.ended:
	case <-time.After(5 * time.Second):
		x.t.Fatalf("%s: connection not ended within 5s", x.c.Nick())
	}
}

func newTestHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	h := NewHub(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isSeedNick(s string) bool {
	n, ok := strings.CutPrefix(s, "user-")
	if !ok || n == "" || len(n) > 5 || (len(n) > 1 && n[0] == '0') {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
