package cluster_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
)

// Benchmarks: go test -run '^$' -bench . -benchtime 1x ./internal/cluster/
// CHAT_BENCH_CLIENTS sets the clients per node (default 1000),
// CHAT_BENCH_MESSAGES the messages per sender (default 20).

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchHub is the hub configuration for a big room: no join/leave flood,
// no rate limit, no queue limit (a dropped reader would stall the count).
func benchHub() chat.Config {
	return chat.Config{History: 100, AnnounceMax: 10, WriteTimeout: 30 * time.Second}
}

// BenchmarkRoom: one room with CHAT_BENCH_CLIENTS readers on each of 1, 2
// or 3 nodes (over one NATS server) and 10 senders spread over the nodes,
// against the single-node embedded mode (bbolt). Reports messages/s,
// deliveries/s, sender-to-reader latency percentiles and memory per
// connection.
func BenchmarkRoom(b *testing.B) {
	per := benchEnv("CHAT_BENCH_CLIENTS", 1000)
	msgs := benchEnv("CHAT_BENCH_MESSAGES", 20)
	// burst: every sender posts all its messages at once (throughput);
	// paced: each sender posts 5 a second, the default -rate (latency at a
	// load the machine keeps up with).
	for _, pace := range []time.Duration{0, 200 * time.Millisecond} {
		mode := "burst"
		if pace > 0 {
			mode = "paced"
		}
		b.Run("embedded/"+mode, func(b *testing.B) {
			n := startNodeWith(b, "", 1, benchHub())
			benchRoom(b, []*node{n}, per, msgs, pace)
		})
		for _, k := range []int{1, 2, 3} {
			b.Run(fmt.Sprintf("nodes=%d/%s", k, mode), func(b *testing.B) {
				ns := natstest.Start(b)
				var nodes []*node
				for range k {
					nodes = append(nodes, startNodeWith(b, ns.URL(), 1, benchHub()))
				}
				benchRoom(b, nodes, per, msgs, pace)
			})
		}
	}
}

func benchRoom(b *testing.B, nodes []*node, per, msgs int, pace time.Duration) {
	const senders = 10
	room := fmt.Sprintf("bench%d", time.Now().UnixNano())
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	dial := func(n *node) *websocket.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, n.ws+"/chat/"+room, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		return c
	}
	var readers []*websocket.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		for range per / 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					c := dial(n)
					mu.Lock()
					readers = append(readers, c)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	var sends []*websocket.Conn
	for i := range senders {
		sends = append(sends, dial(nodes[i%len(nodes)]))
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	conns := len(readers) + len(sends)
	perConn := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(conns)

	// Readers record the latency of every bench message; the warm-up
	// message tells that everyone is in the room and reading.
	total := senders * msgs
	lat := make([][]time.Duration, len(readers))
	warm := make(chan struct{}, len(readers))
	done := make(chan struct{}, len(readers))
	failed := make(chan error, len(readers))
	for i, c := range readers {
		go func() {
			got := 0
			var buf []byte
			for {
				_, m, err := c.ReadMessage(context.Background(), buf)
				if err != nil {
					if got < total {
						failed <- err
					}
					return
				}
				buf = m
				s := string(m)
				_, body, ok := strings.Cut(s, ": ")
				if !ok {
					continue
				}
				if body == "warmup" {
					warm <- struct{}{}
					continue
				}
				ts, _, ok := strings.Cut(body, " ")
				ns, err := strconv.ParseInt(ts, 10, 64)
				if !ok || err != nil {
					continue
				}
				lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-ns))
				if got++; got == total {
					done <- struct{}{}
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sends[0].Write(ctx, websocket.TextMessage, []byte("warmup"))
	for range readers {
		select {
		case <-warm:
		case err := <-failed:
			b.Fatalf("a reader was disconnected: %v", err)
		case <-ctx.Done():
			b.Fatal("warm-up message did not reach every reader")
		}
	}
	b.ResetTimer()
	start := time.Now()
	for _, s := range sends {
		go func() {
			for j := range msgs {
				if j > 0 && pace > 0 {
					time.Sleep(pace) // the sender's pace, not a wait for work
				}
				if err := s.Write(ctx, websocket.TextMessage, []byte(fmt.Sprintf("%d %d", time.Now().UnixNano(), j))); err != nil {
					return
				}
			}
		}()
	}
	for range readers {
		select {
		case <-done:
		case err := <-failed:
			b.Fatalf("a reader was disconnected: %v", err)
		case <-ctx.Done():
			minGot, maxGot := total, 0
			for _, l := range lat {
				minGot, maxGot = min(minGot, len(l)), max(maxGot, len(l))
			}
			for i, n := range nodes {
				if n.eng != nil {
					b.Logf("node %d: published %d, refused %d, delivered %d", i, n.eng.Metrics.Published.Load(), n.eng.Metrics.PublishErrors.Load(), n.eng.Metrics.Delivered.Load())
				}
			}
			b.Fatalf("not every reader got every message: %d to %d of %d", minGot, maxGot, total)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(total*len(readers))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(perConn/1024, "KiB/conn")
	b.ReportMetric(float64(conns), "conns")
}

// BenchmarkJetStreamPublish is the round trip of one chat message to
// JetStream and back with its acknowledgement (what a send waits for),
// on one server (R1) and on a three-server cluster (R3).
func BenchmarkJetStreamPublish(b *testing.B) {
	for _, r := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", r), func(b *testing.B) {
			var url string
			if r == 1 {
				url = natstest.Start(b).URL()
			} else {
				url = natstest.StartCluster(b, 3).URLs()
			}
			nc, err := nats.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, Replicas: r, MaxMsgsPerSubject: 100}); err != nil {
				b.Fatal(err)
			}
			msg := []byte(`{"id":0,"room":"lobby","nick":"user-12345","text":"hello, this is a typical chat line","ts":1796369901927}`)
			var n atomic.Int64
			b.ResetTimer()
			for range b.N {
				if _, err := js.Publish(ctx, "b.lobby", msg); err != nil {
					b.Fatal(err)
				}
				n.Add(1)
			}
		})
	}
}
