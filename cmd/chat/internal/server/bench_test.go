package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// The benchmarks use real WebSocket connections over 127.0.0.1. The
// receiving clients live in a child process (this test binary again, running
// TestCrowdHelper) because 10,000 clients and their 10,000 server ends
// would not fit one process's descriptor limit on machines where it cannot
// be raised; each side then needs about 10,000.

// TestCrowdHelper is the child: it connects CHAT_CROWD_N clients to
// CHAT_CROWD_URL, says "ready", and for each "expect TOTAL" line on stdin
// says "hit" once its clients have received TOTAL messages in all.
func TestCrowdHelper(t *testing.T) {
	url, nStr := os.Getenv("CHAT_CROWD_URL"), os.Getenv("CHAT_CROWD_N")
	if url == "" {
		t.Skip("only runs as the benchmarks' child process")
	}
	n, _ := strconv.Atoi(nStr)
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var dialErr atomic.Value
	var dwg sync.WaitGroup
	for range 32 {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, _, err := websocket.Dial(ctx, url, nil)
				cancel()
				if err != nil {
					dialErr.Store(fmt.Errorf("client %d: %w", i, err))
					return
				}
				conns[i] = c
			}
		}()
	}
	dwg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		fmt.Println("error", err)
		return
	}
	var got, want atomic.Int64
	want.Store(-1)
	hit := make(chan struct{}, 1)
	for _, c := range conns {
		go func() {
			var buf []byte
			for {
				_, msg, err := c.ReadMessage(context.Background(), buf)
				if err != nil {
					return
				}
				buf = msg
				if got.Add(1) == want.Load() {
					hit <- struct{}{}
				}
			}
		}()
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		total, err := strconv.ParseInt(strings.TrimPrefix(in.Text(), "expect "), 10, 64)
		if err != nil {
			break
		}
		want.Store(total)
		if got.Load() >= total {
			// Already there (cannot happen with the parent's protocol,
			// but never hang on it).
			fmt.Println("hit")
			continue
		}
		select {
		case <-hit:
			fmt.Println("hit")
		case <-time.After(60 * time.Second):
			fmt.Println("error timeout", got.Load(), "of", total)
			return
		}
	}
	for _, c := range conns {
		c.CloseNow()
	}
}

// crowd is a server with one room: own clients in this process (the
// senders) and n more in the child process.
type crowd struct {
	own   []*websocket.Conn
	n     int
	stdin io.WriteCloser
	out   *bufio.Scanner
	// memPerConn is this process's heap and stack growth per client of the
	// child: the server's cost of one idle connection (library, hub,
	// goroutines).
	memPerConn float64
}

func newCrowd(b *testing.B, own, n int, cfg chat.Config) *crowd {
	return newCrowdOn(b, BackendHTTP, own, n, cfg)
}

// newCrowdOn is newCrowd on the named backend.
func newCrowdOn(b *testing.B, backend string, own, n int, cfg chat.Config) *crowd {
	b.Helper()
	cfg.AnnounceMax = 1 // n joins would otherwise cost n²/2 notices
	srv, err := New(Config{Hub: cfg, ShutdownTimeout: 30 * time.Second, Backend: backend})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(ln, nil); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, nil, nil); close(done) }()
	url := "ws://" + ln.Addr().String() + "/chat/bench"

	cr := &crowd{n: n}
	for range own {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(dctx, url, nil)
		dcancel()
		if err != nil {
			b.Fatal(err)
		}
		cr.own = append(cr.own, c)
		go func() { // drain: the senders' own copies are not timed
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	before := memInUse()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestCrowdHelper$")
	cmd.Env = append(os.Environ(), "CHAT_CROWD_URL="+url, "CHAT_CROWD_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	if cr.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	cr.out = bufio.NewScanner(stdout)
	b.Cleanup(func() {
		cr.stdin.Close()
		cmd.Wait()
		cancel()
		<-done
		for _, c := range cr.own {
			c.CloseNow()
		}
	})
	cr.await(b, "ready")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, _ := srv.Hub().Counts(); c == own+n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("clients did not all join")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cr.memPerConn = float64(memInUse()-before) / float64(n)
	return cr
}

// memInUse is the heap and goroutine stacks in use after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func (cr *crowd) await(b *testing.B, word string) {
	for cr.out.Scan() {
		line := cr.out.Text()
		if line == word {
			return
		}
		if strings.HasPrefix(line, "error") {
			b.Fatalf("crowd: %s", line)
		}
	}
	b.Fatalf("crowd process ended before %q: %v", word, cr.out.Err())
}

// expect asks the child to report once its clients received total messages.
func (cr *crowd) expect(b *testing.B, total int64) {
	if _, err := fmt.Fprintf(cr.stdin, "expect %d\n", total); err != nil {
		b.Fatal(err)
	}
}

func post(c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.TextMessage, msg)
}

