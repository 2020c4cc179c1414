package chat

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics are the hub's counters, exported by WritePrometheus.
type Metrics struct {
	ConnectionsTotal atomic.Uint64
	MessagesIn       atomic.Uint64
	MessagesOut      atomic.Uint64
	Stored           atomic.Uint64
	StoreErrors      atomic.Uint64
	SlowConsumers    atomic.Uint64
	RateLimited      atomic.Uint64
	TooBig           atomic.Uint64
	DeadPeers        atomic.Uint64
}

// WritePrometheus writes the hub's metrics in the Prometheus text format.
func (h *Hub) WritePrometheus(w io.Writer) error {
	clients, rooms := h.Counts()
	m := &h.Metrics
	var err error
	p := func(name, typ, help string, v uint64) {
		if err == nil {
			_, err = fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
		}
	}
	p("chat_connections", "gauge", "Connected WebSocket clients.", uint64(clients))
	p("chat_rooms", "gauge", "Rooms with at least one client.", uint64(rooms))
	p("chat_connections_total", "counter", "WebSocket clients accepted since start.", m.ConnectionsTotal.Load())
	p("chat_messages_in_total", "counter", "Messages received from clients.", m.MessagesIn.Load())
	p("chat_messages_out_total", "counter", "Messages written to clients.", m.MessagesOut.Load())
	p("chat_messages_stored_total", "counter", "Messages committed to history.", m.Stored.Load())
	p("chat_store_errors_total", "counter", "History commits that failed.", m.StoreErrors.Load())
	if err == nil {
		_, err = fmt.Fprintf(w, "# HELP chat_drops_total Messages or clients dropped by a limit.\n# TYPE chat_drops_total counter\n"+
			"chat_drops_total{reason=\"slow_consumer\"} %d\nchat_drops_total{reason=\"rate_limited\"} %d\n"+
			"chat_drops_total{reason=\"too_big\"} %d\nchat_drops_total{reason=\"dead_peer\"} %d\n",
			m.SlowConsumers.Load(), m.RateLimited.Load(), m.TooBig.Load(), m.DeadPeers.Load())
	}
	return err
}
