package server

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// TestIdleClientHoldsNoGoroutine: on the event-loop backend an idle chat
// client holds no goroutine (no reader, no writer, no ping ticker); on
// net/http it holds its writer (the library's poller reads for it). The clients live in a child
// process (TestCrowdHelper), so every goroutine counted here is the
// server's. The count is taken once the server has settled: the
// handshakes' short-lived goroutines have ended when it stops falling, so
// the test waits for the expected count (with a generous bound) rather
// than for a time.
func TestIdleClientHoldsNoGoroutine(t *testing.T) {
	const n = 200
	for _, tc := range []struct {
		backend  string
		min, max int // goroutines beyond the baseline, for n clients
	}{
		// The writer goroutine (the reader is the library's poller).
		{BackendHTTP, n, 1 << 20},
		// None per client; a few for the whole server (a pool's or a
		// timer's) are not a client's.
		{BackendEventLoop, 0, n / 20},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			ts := start(t, Config{Backend: tc.backend, Hub: chat.Config{History: 10, Queue: 256, PingInterval: time.Minute, AnnounceMax: 1}}, false)
			// One client first: the room's goroutine and the server's
			// own are in the baseline.
			dial(t, ts.wsURL+"/chat/idle", nil)
			ts.waitClients(1)
			base := settledGoroutines(t, func(g int) bool { return true })
			stop := crowdProcess(t, ts.wsURL+"/chat/idle", n)
			defer stop()
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if c, _ := ts.srv.Hub().Counts(); c == n+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("clients did not all join")
				}
			}
			lo, hi := base+tc.min, base+tc.max
			got := settledGoroutines(t, func(g int) bool { return g >= lo && g <= hi })
			t.Logf("%s: %d goroutines for %d idle clients (baseline %d): %.2f per client", tc.backend, got-base, n, base, float64(got-base)/n)
			if got < lo || got > hi {
				t.Fatalf("%s: %d goroutines beyond the baseline for %d idle clients; want %d to %d", tc.backend, got-base, n, tc.min, tc.max)
			}
		})
	}
}

// settledGoroutines waits (up to a generous bound) until the goroutine
// count satisfies ok, and returns it; if it never does, the last count.
func settledGoroutines(t *testing.T, ok func(int) bool) int {
	t.Helper()
	g := runtime.NumGoroutine()
	for deadline := time.Now().Add(30 * time.Second); !ok(g) && time.Now().Before(deadline); g = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	return g
}

// crowdProcess connects n clients to url from a child process (this test
// binary running TestCrowdHelper) and returns a function that ends it.
func crowdProcess(t *testing.T, url string, n int) (stop func()) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestCrowdHelper$")
	cmd.Env = append(os.Environ(), "CHAT_CROWD_URL="+url, "CHAT_CROWD_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); l == "ready" || strings.HasPrefix(l, "error") {
				ready <- l
				break
			}
		}
		for sc.Scan() {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case l := <-ready:
		if l != "ready" {
			stop()
			t.Fatalf("crowd: %s", l)
		}
	case <-ctx.Done():
		stop()
		t.Fatal("crowd process did not connect its clients")
	}
	return stop
}
