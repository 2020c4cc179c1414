package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket/bench/internal/hist"
	"github.com/wsdriver/websocket/bench/internal/wire"
)

// EchoSpec is one echo row.
type EchoSpec struct {
	Addr     string
	Conns    int
	Payload  int
	InFlight int
	Text     bool
	Warmup   time.Duration
	Duration time.Duration
	// ServerPID, when set, is the process whose CPU time is measured.
	ServerPID int
	// Sources is how many 127.0.0.x source addresses to spread over.
	Sources int
	// MinRoundTrips, when set, extends the measured window past Duration
	// (up to MaxDuration in all) until that many round trips completed in
	// it. A smoke run uses it to prove every server echoes on a machine so
	// busy that a fixed window may see nothing, without turning a slow
	// machine into a failure.
	MinRoundTrips uint64
	MaxDuration   time.Duration
}

// EchoResult is what one run of an echo row measured.
type EchoResult struct {
	RoundTrips uint64  `json:"round_trips"`
	Seconds    float64 `json:"seconds"`
	PerSec     float64 `json:"per_sec"`
	P50ns      int64   `json:"p50_ns"`
	P99ns      int64   `json:"p99_ns"`
	MaxNs      int64   `json:"max_ns"`
	// ServerCPUns is the server's CPU time during the window; CPUPerRTns
	// divides it by the round trips.
	ServerCPUns int64   `json:"server_cpu_ns"`
	CPUPerRTns  float64 `json:"cpu_per_rt_ns"`
	// ServerUtil and ClientUtil are CPU time over wall time: a server well
	// below 1 means the load generator, not the server, was the limit.
	ServerUtil float64 `json:"server_util"`
	ClientUtil float64 `json:"client_util"`
	// Fairness: the spread of round trips per second over the connections
	// in the measured window. A server that serves its busiest sockets
	// first shows a low PerConnMin and a high PerConnMax beside the same
	// total; equal service has all five close to PerSec/Conns.
	PerConnMin float64 `json:"per_conn_min,omitempty"`
	PerConnP1  float64 `json:"per_conn_p1,omitempty"`
	PerConnP50 float64 `json:"per_conn_p50,omitempty"`
	PerConnP99 float64 `json:"per_conn_p99,omitempty"`
	PerConnMax float64 `json:"per_conn_max,omitempty"`
}

