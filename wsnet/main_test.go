package wsnet_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

// TestMain fails the run if a goroutine of the module outlives the tests:
// every connection, and every goroutine a net.Conn starts for its I/O,
// must end by itself.
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
