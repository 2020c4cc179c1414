package eventloop_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

// TestMain fails the run if any goroutine of the module (a handler, a
// connection's worker, an event loop) outlives the tests: every server a
// test starts is closed by it, and every connection must end by itself.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := leakcheck.Check(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
