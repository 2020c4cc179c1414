// Package conformance holds the RFC 6455 conformance suite of the websocket
// library. It has no API: everything lives in its tests, which drive the
// library's server side from a raw-TCP test client and its client side from a
// raw-TCP test server, both building and checking frames byte by byte.
//
// Run it with:
//
//	go test -race -count=1 ./conformance/...
//
// Test names follow the RFC's sections, e.g. TestServer/5.2_reserved_bits/rsv1_set.
// Set CONFORMANCE_TIMEOUT (a Go duration, default 3s) to change how long a read
// waits for the library before the case fails.
package conformance
