package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

// BroadcastSpec is the broadcast row: one message sent by one connection,
// which a broadcasting server writes to all Conns connections.
type BroadcastSpec struct {
	Addr      string
	Conns     int
	Payload   int
	Rounds    int // measured broadcasts
	Warmup    int // unmeasured broadcasts first
	Sources   int
	ServerPID int
	Timeout   time.Duration // per broadcast
}

// BroadcastResult is what the broadcast row measured.
type BroadcastResult struct {
	// LastNs is, per measured broadcast, the time from sending the message
	// to the moment the last connection had all of it.
	LastNs []int64 `json:"last_ns"`
	// MedianLastNs is the median of LastNs.
	MedianLastNs int64 `json:"median_last_ns"`
	// ServerCPUPerMsgNs is the server's CPU time per measured broadcast.
	ServerCPUPerMsgNs float64 `json:"server_cpu_per_msg_ns"`
}

// Broadcast runs the broadcast row.
func Broadcast(ctx context.Context, s BroadcastSpec) (BroadcastResult, error) {
	var res BroadcastResult
	if s.Conns < 1 || s.Rounds < 1 {
		return res, errors.New("load: bad broadcast spec")
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	want := Payload(s.Payload, false)
	cs, err := dialAll(ctx, s.Addr, s.Conns, s.Sources, want, wire.OpBinary, 1024)
	if err != nil {
		return res, err
	}
	defer closeAll(cs)

	var (
		got  atomic.Int64
		last = make(chan time.Time, 1)
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		stop atomic.Bool
	)
	n := int64(s.Conns)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				done, err := c.readSome()
				for range done {
					if got.Add(1)%n == 0 {
						last <- time.Now()
					}
				}
				if err != nil {
					if !stop.Load() {
						mu.Lock()
						if ferr == nil {
							ferr = err
						}
						mu.Unlock()
					}
					return
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		closeAll(cs)
		wg.Wait()
	}()

	// Servers register a connection just after writing the handshake
	// response, so the client can see it open a moment earlier; a pause keeps
	// the first broadcast from missing the last few connections.
	time.Sleep(300 * time.Millisecond)
	trigger := cs[0]
	var frame []byte
	var cpu0 time.Duration
	for i := range s.Warmup + s.Rounds {
		if i == s.Warmup && s.ServerPID > 0 {
			if cpu0, err = ProcCPU(s.ServerPID); err != nil {
				return res, err
			}
		}
		// A fresh key per message, as a client must.
		frame = wire.AppendClientFrame(frame[:0], wire.OpBinary, want, [4]byte{byte(i), byte(i >> 8), 0x5a, 0xa5})
		t0 := time.Now()
		if _, err := trigger.conn.Write(frame); err != nil {
			return res, err
		}
		timer := time.NewTimer(s.Timeout)
		select {
		case t := <-last:
			timer.Stop()
			if i >= s.Warmup {
				res.LastNs = append(res.LastNs, int64(t.Sub(t0)))
			}
		case <-timer.C:
			mu.Lock()
			e := ferr
			mu.Unlock()
			return res, fmt.Errorf("broadcast %d: %d of %d connections got it within %v (first error: %v)",
				i, got.Load()-int64(i)*n, n, s.Timeout, e)
		case <-ctx.Done():
			timer.Stop()
			return res, ctx.Err()
		}
		// Let the server's writers settle before the next message.
		time.Sleep(50 * time.Millisecond)
	}
	if s.ServerPID > 0 {
		cpu1, err := ProcCPU(s.ServerPID)
		if err != nil {
			return res, err
		}
		res.ServerCPUPerMsgNs = float64(cpu1-cpu0) / float64(s.Rounds)
	}
	mu.Lock()
	err = ferr
	mu.Unlock()
	if err != nil {
		return res, err
	}
	sorted := slices.Clone(res.LastNs)
	slices.Sort(sorted)
	res.MedianLastNs = sorted[len(sorted)/2]
	return res, nil
}