// BenchmarkFanout10k measures one message from one client to 10,000
// connected clients of a room: ns/op is the time from the send until the
// last of the 9,999 other clients has read it.
func BenchmarkFanout10k(b *testing.B) {
	cr := newCrowd(b, 1, 9999, chat.Config{Queue: 1024, WriteTimeout: 30 * time.Second})
	msg := []byte("the quick brown fox jumps over the lazy dog")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cr.expect(b, int64(i+1)*int64(cr.n))
		if err := post(cr.own[0], msg); err != nil {
			b.Fatal(err)
		}
		cr.await(b, "hit")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/fanout")
	b.ReportMetric(cr.memPerConn, "server-B/conn")
}

// BenchmarkIdle10k measures the server's memory per idle chat client,
// on each backend: 10,000 clients in one room (the chat's defaults: 256
// messages of queue, pings every 30 s), heap and goroutine stacks after a
// GC, divided by the clients. ns/op means nothing here.
func BenchmarkIdle10k(b *testing.B) {
	for _, backend := range backends {
		b.Run("backend="+backend, func(b *testing.B) {
			before := runtime.NumGoroutine()
			cr := newCrowdOn(b, backend, 0, 10000, chat.Config{Queue: 256, History: 100, Store: chat.NewMemStore(100), PingInterval: 30 * time.Second, WriteTimeout: 10 * time.Second})
			goroutines := runtime.NumGoroutine() - before
			for i := 0; i < b.N; i++ {
			}
			b.ReportMetric(cr.memPerConn, "server-B/conn")
			b.ReportMetric(float64(goroutines)/float64(cr.n), "goroutines/conn")
		})
	}
}

// BenchmarkRoom1k measures throughput through one room with 1,000 clients:
// 10 of them send b.N messages in all as fast as they can, and the time runs
// until each of the other 990 has read every message. msgs/s counts messages
// posted, deliveries/s messages written to the 1,000 clients.
func BenchmarkRoom1k(b *testing.B) {
	for _, hist := range []string{"off", "memory", "bbolt"} {
		b.Run("history="+hist, func(b *testing.B) {
			const senders, n = 10, 990
			cfg := chat.Config{Queue: 0, WriteTimeout: 30 * time.Second}
			switch hist {
			case "memory":
				cfg.History, cfg.Store = 100, chat.NewMemStore(100)
			case "bbolt":
				st, err := chat.OpenBoltStore(b.TempDir(), 100)
				if err != nil {
					b.Fatal(err)
				}
				cfg.History, cfg.Store = 100, st
			}
			cr := newCrowd(b, senders, n, cfg)
			msg := []byte("a chat message of a typical length, say seventy bytes or so, ok?")
			b.ResetTimer()
			cr.expect(b, int64(b.N)*n)
			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := s; i < b.N; i += senders {
						if err := post(cr.own[s], msg); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			cr.await(b, "hit")
			b.StopTimer()
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/sec, "msgs/s")
			b.ReportMetric(float64(b.N)*(n+senders)/sec, "deliveries/s")
		})
	}
}
