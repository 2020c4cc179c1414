package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// hubCollector exports the hub's counters through the Prometheus client
// library. The hub keeps plain atomic counters (it does not depend on
// Prometheus); they are read at each scrape.
type hubCollector struct {
	hub                                  *chat.Hub
	conns, rooms                         *prometheus.Desc
	connsTotal, in, out, stored, storeEr *prometheus.Desc
	drops                                *prometheus.Desc
}

func newHubCollector(h *chat.Hub) *hubCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &hubCollector{
		hub:        h,
		conns:      d("chat_connections", "Connected WebSocket clients."),
		rooms:      d("chat_rooms", "Rooms with at least one client."),
		connsTotal: d("chat_connections_total", "WebSocket clients accepted since start."),
		in:         d("chat_messages_in_total", "Messages received from clients."),
		out:        d("chat_messages_out_total", "Messages written to clients."),
		stored:     d("chat_messages_stored_total", "Messages committed to history."),
		storeEr:    d("chat_store_errors_total", "History commits that failed."),
		drops:      d("chat_drops_total", "Messages or clients dropped by a limit.", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.rooms, c.connsTotal, c.in, c.out, c.stored, c.storeEr, c.drops} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	clients, rooms := c.hub.Counts()
	m := &c.hub.Metrics
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g(c.conns, float64(clients))
	g(c.rooms, float64(rooms))
	n(c.connsTotal, m.ConnectionsTotal.Load())
	n(c.in, m.MessagesIn.Load())
	n(c.out, m.MessagesOut.Load())
	n(c.stored, m.Stored.Load())
	n(c.storeEr, m.StoreErrors.Load())
	n(c.drops, m.SlowConsumers.Load(), "slow_consumer")
	n(c.drops, m.RateLimited.Load(), "rate_limited")
	n(c.drops, m.TooBig.Load(), "too_big")
	n(c.drops, m.DeadPeers.Load(), "dead_peer")
}

// newMetricsHandler serves the chat's metrics with the Go runtime's and
// the process's, from a registry of the server's own (no global state).
func newMetricsHandler(h *chat.Hub, eng chat.Engine) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newHubCollector(h),
	)
	// An engine shared with other nodes (cluster mode) exports its own
	// metrics (chat_nats_*) as a collector of its own.
	if c, ok := eng.(prometheus.Collector); ok {
		reg.MustRegister(c)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// MetricsHandler serves /metrics in the Prometheus exposition format, for
// a separate listener (-metrics-addr).
func (s *Server) MetricsHandler() http.Handler { return s.metricsHandler }
