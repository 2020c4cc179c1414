// Package conformance holds the RFC 6455 (and RFC 7692) conformance suite of
// the websocket library. It has no API: everything lives in its tests, which
// drive the library's server side from a raw-TCP test client and its client
// side from a raw-TCP test server, both building, masking and checking frames
// byte by byte with their own code (nothing is borrowed from the library).
//
// Run it with:
//
//	go test -race -count=1 ./conformance/...
//
// or one side, section or case:
//
//	go test -race -run 'TestServer/5.2_reserved_bits/rsv1_set' ./conformance/
//
// # Layout
//
// TestServer, TestServerEvents and TestServerStream run every case against an
// echo server written with, in turn, the blocking API (ReadMessage/Write), the
// seed's event API (OnMessage/Send/OnClose) and the streaming API
// (NextReader/NextWriter). TestClient, TestClientEvents and TestClientStream
// do the same with the library as the client. The opening handshake has its
// own tables (4.1 for the client, 4.2 for the server). TestServerHTTP2,
// TestServerHTTP2Events and TestClientHTTP2 run the same frame-level cases
// over HTTP/2 (RFC 8441): the WebSocket is an extended CONNECT stream of a
// TLS connection, the tester's end is net/http's own HTTP/2 client or
// server, and ending the stream stands for closing TCP (a server cannot
// half-close a stream, so the tester's half-close there ends it; a reset
// with CANCEL counts as a TCP reset). The test binary runs itself again
// with GODEBUG=http2xconnect=1, which net/http needs to allow extended
// CONNECT. Subtests are named
// after the RFC section whose rule they check, e.g.
// TestServer/5.2_reserved_bits/rsv1_set; the section comments name the
// Autobahn TestSuite category each one covers.
//
// TestServerEventLoop, TestServerEventLoopEvents and
// TestServerEventLoopEventsOnLoop run every server case, and the first the
// opening-handshake table too, against the same echo handlers served by
// the event-loop backend (package eventloop) instead of net/http: the
// blocking API, the event API with its handlers on a goroutine per busy
// connection (the default), and the event API with
// Server.HandlersOnLoop. startHandler in harness_test.go starts a handler
// on a named backend. Client cases and HTTP/2 do not apply there (the
// backend is an HTTP/1.1 server without TLS). Two differences are
// explicit:
//
//   - The backend's request parser (internal/upgrade) takes the strict
//     answer where RFC 9112 lets a server choose, so these handshake cases
//     expect 400 there and 101 on net/http: a bare LF ending a header line
//     (RFC 9112 2.2: a recipient MAY accept it), an obs-fold continuation
//     line (RFC 9112 5.2: refuse with 400 or replace with SP), and a
//     request-target with bytes above 0x7F (RFC 9112 3.2 and RFC 3986: a
//     target is ASCII; an invalid request-line SHOULD get 400). Each such
//     case sets hsCase.evloop and cites its rule in evloopNote; the
//     subtest logs it.
//   - The backend never blocks a sender: a connection whose write queue
//     would pass Server.MaxWriteQueue (4 MiB by default) is dropped. The
//     suite's servers set it above the largest echo (16 MiB), as an
//     application sending such messages must.
//
// A case (tcase in harness_test.go) lists the frames the tester sends and the
// single outcome the library must produce: the echoes and pongs it must send,
// then either a normal closing handshake or a close frame with a given code,
// followed by the TCP close. Every frame the library sends is checked against
// the RFC's sender rules as it is read (masking by side, RSV bits, opcodes,
// minimal length encoding, control frame size, close codes, UTF-8).
//
// To add a case, add a tcase to the section's table in cases_test.go (or
// utf8cases_test.go, deflate_test.go); give it side serverOnly or clientOnly
// only when the rule is one side's, and a note citing the RFC where the
// expectation is a choice.
//
// # Choices where the RFC leaves room
//
//   - Non-minimal length encodings: RFC 6455 5.2 puts the minimal encoding on
//     the sender; the receiver may echo the message or fail with 1002.
//   - The echo of a message that precedes a fatal frame or a close may be
//     dropped: the application's write can lose the race with the library
//     failing or closing the connection.
//   - Pongs and echoes are matched each in their own order; RFC 6455 does not
//     order the library's pongs against the application's messages.
//   - Close codes 1012-1014 (IANA registry) are valid and echoed.
//   - A close without status may be answered with no status or 1000.
//   - Ten pings in a row must get ten pongs, although RFC 6455 5.5.3 allows
//     answering only the latest.
//   - Fail-fast UTF-8 is required even inside one frame whose payload has not
//     fully arrived.
//   - Data that does not inflate (RFC 7692) may fail with 1002 or 1007.
//   - A server refusing a handshake without a websocket Upgrade may use 400 or
//     426; an unsupported version gets 400 or 426 with Sec-WebSocket-Version: 13.
//
// TestMain fails the run if goroutines started during it are still alive a few
// seconds after the last test. Set CONFORMANCE_TIMEOUT (a Go duration, default
// 3s) to change how long a read waits for the library before a case fails.
package conformance
