package servers

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wsdriver/websocket/bench/internal/load"
	"github.com/wsdriver/websocket/bench/internal/wire"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func start(t *testing.T, name string, mode Mode) string {
	t.Helper()
	s, ok := Lookup(name)
	if !ok {
		t.Fatalf("no server %s", name)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, addr, mode) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The servers written in this module (the floor and ours) are run in
// process under the race detector; the peers are exercised by the smoke run.
var inProcess = []string{"floor", "ours", "ours-event", "ours-loop", "ours-loop-worker", "ours-loop-blocking"}

func TestEchoRows(t *testing.T) {
	for _, name := range inProcess {
		for _, row := range []struct {
			conns, payload, inflight int
			text                     bool
		}{{2, 32, 1, false}, {2, 1024, 1, true}, {1, 70000, 1, false}, {2, 128, 16, false}} {
			t.Run(fmt.Sprintf("%s/%dx%d-p%d", name, row.conns, row.payload, row.inflight), func(t *testing.T) {
				addr := start(t, name, Echo)
				r, err := load.Echo(context.Background(), load.EchoSpec{
					Addr: addr, Conns: row.conns, Payload: row.payload, InFlight: row.inflight, Text: row.text,
					Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond,
					// A busy machine may complete nothing in 100 ms.
					MinRoundTrips: 1, MaxDuration: 30 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				if r.RoundTrips == 0 || r.P50ns <= 0 || r.P99ns < r.P50ns {
					t.Fatalf("implausible result %+v", r)
				}
			})
		}
	}
}

func TestBroadcast(t *testing.T) {
	for _, name := range []string{"floor", "ours", "ours-event", "ours-loop", "ours-loop-worker", "ours-loop-blocking"} {
		t.Run(name, func(t *testing.T) {
			addr := start(t, name, Broadcast)
			r, err := load.Broadcast(context.Background(), load.BroadcastSpec{
				Addr: addr, Conns: 20, Payload: 128, Rounds: 2, Warmup: 1, Timeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.LastNs) != 2 || r.MedianLastNs <= 0 {
				t.Fatalf("implausible result %+v", r)
			}
		})
	}
}

func TestIdleVerify(t *testing.T) {
	addr := start(t, "floor", Echo)
	s, err := load.Idle(context.Background(), addr, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A server that answers with something else than the echo must fail the
// run: the load generator's checks are what make every number trustworthy.
func TestLoadDetectsWrongEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				i := bytes.Index(buf[:n], []byte("Sec-WebSocket-Key: "))
				if i < 0 {
					return
				}
				key := buf[i+19:]
				key = key[:bytes.IndexByte(key, '\r')]
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wire.AcceptKey(string(key)))
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					// Right length, wrong bytes.
					c.Write(wire.AppendHeader(nil, true, wire.OpBinary, 32, nil))
					c.Write(make([]byte, 32))
				}
			}()
		}
	}()
	_, err = load.Echo(context.Background(), load.EchoSpec{
		Addr: ln.Addr().String(), Conns: 1, Payload: 32, InFlight: 1,
		Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("a wrong echo was accepted")
	}
}

func TestNamesOrder(t *testing.T) {
	n := Names()
	want := []string{"floor", "ours", "ours-event", "ours-loop", "ours-loop-blocking", "ours-loop-worker"}
	if len(n) <= len(want) || !slices.Equal(n[:len(want)], want) {
		t.Fatalf("names %v: want %v first", n, want)
	}
}

// slowStart forwards connections to addr, holding back the server's first
// bytes after the handshake for delay: a server that is slow to answer, as
// any server is on a machine busy enough.
func slowStart(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				br := bufio.NewReader(s)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, line); err != nil || line == "\r\n" {
						break
					}
				}
				time.Sleep(delay)
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

// A window in which nothing completes fails a run, unless MinRoundTrips
// extends it (as the smoke run does) until the server answered.
func TestEchoMinRoundTrips(t *testing.T) {
	addr := slowStart(t, start(t, "floor", Echo), 300*time.Millisecond)
	spec := load.EchoSpec{
		Addr: addr, Conns: 1, Payload: 32, InFlight: 1,
		Warmup: 10 * time.Millisecond, Duration: 20 * time.Millisecond,
	}
	if _, err := load.Echo(context.Background(), spec); err == nil {
		t.Fatal("a window with no round trip in it passed")
	}
	spec.MinRoundTrips, spec.MaxDuration = 1, 30*time.Second
	r, err := load.Echo(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.RoundTrips == 0 || r.Seconds < 0.2 {
		t.Fatalf("%d round trips in %.3fs: want some, after the server's 300 ms silence", r.RoundTrips, r.Seconds)
	}
}
