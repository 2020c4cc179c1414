package eventloop_test

import (
	"os"
	"testing"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

// TestMain fails the run if any goroutine of the module (a handler, a
// connection's worker, an event loop) outlives the tests: every server a
// test starts is closed by it, and every connection must end by itself.
func TestMain(m *testing.M) {
	os.Exit(leakcheck.After(m.Run()))
}
