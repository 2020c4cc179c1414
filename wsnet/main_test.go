package wsnet_test

import (
	"os"
	"testing"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

// TestMain fails the run if a goroutine of the module outlives the tests:
// every connection, and every goroutine a net.Conn starts for its I/O,
// must end by itself.
func TestMain(m *testing.M) {
	os.Exit(leakcheck.After(m.Run()))
}
