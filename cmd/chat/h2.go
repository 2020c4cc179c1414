package main

import (
	"os"
	"strings"
	"syscall"
)

// http2Setting is the GODEBUG entry without which net/http does not
// advertise extended CONNECT (RFC 8441), so that browsers would open the
// chat's WebSocket on a connection of its own instead of as a stream of
// the page's HTTP/2 connection. net/http reads GODEBUG once, when the
// process starts: neither a //go:debug line nor os.Setenv can turn it on.
const http2Setting = "http2xconnect=1"

// withExtendedConnect runs this program again, in place (same process id,
// arguments and environment), with http2Setting added to GODEBUG, unless
// it already has it. If that fails the chat still works, its WebSockets
// over HTTP/1.1 only.
func withExtendedConnect() {
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, http2Setting) {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := append(os.Environ(), "GODEBUG="+godebug+http2Setting)
	syscall.Exec(exe, os.Args, env) // returns only on failure
}
