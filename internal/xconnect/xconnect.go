// Package xconnect lets a test binary serve WebSockets over HTTP/2. net/http
// advertises extended CONNECT (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL)
// only when the process starts with GODEBUG containing http2xconnect=1: it
// reads the environment once, in an init function, so neither a //go:debug
// directive nor os.Setenv can turn it on later. A TestMain calls Reexec
// first: without the setting, the test binary runs itself again with it.
package xconnect

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Setting is the GODEBUG entry that turns extended CONNECT on.
const Setting = "http2xconnect=1"

// Enabled reports whether this process started with Setting in GODEBUG.
func Enabled() bool { return strings.Contains(os.Getenv("GODEBUG"), Setting) }

// Env returns the environment of this process with Setting added to
// GODEBUG, for a child process that must serve or dial HTTP/2 WebSockets.
func Env() []string {
	godebug := os.Getenv("GODEBUG")
	if godebug != "" {
		godebug += ","
	}
	// exec uses the last of duplicate keys.
	return append(os.Environ(), "GODEBUG="+godebug+Setting)
}

// Reexec runs this binary again, with the same arguments and standard
// streams and with Setting in GODEBUG, unless the process already has it.
// It returns the child's exit code and true if it ran it; the caller then
// exits with that code.
func Reexec() (code int, ran bool) {
	if Enabled() {
		return 0, false
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = Env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		if c := ee.ExitCode(); c >= 0 {
			return c, true
		}
		fmt.Fprintf(os.Stderr, "xconnect: test binary with %s: %v\n", Setting, err)
		return 1, true
	default:
		fmt.Fprintf(os.Stderr, "xconnect: running the test binary with %s: %v\n", Setting, err)
		return 1, true
	}
}
