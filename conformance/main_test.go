package conformance

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket/internal/xconnect"
)

// TestMain runs the suite and then fails it if goroutines started during the
// run are still alive after a grace period: every connection the library
// opened, in any case, must have wound down by itself.
//
// The HTTP/2 runs need net/http's extended CONNECT, which only
// GODEBUG=http2xconnect=1 in the environment turns on: without it the test
// binary runs itself again with it.
func TestMain(m *testing.M) {
	if code, ran := xconnect.Reexec(); ran {
		os.Exit(code)
	}
	before := goroutines()
	code := m.Run()
	if leaks := waitForLeaks(before, 5*time.Second); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "goroutine leak check: %d goroutine(s) still running after the tests:\n\n%s\n",
			len(leaks), strings.Join(leaks, "\n\n"))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stack of every goroutine but the caller's, keyed by
// the goroutine's header line id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, block := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // runtime.Stack lists the calling goroutine first
		}
		s := string(block)
		id, _, _ := strings.Cut(s, " [")
		out[id] = s
	}
	return out
}

// ignoredStacks are goroutines the runtime, the test binary or the library
// start once per process; they belong to no connection.
var ignoredStacks = []string{
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"testing.(*M).startAlarm",
	"testing.runFuzzing",
	// The library's poller: two goroutines that serve parked event loops
	// for the life of the process, started with the first event-API
	// connection.
	"github.com/wsdriver/websocket.(*poller).",
}

func waitForLeaks(before map[string]string, grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		var leaks []string
	next:
		for id, stack := range goroutines() {
			if _, ok := before[id]; ok {
				continue
			}
			for _, ig := range ignoredStacks {
				if strings.Contains(stack, ig) {
					continue next
				}
			}
			leaks = append(leaks, stack)
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServer drives the library's server side (websocket.Accept with an echo
// loop) from a raw-TCP client that builds and masks every frame by hand.
func TestServer(t *testing.T) {
	t.Run("4.2_opening_handshake", serverHandshakeOn(backendHTTP))
	runSections(t, allSections(), serverOnly, apiBlocking, runServerCase)
}

// TestServerEventLoop runs the server's cases, the opening handshake
// included, against the same blocking-API echo handler served by the
// event-loop backend (eventloop.Server) instead of net/http.
func TestServerEventLoop(t *testing.T) {
	t.Run("4.2_opening_handshake", serverHandshakeOn(backendEventLoop))
	runSections(t, allSections(), serverOnly, apiBlocking, serverCasesOn(backendEventLoop))
}

// TestServerEventLoopEvents runs the same cases against the event-API echo
// server on the event-loop backend, whose handlers run on a goroutine per
// busy connection (the default).
func TestServerEventLoopEvents(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiEvents, serverCasesOn(backendEventLoop))
}

// TestServerEventLoopEventsOnLoop runs the same cases against the event-API
// echo server on the event-loop backend with HandlersOnLoop, where the
// handlers run on the event loop itself.
func TestServerEventLoopEventsOnLoop(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiEvents, serverCasesOn(backendEventLoopInline))
}

// TestServerEvents runs the same cases against a server written with the
// seed's event API (NewServer, OnMessage, Send, OnClose).
func TestServerEvents(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiEvents, runServerCase)
}

// TestServerStream runs the same cases against a server that echoes each
// message as a stream (NextReader, NextWriter).
func TestServerStream(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiStream, runServerCase)
}

// TestClient drives the library's client side (websocket.Dial with an echo
// loop) from a raw-TCP server that answers the handshake and sends unmasked
// frames by hand.
func TestClient(t *testing.T) {
	t.Run("4.1_opening_handshake", testClientHandshake)
	runSections(t, allSections(), clientOnly, apiBlocking, runClientCase)
}

// TestClientEvents runs the same cases against a client written with the
// seed's event API (NewClient, OnMessage, Send, OnClose).
func TestClientEvents(t *testing.T) {
	runSections(t, allSections(), clientOnly, apiEvents, runClientCase)
}

// TestClientStream runs the same cases against a client that echoes each
// message as a stream (NextReader, NextWriter).
func TestClientStream(t *testing.T) {
	runSections(t, allSections(), clientOnly, apiStream, runClientCase)
}
