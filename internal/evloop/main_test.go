package evloop

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) != "" {
		os.Exit(runClient())
	}
	// The runtime's network poller opens its descriptors on first use,
	// for good: start it before counting.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	fds := openFds()
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own: count only ours then.
	if fuzzing() {
		goroutines = 1 << 30
	}
	code = leakcheck.After(code)
	if code == 0 {
		// Every descriptor a test opened (sockets, epoll sets, eventfds)
		// must be closed again.
		deadline := time.Now().Add(10 * time.Second)
		for openFds() > fds || runtime.NumGoroutine() > goroutines {
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "leak: %d open descriptors (%d before), %d goroutines (%d before)\n", openFds(), fds, runtime.NumGoroutine(), goroutines)
				code = 1
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// openFds counts the process's open descriptors (0 where /proc is
// missing).
func openFds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}
