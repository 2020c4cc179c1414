package cluster

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are the engine's counters, written by WritePrometheus.
type Metrics struct {
	Published     atomic.Uint64
	Delivered     atomic.Uint64 // messages received from room feeds
	PublishErrors atomic.Uint64
	Disconnects   atomic.Uint64
	Reconnects    atomic.Uint64
	Reaped        atomic.Uint64 // nicknames freed for dead nodes
	latency       histogram
}

// WritePrometheus writes the engine's metrics in the Prometheus text format.
func (e *Engine) WritePrometheus(w io.Writer) error {
	m := &e.Metrics
	up := 0
	if e.connected() == nil {
		up = 1
	}
	_, err := fmt.Fprintf(w, "# HELP chat_nats_connected 1 when the node is connected to NATS.\n# TYPE chat_nats_connected gauge\nchat_nats_connected %d\n"+
		"# HELP chat_nats_published_total Messages acknowledged by JetStream.\n# TYPE chat_nats_published_total counter\nchat_nats_published_total %d\n"+
		"# HELP chat_nats_delivered_total Messages received from JetStream for this node's rooms.\n# TYPE chat_nats_delivered_total counter\nchat_nats_delivered_total %d\n"+
		"# HELP chat_nats_publish_errors_total Messages refused because JetStream did not acknowledge them.\n# TYPE chat_nats_publish_errors_total counter\nchat_nats_publish_errors_total %d\n"+
		"# HELP chat_nats_disconnects_total Losses of the NATS connection.\n# TYPE chat_nats_disconnects_total counter\nchat_nats_disconnects_total %d\n"+
		"# HELP chat_nats_reconnects_total Reconnections to NATS.\n# TYPE chat_nats_reconnects_total counter\nchat_nats_reconnects_total %d\n"+
		"# HELP chat_nats_reaped_total Nicknames freed for nodes presumed dead.\n# TYPE chat_nats_reaped_total counter\nchat_nats_reaped_total %d\n",
		up, m.Published.Load(), m.Delivered.Load(), m.PublishErrors.Load(), m.Disconnects.Load(), m.Reconnects.Load(), m.Reaped.Load())
	if err == nil {
		err = m.latency.write(w, "chat_nats_publish_seconds", "Time from publishing a batch to JetStream's acknowledgement of each message.")
	}
	return err
}

// histogram is a Prometheus-style cumulative histogram of durations.
type histogram struct {
	mu     sync.Mutex
	counts [len(bounds) + 1]uint64 // the last one is +Inf
	sum    time.Duration
}

// bounds are the buckets' upper bounds, from a LAN round trip to an outage.
var bounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	time.Second, 5 * time.Second,
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += d
	h.mu.Unlock()
}

func (h *histogram) write(w io.Writer, name, help string) error {
	h.mu.Lock()
	counts, sum := h.counts, h.sum
	h.mu.Unlock()
	if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name); err != nil {
		return err
	}
	var cum uint64
	for i, b := range bounds {
		cum += counts[i]
		if _, err := fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b.Seconds(), cum); err != nil {
			return err
		}
	}
	cum += counts[len(bounds)]
	_, err := fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, cum, name, sum.Seconds(), name, cum)
	return err
}