// setSpread fills the per-connection fields from each connection's round
// trips in a window of secs seconds (nearest-rank percentiles).
func (r *EchoResult) setSpread(counts []uint64, secs float64) {
	if len(counts) == 0 || secs <= 0 {
		return
	}
	s := slices.Clone(counts)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return float64(s[min(max(i, 0), len(s)-1)]) / secs
	}
	r.PerConnMin = float64(s[0]) / secs
	r.PerConnP1 = at(0.01)
	r.PerConnP50 = at(0.50)
	r.PerConnP99 = at(0.99)
	r.PerConnMax = float64(s[len(s)-1]) / secs
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// Echo runs one echo row: every connection keeps InFlight messages
// outstanding, sending a new one for each echo that comes back whole and
// byte-for-byte equal.
func Echo(ctx context.Context, s EchoSpec) (EchoResult, error) {
	var res EchoResult
	if s.Conns < 1 || s.InFlight < 1 || s.Payload < 0 {
		return res, errors.New("load: bad echo spec")
	}
	op := byte(wire.OpBinary)
	if s.Text {
		op = wire.OpText
	}
	want := Payload(s.Payload, s.Text)
	rbuf := s.InFlight * (s.Payload + wire.MaxHeaderLen)
	rbuf = min(max(rbuf, 16<<10), 256<<10)
	clients, err := dialAll(ctx, s.Addr, s.Conns, s.Sources, want, op, rbuf)
	if err != nil {
		return res, err
	}
	defer closeAll(clients)

	var (
		phase    atomic.Int32
		measured atomic.Uint64 // round trips completed in the measured window
		wg       sync.WaitGroup
		mu       sync.Mutex
		total    hist.Histogram
		perConn  = make([]uint64, len(clients))
		ferr     error
	)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.pingPong(&phase, &measured, s.InFlight)
			mu.Lock()
			defer mu.Unlock()
			perConn[i] = h.Count()
			total.Merge(h)
			if err != nil && ferr == nil {
				ferr = err
			}
		}()
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return ferr
	}
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return failed()
		}
	}
	stopAll := func() {
		phase.Store(phaseStop)
		for _, c := range clients {
			c.conn.SetDeadline(time.Now().Add(2 * time.Second))
		}
		wg.Wait()
	}
	if err := sleep(s.Warmup); err != nil {
		stopAll()
		return res, err
	}
	var cpu0 time.Duration
	if s.ServerPID > 0 {
		if cpu0, err = ProcCPU(s.ServerPID); err != nil {
			stopAll()
			return res, err
		}
	}
	self0 := selfCPU()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	err = sleep(s.Duration)
	for err == nil && measured.Load() < s.MinRoundTrips && time.Since(t0) < s.MaxDuration {
		err = sleep(min(50*time.Millisecond, s.MaxDuration-time.Since(t0)))
	}
	phase.Store(phaseStop)
	elapsed := time.Since(t0)
	self1 := selfCPU()
	var cpu1 time.Duration
	if s.ServerPID > 0 && err == nil {
		cpu1, err = ProcCPU(s.ServerPID)
	}
	stopAll()
	if err == nil {
		err = failed()
	}
	if err != nil {
		return res, err
	}
	res.RoundTrips = total.Count()
	res.Seconds = elapsed.Seconds()
	res.PerSec = float64(res.RoundTrips) / res.Seconds
	res.P50ns = int64(total.Quantile(0.50))
	res.P99ns = int64(total.Quantile(0.99))
	res.MaxNs = int64(total.Max())
	res.ClientUtil = float64(self1-self0) / float64(elapsed)
	res.setSpread(perConn, res.Seconds)
	if s.ServerPID > 0 {
		res.ServerCPUns = int64(cpu1 - cpu0)
		res.ServerUtil = float64(cpu1-cpu0) / float64(elapsed)
		if res.RoundTrips > 0 {
			res.CPUPerRTns = float64(res.ServerCPUns) / float64(res.RoundTrips)
		}
	}
	if res.RoundTrips == 0 {
		return res, fmt.Errorf("load: no round trip completed in %v", elapsed.Round(time.Millisecond))
	}
	return res, nil
}

// pingPong keeps k messages in flight until the phase says stop. Latency is
// taken from the write that carried a message to the read that completed its
// echo; echoes come back in order, so send times form a FIFO ring.
func (c *client) pingPong(phase *atomic.Int32, measured *atomic.Uint64, k int) (*hist.Histogram, error) {
	h := new(hist.Histogram)
	sent := make([]time.Time, k)
	head, n := 0, 0
	push := func(t time.Time, m int) {
		for range m {
			sent[(head+n)%k] = t
			n++
		}
	}
	c.wbuf = c.wbuf[:0]
	c.appendFrames(k)
	push(time.Now(), k)
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return h, err
	}
	for {
		done, err := c.readSome()
		if done > 0 {
			now := time.Now()
			p := phase.Load()
			if done > n {
				return h, errors.New("more echoes than messages sent")
			}
			if p == phaseMeasure {
				measured.Add(uint64(done))
			}
			for range done {
				if p == phaseMeasure {
					h.Record(now.Sub(sent[head]))
				}
				head = (head + 1) % k
				n--
			}
			if p == phaseStop {
				c.sendClose()
				return h, nil
			}
			c.wbuf = c.wbuf[:0]
			c.appendFrames(done)
			push(time.Now(), done)
			if _, werr := c.conn.Write(c.wbuf); werr != nil {
				return h, werr
			}
		}
		if err != nil {
			if phase.Load() == phaseStop {
				return h, nil
			}
			if errors.Is(err, io.EOF) {
				return h, errors.New("server closed the connection")
			}
			return h, err
		}
	}
}
