package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's counters. The engine is a prometheus.Collector
// (Describe, Collect) that exports them with the connection state and the
// publish latency histogram; the chat server registers it next to the
// hub's collector when the hub's engine is this one.
type Metrics struct {
	Published     atomic.Uint64
	Delivered     atomic.Uint64 // messages received from room feeds
	PublishErrors atomic.Uint64
	Disconnects   atomic.Uint64
	Reconnects    atomic.Uint64
	Reaped        atomic.Uint64 // nicknames freed for dead nodes
	latency       prometheus.Histogram
}

// Descriptions of the engine's metrics, shared by every engine: they are
// registered in the registry of each server, never globally.
var (
	descConnected     = prometheus.NewDesc("chat_nats_connected", "1 when the node is connected to NATS.", nil, nil)
	descPublished     = prometheus.NewDesc("chat_nats_published_total", "Messages acknowledged by JetStream.", nil, nil)
	descDelivered     = prometheus.NewDesc("chat_nats_delivered_total", "Messages received from JetStream for this node's rooms.", nil, nil)
	descPublishErrors = prometheus.NewDesc("chat_nats_publish_errors_total", "Messages refused because JetStream did not acknowledge them.", nil, nil)
	descDisconnects   = prometheus.NewDesc("chat_nats_disconnects_total", "Losses of the NATS connection.", nil, nil)
	descReconnects    = prometheus.NewDesc("chat_nats_reconnects_total", "Reconnections to NATS.", nil, nil)
	descReaped        = prometheus.NewDesc("chat_nats_reaped_total", "Nicknames freed for nodes presumed dead.", nil, nil)
)

// newLatency is the publish latency histogram, with buckets from a LAN
// round trip to an outage.
func newLatency() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chat_nats_publish_seconds",
		Help:    "Time from publishing a batch to JetStream's acknowledgement of each message.",
		Buckets: []float64{.00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 5},
	})
}

// Describe implements prometheus.Collector.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descPublished, descDelivered, descPublishErrors, descDisconnects, descReconnects, descReaped} {
		ch <- d
	}
	e.Metrics.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	m := &e.Metrics
	up := 0.0
	if e.connected() == nil {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, up)
	for _, c := range []struct {
		d *prometheus.Desc
		v *atomic.Uint64
	}{
		{descPublished, &m.Published}, {descDelivered, &m.Delivered}, {descPublishErrors, &m.PublishErrors},
		{descDisconnects, &m.Disconnects}, {descReconnects, &m.Reconnects}, {descReaped, &m.Reaped},
	} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v.Load()))
	}
	e.Metrics.latency.Collect(ch)
}
