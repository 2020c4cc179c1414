// Package leakcheck finds goroutines that outlive a test run. A test
// package calls it from TestMain after m.Run: any goroutine still running
// code of this module (other than the caller) after a grace period is a
// leak, since every connection a test opens must end by itself. The one
// exception is the library's poller, whose two goroutines serve parked event
// loops for the life of the process; a connection parked there has no
// goroutine, so the library's own tests also check that the poller ends up
// holding no connection.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// module is the import path prefix of the code whose goroutines are checked.
const module = "github.com/wsdriver/websocket"

// afterGrace is how long After waits for the module's goroutines to end.
const afterGrace = 10 * time.Second

// After takes the exit code of m.Run and returns the one to exit with: a
// failed run keeps its code; a passing one fails (1) if the module's
// goroutines have not ended within ten seconds, whose stacks then go to
// standard error. TestMain is typically os.Exit(leakcheck.After(m.Run())).
func After(code int) int {
	if code != 0 {
		return code
	}
	if err := Check(afterGrace); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Check waits up to grace for the module's goroutines to end and returns an
// error listing the stacks of those that did not.
func Check(grace time.Duration) error {
	deadline := time.Now().Add(grace)
	for {
		leaked := leakedStacks()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leakcheck: %d goroutine(s) still running after %v:\n\n%s", len(leaked), grace, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leakedStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")
	var leaked []string
	for _, s := range stacks[1:] { // the first is the caller's own
		if strings.Contains(s, module) && !strings.Contains(s, module+"/internal/leakcheck") && !strings.Contains(s, module+".(*poller).") {
			leaked = append(leaked, s)
		}
	}
	return leaked
}
