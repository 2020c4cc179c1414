package websocket

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/leakcheck"
	"github.com/wsdriver/websocket/internal/xconnect"
)

// TestMain fails the run if any goroutine of the library outlives the
// tests, or any connection is still registered with the poller (a parked
// event loop has no goroutine): every connection must end by itself.
//
// Idle event loops park after 10 ms instead of a second, so that parking
// and waking run all through the tests, under the race detector.
//
// The tests of WebSockets over HTTP/2 need net/http's extended CONNECT,
// which only GODEBUG=http2xconnect=1 in the environment turns on: without
// it the test binary runs itself again with it (internal/xconnect).
func TestMain(m *testing.M) {
	if code, ran := xconnect.Reexec(); ran {
		os.Exit(code)
	}
	idleSweep.Store(int64(10 * time.Millisecond))
	code := m.Run()
	code = leakcheck.After(code)
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for polledConns() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := polledConns(); n > 0 {
			fmt.Fprintf(os.Stderr, "%d connection(s) still registered with the poller after the tests\n", n)
			code = 1
		}
	}
	os.Exit(code)
}
