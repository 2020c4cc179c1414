package wsjson_test

import (
	"os"
	"testing"

	"github.com/wsdriver/websocket/internal/leakcheck"
)

// TestMain fails the run if a goroutine of the module outlives the tests.
func TestMain(m *testing.M) {
	os.Exit(leakcheck.After(m.Run()))
}
