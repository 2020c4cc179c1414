// Package interop holds the interoperability matrix of the websocket library:
// tests that run the library against real peers (Chromium, Node's ws,
// Python's websockets, gorilla/websocket, coder/websocket), as a server for
// their clients and as a client of their servers, and render the result as
// the matrix committed in docs/INTEROP.md. As a server, the library runs
// on net/http and on the event-loop backend (package eventloop), whose
// connections are sniffed through a TCP relay (relay_test.go) since its
// net.Conn cannot be wrapped; loopBackends (harness_test.go) says which
// of its API styles run with which peer.
//
// It is its own module so that the peers' Go modules stay out of the
// library's go.mod. Everything lives in the _test.go files; run it with
// scripts/test.d/30-interop.sh, or from this directory:
//
//	go test -race -count=1 ./...
//
// INTEROP_CASES, a regular expression, runs only the cases whose names
// match (INTEROP_CASES=deflate runs the compression rows).
//
// A test run leaves the checkout alone: after a complete run (every peer,
// both directions) the matrix goes to the file INTEROP_REPORT names, if
// any (the test command points it into its log directory). Only the report
// command, scripts/interop-report.sh (go test . -args -update-report),
// rewrites docs/INTEROP.md; it fails on a partial run.
package interop
