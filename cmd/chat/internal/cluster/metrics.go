package cluster

import (
	"fmt"
	"io"
	"sync"
	"time"
)

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
