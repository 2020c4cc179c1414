package chat

import "sync/atomic"

// Metrics are the hub's counters; the server exports them to Prometheus
// (internal/server/metrics.go).
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
