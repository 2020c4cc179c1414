package evloop

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// echoServer is a server under benchmark: this package's engine, or the
// floor (a goroutine per connection over net.Conn).
type echoServer interface {
	addr() string
	open() int
	close()
}

type engineServer struct{ s *Server }

func (e engineServer) addr() string { return e.s.Addr().String() }
func (e engineServer) open() int    { return e.s.NumConns() }
func (e engineServer) close()       { e.s.Close() }

func startEngine(b *testing.B, blocking, lock bool) echoServer {
	s, err := Listen("127.0.0.1:0", Config{Loops: envInt("EVLOOP_LOOPS", 0), BlockingWait: blocking, LockOSThread: lock, OnData: echo})
	if err != nil {
		b.Fatal(err)
	}
	return engineServer{s}
}

// floorServer is the goroutine-per-connection echo server.
type floorServer struct {
	ln    net.Listener
	conns atomic.Int64
}

func (f *floorServer) addr() string { return f.ln.Addr().String() }
func (f *floorServer) open() int    { return int(f.conns.Load()) }
func (f *floorServer) close()       { f.ln.Close() }

func startFloor(b *testing.B) echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	f := &floorServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go func() {
				defer f.conns.Add(-1)
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return f
}

// client is the load generator's process.
type client struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startClient(b *testing.B, mode, addr string, conns int) *client {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if cpus := os.Getenv("EVLOOP_CLIENT_CPUS"); cpus != "" {
		// The server may be pinned (taskset); the client runs elsewhere.
		cmd = exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), clientEnv+"="+mode, "EVLOOP_ADDR="+addr, "EVLOOP_CONNS="+strconv.Itoa(conns))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &client{cmd: cmd, in: in, out: bufio.NewScanner(outp)}
	c.expect(b, "ready")
	return c
}

func (c *client) expect(b *testing.B, line string) {
	if !c.out.Scan() || c.out.Text() != line {
		b.Fatalf("client said %q, want %q (%v)", c.out.Text(), line, c.out.Err())
	}
}

func (c *client) stop() {
	c.in.Close()
	c.cmd.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEchoCPU measures the server's CPU time per round trip of a
// 1 KiB raw echo with EVLOOP_CONNS (1000) connections and one message in
// flight on each, the client in another process: cpu-ns/op is the figure
// to compare (ns/op is the client's wall time per round trip).
func BenchmarkEchoCPU(b *testing.B) {
	conns := envInt("EVLOOP_CONNS", 1000)
	for _, tc := range []struct {
		name  string
		start func(*testing.B) echoServer
	}{
		{"engine", func(b *testing.B) echoServer { return startEngine(b, false, false) }},
		{"engine-blocking", func(b *testing.B) echoServer { return startEngine(b, true, false) }},
		{"engine-blocking-locked", func(b *testing.B) echoServer { return startEngine(b, true, true) }},
		{"floor", startFloor},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.start(b)
			defer s.close()
			c := startClient(b, "echo", s.addr(), conns)
			defer c.stop()
			b.ResetTimer()
			cpu := cpuTime()
			io.WriteString(c.in, strconv.Itoa(b.N)+"\n")
			c.expect(b, "done")
			cpu = cpuTime() - cpu
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func rss() int64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func memNow() (heap, stack, sys uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse, m.Sys - m.HeapReleased
}

// BenchmarkIdleMemory measures the server's memory per idle connection
// with EVLOOP_IDLE_CONNS (10000) connections held open by a client in
// another process. Run it with -benchtime=1x.
func BenchmarkIdleMemory(b *testing.B) {
	n := envInt("EVLOOP_IDLE_CONNS", 10000)
	for _, tc := range []struct {
		name  string
		start func(*testing.B) echoServer
	}{
		{"engine", func(b *testing.B) echoServer { return startEngine(b, false, false) }},
		{"floor", startFloor},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.start(b)
			defer s.close()
			heap0, stack0, sys0 := memNow()
			rss0 := rss()
			c := startClient(b, "idle", s.addr(), n)
			defer c.stop()
			deadline := time.Now().Add(time.Minute)
			for s.open() < n {
				if time.Now().After(deadline) {
					b.Fatal(errors.New("connections not accepted: " + strconv.Itoa(s.open())))
				}
				time.Sleep(10 * time.Millisecond)
			}
			heap1, stack1, sys1 := memNow()
			rss1 := rss()
			per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
			b.ReportMetric(per(heap0, heap1), "heap-B/conn")
			b.ReportMetric(per(stack0, stack1), "stack-B/conn")
			b.ReportMetric(per(sys0, sys1), "sys-B/conn")
			b.ReportMetric(per(uint64(rss0), uint64(rss1)), "rss-B/conn")
			if tc.name == "engine" {
				b.ReportMetric(float64(unsafe.Sizeof(Conn{})), "sizeof-Conn-B")
			}
		})
	}
}
