//go:build linux && !evloop_portable

package evloop

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkFanout measures a broadcast of EVLOOP_SIZE (128) bytes to
// EVLOOP_CONNS (10,000) connections, written on the loop (as handlers on
// the loop do) when a control connection sends a byte; the receivers are
// in a client process, and an operation ends when the last of them has
// the message. ns/op is the time to the last receiver, cpu-ns/op the
// server's CPU per broadcast, syscalls/receiver the io_uring_enter calls
// (with io_uring) or write calls (without) per receiver. Sub-benchmarks:
// "iouring" (the batch) and "write" (EVLOOP_IOURING=0: a write each).
// Run it with -benchtime=200x or so; the loops are EVLOOP_LOOPS (1).
func BenchmarkFanout(b *testing.B) {
	conns, size := envInt("EVLOOP_CONNS", 10000), envInt("EVLOOP_SIZE", 128)
	for _, mode := range []string{"iouring", "write"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "write" {
				b.Setenv("EVLOOP_IOURING", "0")
			}
			msg := pattern(size, 1)
			var mu sync.Mutex
			var all []*Conn
			writes := 0
			s, err := Listen("127.0.0.1:0", Config{
				Loops: envInt("EVLOOP_LOOPS", 1),
				OnOpen: func(c *Conn) {
					mu.Lock()
					all = append(all, c)
					mu.Unlock()
				},
				OnData: func(ctl *Conn, _ []byte) {
					mu.Lock()
					rs := all
					mu.Unlock()
					for _, c := range rs {
						if c != ctl {
							c.Write(msg)
							writes++
						}
					}
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Setenv("EVLOOP_SIZE", strconv.Itoa(size)) // the client's default is echo's
			c := startClient(b, "fanout", s.Addr().String(), conns)
			defer c.stop()
			for s.NumConns() < conns {
				time.Sleep(10 * time.Millisecond) // the client said ready: all are dialed
			}
			ctl, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer ctl.Close()
			if mode == "iouring" && s.loops[0].batch.ring == nil {
				b.Skip("no io_uring here")
			}
			trigger := func() {
				if _, err := ctl.Write([]byte{'G'}); err != nil {
					b.Fatal(err)
				}
				c.expect(b, "got")
			}
			trigger() // warm up: the batch's buffers grow once
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				trigger()
			}
			cpu = cpuTime() - cpu
			b.StopTimer()
			s.Close() // orders the loops' counts before what follows
			enters, _, _ := ringStats(s)
			calls := float64(enters)
			if mode == "write" {
				calls = float64(writes) / float64(b.N+1) * float64(b.N) // a write each (nothing queued here), warm-up excluded
			} else {
				calls = float64(enters) / float64(b.N+1) * float64(b.N) // warm-up excluded
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(calls/float64(b.N)/float64(conns), "syscalls/receiver")
		})
	}
}
