// Package interop holds the interoperability matrix of the websocket library:
// tests that run the library against real peers (Chromium, Node's ws,
// Python's websockets, gorilla/websocket, coder/websocket), as a server for
// their clients and as a client of their servers, and write the result to
// docs/INTEROP.md.
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
// The matrix file is rewritten only by a complete run (every peer, both
// directions); a run filtered with -run, or one missing a peer outside CI,
// leaves it alone.
package interop
