package chat

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countConn is a Conn that only counts what it is given, to time the hub
// alone (queues, writer goroutines, room goroutine) without sockets.
type countConn struct {
	got  *atomic.Int64
	want *atomic.Int64
	hit  chan struct{}
}

func (c *countConn) WriteText(ctx context.Context, p *Payload) error {
	if c.got.Add(1) == c.want.Load() {
		c.hit <- struct{}{}
	}
	return nil
}
func (c *countConn) Ping(context.Context) error { return nil }
func (c *countConn) Close(int, string) error    { return nil }
func (c *countConn) Abort()                     {}

// BenchmarkHubFanout10k times one message to 10,000 clients through the hub
// with in-memory connections: the hub's share of BenchmarkFanout10k.
func BenchmarkHubFanout10k(b *testing.B) {
	const n = 10000
	h := NewHub(Config{Queue: 1024, AnnounceMax: 1})
	var got, want atomic.Int64
	want.Store(-1)
	hit := make(chan struct{}, 1)
	clients := make([]*Client, n)
	for i := range clients {
		c, err := h.Connect(&countConn{got: &got, want: &want, hit: hit}, ConnectOptions{Room: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range clients {
			c.Disconnected()
		}
		h.Shutdown(ctx)
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want.Store(int64(i+1) * n)
		clients[i%n].Receive([]byte("the quick brown fox jumps over the lazy dog"))
		select {
		case <-hit:
		case <-time.After(30 * time.Second):
			b.Fatalf("got %d of %d", got.Load(), want.Load())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/fanout")
}
