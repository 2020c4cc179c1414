package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// side says which end of the library a case applies to.
type side uint8

const (
	both       side = iota
	serverOnly      // e.g. unmasked frames: only a server must reject them
	clientOnly      // e.g. masked frames: only a client must reject them
)

// tcase is one conformance case: what the tester sends, and the one outcome the
// library must produce.
type tcase struct {
	name  string
	side  side
	send  []frame
	split splitMode
	// halfClose shuts down the tester's sending half of TCP after send, without
	// a close frame.
	halfClose bool
	// want lists what the library must send back, in order, before any close.
	want []item
	// close is nil when the case ends normally: the tester then starts the
	// closing handshake with 1000 and expects 1000 or no status back. Otherwise
	// the library's next frame must be a close with one of these codes.
	close []uint16
	// closeOrEOF accepts a plain TCP close where a close frame is expected (for
	// connections that ended without a closing handshake).
	closeOrEOF bool
	// orFail1002 is set where the RFC lets the receiver either accept the input
	// or fail the connection with 1002; note says why.
	orFail1002 bool
	// mayDrop lets the library fail or close the connection before the
	// application's echo of an earlier message went out (RFC 6455 5.5.1 and
	// 7.1.7 do not order the two); note says why.
	mayDrop bool
	// noReply leaves the library's close frame unanswered: it must close TCP by
	// itself within its close timeout.
	noReply bool
	// reason, when set, is the close reason the library must send.
	reason string
	// afterClose is sent once the library's close frame has arrived, before
	// the tester's reply: data the library must no longer answer.
	afterClose []frame
	// waitEOF makes the tester (as a server too) wait for the library to close
	// TCP instead of closing first.
	waitEOF bool
	// libCode, when set, is the close status the library's own reader must end with.
	libCode websocket.StatusCode
	// timeout overrides readTimeout for slow cases (large messages under -race).
	timeout   time.Duration
	maxLength int64
	note      string
	// deflate negotiates permessage-deflate (RFC 7692) before the case.
	deflate bool
	// noTakeover, with deflate, negotiates no context takeover for the
	// library's messages (takeoverLibrary) or the tester's (takeoverTester).
	noTakeover takeoverSide
	// post runs extra checks on the tester's view after the case.
	post func(*testing.T, *rawPeer)
}

func (c tcase) wait() time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return readTimeout
}

func seedOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// section is one group of cases, named after the RFC section it checks.
type section struct {
	name  string
	cases []tcase
}

// runWire plays one case over an established connection and checks the outcome.
func runWire(t *testing.T, p *rawPeer, c tcase) {
	t.Helper()
	if c.note != "" {
		t.Log(c.note)
	}
	if c.mayDrop {
		t.Log(dropEcho)
	}
	if c.split == splitRandom {
		t.Logf("random split seeded from the case name (seed %d)", seedOf(t.Name()))
	}
	sentClose := false
	for _, f := range c.send {
		if f.op == opClose {
			sentClose = true
		}
	}
	p.startSend(c.send, c.split)
	defer func() {
		if err := p.waitSend(); err != nil {
			t.Logf("write error (the library may have closed early): %v", err)
		}
	}()
	if c.halfClose {
		if err := p.waitSend(); err != nil {
			t.Logf("write error before the half-close: %v", err)
		}
		if err := p.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatalf("half-close: %v", err)
		}
	}
	wait := c.wait()
	// Pongs are produced by the library and echoes by the application above
	// it; RFC 6455 does not order the two, so each kind is matched in its own
	// order and the interleaving is free.
	var wantData, wantPong []item
	for _, w := range c.want {
		if w.op == opPong {
			wantPong = append(wantPong, w)
		} else {
			wantData = append(wantData, w)
		}
	}
	var early *item // a close that arrived where the case allows it instead of an echo
	for n := 0; n < len(c.want); n++ {
		got, err := p.nextItem(wait)
		if err != nil {
			t.Fatalf("want %s, got error: %v", pending(wantData, wantPong), err)
		}
		if got.op == opClose {
			code, _ := parseClose(got.data)
			if n == 0 && c.orFail1002 && code == 1002 {
				t.Logf("library chose to fail with 1002, which the RFC allows here")
				finishClose(t, p, c, 1002, sentClose)
				return
			}
			if c.mayDrop && len(wantPong) == 0 {
				t.Logf("library closed before echoing %d message(s), which the RFC allows here", len(wantData))
				early = &got
				break
			}
		}
		queue := &wantData
		if got.op == opPong {
			queue = &wantPong
		}
		if len(*queue) == 0 || !sameItem(got, (*queue)[0]) {
			t.Fatalf("want %s, got %v", pending(wantData, wantPong), got)
		}
		*queue = (*queue)[1:]
	}
	want := c.close
	if want == nil {
		want = []uint16{1000, codeEmpty}
		if !sentClose && !c.halfClose {
			p.startSend([]frame{closeF(1000, "")}, splitNone)
			sentClose = true
		}
	}
	got, err := item{}, error(nil)
	if early != nil {
		got = *early
	} else {
		got, err = p.nextItem(wait)
	}
	if err != nil {
		if c.closeOrEOF && isClosed(err) {
			return
		}
		t.Fatalf("want close %s, got error: %v", codesString(want), err)
	}
	if got.op != opClose {
		t.Fatalf("want close %s, got %v", codesString(want), got)
	}
	code, reason := parseClose(got.data)
	if !containsCode(want, code) {
		t.Fatalf("want close %s, got %v", codesString(want), got)
	}
	if c.reason != "" && reason != c.reason {
		t.Fatalf("want close reason %q, got %v", c.reason, got)
	}
	finishClose(t, p, c, code, sentClose)
	if c.post != nil {
		c.post(t, p)
	}
}

// finishClose completes the closing handshake from the tester's side and checks
// that TCP goes down the way RFC 6455 7.1.1 says.
func finishClose(t *testing.T, p *rawPeer, c tcase, code uint16, sentClose bool) {
	t.Helper()
	if len(c.afterClose) > 0 {
		p.startSend(c.afterClose, splitNone)
	}
	if !sentClose && !c.noReply {
		reply := code
		if !validCloseCode(reply) {
			reply = codeEmpty
		}
		// The library may already have dropped TCP after failing the
		// connection, so a write error here is not a defect.
		p.startSend([]frame{closeF(reply, "")}, splitNone)
	}
	if p.endAfterClose && !c.noReply {
		// An HTTP/2 client ends its half of the stream once the closing
		// handshake is done (browsers, Node, the library's client do).
		p.waitSend()
		p.conn.(interface{ CloseWrite() error }).CloseWrite()
	}
	if p.isClient || c.noReply || c.waitEOF {
		// The server closes TCP first (RFC 6455 7.1.1); a client that got no
		// answer must give up after its close timeout.
		if err := p.expectTCPClose(c.wait() + 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// pending describes what the case still waits for.
func pending(data, pongs []item) string {
	var s []string
	for _, it := range data {
		s = append(s, it.String())
	}
	for _, it := range pongs {
		s = append(s, it.String())
	}
	return strings.Join(s, " and ")
}

func containsCode(codes []uint16, c uint16) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

func codesString(codes []uint16) string {
	var s []string
	for _, c := range codes {
		if c == codeEmpty {
			s = append(s, "(no status)")
		} else {
			s = append(s, fmt.Sprint(c))
		}
	}
	return strings.Join(s, " or ")
}

// checkLibResult waits for the library's reader to finish and checks its status.
func checkLibResult(t *testing.T, c tcase, res <-chan error, who string) {
	t.Helper()
	select {
	case err := <-res:
		checkLibErr(t, c, err, who)
	case <-time.After(c.wait() + 5*time.Second):
		t.Fatalf("%s reader still running after the connection ended", who)
	}
}

func checkLibErr(t *testing.T, c tcase, err error, who string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s reader ended without an error", who)
	}
	if c.libCode != 0 {
		if got := libStatus(err); got != c.libCode {
			t.Fatalf("%s reader ended with %v (status %d), want status %d", who, err, got, c.libCode)
		}
	}
}

// libStatus is the close status a library error carries: the peer's code in a
// *websocket.CloseError, or the code the library failed the connection with in
// a *websocket.ProtocolError.
func libStatus(err error) websocket.StatusCode {
	var pe *websocket.ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return websocket.CloseStatus(err)
}

// echoLoop is the library user under test: it echoes every message with its type.
func echoLoop(ctx context.Context, c *websocket.Conn) error {
	var buf []byte
	for {
		typ, data, err := c.ReadMessage(ctx, buf)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return err
		}
		if code, reason, ok := closeCommand(typ, data); ok {
			c.Close(code, reason)
		}
		if p, ok := pingCommand(typ, data); ok {
			c.SendPing(p)
		}
		buf = data
	}
}

// closeCommand recognises the text message "close <code> <reason>", on which
// every echo peer, after echoing it, starts the closing handshake itself.
func closeCommand(typ websocket.MessageType, msg []byte) (websocket.StatusCode, string, bool) {
	if typ != websocket.TextMessage || !bytes.HasPrefix(msg, []byte("close ")) {
		return 0, "", false
	}
	f := strings.SplitN(string(msg), " ", 3)
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, "", false
	}
	reason := ""
	if len(f) == 3 {
		reason = f[2]
	}
	return websocket.StatusCode(code), reason, true
}

// api selects which of the library's APIs the echo peer is written with; the
// wire behaviour must not depend on it.
type api uint8

const (
	apiBlocking api = iota // ReadMessage + Write
	apiEvents              // OnMessage + Send, the seed's API
	apiStream              // NextReader + NextWriter
)

// eventEcho sets up the seed-style echo: handlers only, reporting the close
// through OnClose as a *websocket.CloseError.
func eventEcho(c *websocket.Conn, res chan<- error) {
	c.OnMessage(func(m websocket.Message) {
		if m.Type == websocket.TextMessage {
			c.SendText(m.Text())
		} else {
			c.SendBinary(m.Data)
		}
		if code, reason, ok := closeCommand(m.Type, m.Data); ok {
			c.Close(code, reason)
		}
		if p, ok := pingCommand(m.Type, m.Data); ok {
			c.SendPing(p)
		}
	})
	c.OnClose(func(code websocket.StatusCode, reason string) {
		res <- &websocket.CloseError{Code: code, Reason: reason}
	})
}

// streamEcho echoes each message as a stream, so that fragments go out while
// the message is still arriving.
func streamEcho(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, r, err := c.NextReader(ctx)
		if err != nil {
			return err
		}
		w, err := c.NextWriter(ctx, typ)
		if err != nil {
			return err
		}
		// The first bytes are kept to recognise a close command.
		var head prefixBuffer
		if _, err := io.Copy(w, io.TeeReader(r, &head)); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		if code, reason, ok := closeCommand(typ, head.b); ok {
			c.Close(code, reason)
		}
		if p, ok := pingCommand(typ, head.b); ok {
			c.SendPing(p)
		}
	}
}

// pingCommand recognises the text message "ping:<payload>", on which every
// echo peer, after echoing it, sends a ping with that payload.
func pingCommand(typ websocket.MessageType, msg []byte) ([]byte, bool) {
	if typ != websocket.TextMessage || !bytes.HasPrefix(msg, []byte("ping:")) {
		return nil, false
	}
	return bytes.Clone(msg[5:]), true
}

// prefixBuffer keeps the first 256 bytes written to it.
type prefixBuffer struct{ b []byte }

func (p *prefixBuffer) Write(b []byte) (int, error) {
	if n := 256 - len(p.b); n > 0 {
		p.b = append(p.b, b[:min(n, len(b))]...)
	}
	return len(b), nil
}

// backend is the server backend a case's echo handler runs on; the wire
// behaviour must not depend on it, except where a handshake case says so.
type backend uint8

const (
	backendHTTP            backend = iota // net/http (httptest.Server)
	backendEventLoop                      // eventloop.Server, event API handlers on a worker goroutine
	backendEventLoopInline                // eventloop.Server with HandlersOnLoop
)

func (b backend) String() string {
	switch b {
	case backendEventLoop:
		return "eventloop"
	case backendEventLoopInline:
		return "eventloop-on-loop"
	}
	return "net/http"
}

// startHandler serves h on 127.0.0.1 with backend b until the test ends and
// returns the server's host:port.
func startHandler(t *testing.T, b backend, h http.Handler) string {
	t.Helper()
	if b == backendHTTP {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	// One loop is enough for one connection, and keeps the suite's many
	// parallel servers from starting a loop per core each. The write queue
	// must hold the largest echo (16 MiB, 10.4_limits): this backend never
	// blocks a sender, and drops a connection whose queue would pass
	// MaxWriteQueue (4 MiB by default), even when the peer reads.
	srv := &eventloop.Server{Handler: h, Loops: 1, HandlersOnLoop: b == backendEventLoopInline, MaxWriteQueue: maxEcho + 1<<20}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("eventloop: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String()
}

// maxEcho is the largest message a case has the library echo.
const maxEcho = 16 << 20

// startEchoServer serves the echo handler on 127.0.0.1 with backend b and
// returns its host:port. Each handler run reports how its read loop ended
// on the returned channel.
func startEchoServer(t *testing.T, b backend, opts *websocket.ServerOptions, a api) (string, chan error) {
	t.Helper()
	res := make(chan error, 4)
	return startHandler(t, b, echoServerHandler(opts, a, res)), res
}

// echoServerHandler is the library's echo server written with API a; each
// run reports how its read loop ended on res.
func echoServerHandler(opts *websocket.ServerOptions, a api, res chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a == apiEvents {
			c := websocket.NewServer(w, r, opts)
			eventEcho(c, res)
			if err := c.Start(); err != nil {
				res <- fmt.Errorf("start: %w", err)
			}
			return
		}
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			res <- fmt.Errorf("accept: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if a == apiStream {
			res <- streamEcho(ctx, c)
		} else {
			res <- echoLoop(ctx, c)
		}
	})
}

// rawRequest is the tester's opening handshake as a client.
type rawRequest struct {
	method, path, proto string
	headers             [][2]string // in order, duplicates allowed
}

func defaultRequest(host, key string) rawRequest {
	return rawRequest{
		method: "GET", path: "/", proto: "HTTP/1.1",
		headers: [][2]string{
			{"Host", host},
			{"Upgrade", "websocket"},
			{"Connection", "Upgrade"},
			{"Sec-WebSocket-Key", key},
			{"Sec-WebSocket-Version", "13"},
		},
	}
}

func (r rawRequest) bytes() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, r.path, r.proto)
	for _, h := range r.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// with returns r with header name set to value (replacing any), or removed when
// value is "-".
func (r rawRequest) with(name, value string) rawRequest {
	var hs [][2]string
	done := false
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			if !done && value != "-" {
				hs = append(hs, [2]string{h[0], value})
			}
			done = true
			continue
		}
		hs = append(hs, h)
	}
	if !done && value != "-" {
		hs = append(hs, [2]string{name, value})
	}
	r.headers = hs
	return r
}

// roundTrip sends a raw handshake request and reads the response head.
func roundTrip(t *testing.T, addr string, req rawRequest) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	return roundTripBytes(t, addr, req.bytes())
}

// roundTripBytes sends raw bytes (a request, possibly followed by frames) and
// reads the response head.
func roundTripBytes(t *testing.T, addr string, req []byte) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(readTimeout))
	if _, err := conn.Write(req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	conn.SetDeadline(time.Time{})
	return resp, conn, br
}

// openServerConn performs a valid handshake against the echo server and returns
// the tester as a raw client.
func openServerConn(t *testing.T, addr, name string, deflate bool, nt takeoverSide) *rawPeer {
	t.Helper()
	p := newRawPeer(nil, nil, true, seedOf(name))
	key := newKey(p.rng)
	req := defaultRequest(addr, key)
	if deflate {
		req = req.with("Sec-WebSocket-Extensions", deflateOffer(nt))
	}
	resp, conn, br := roundTrip(t, addr, req)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		t.Fatalf("handshake: Sec-WebSocket-Accept %q, want %q", got, acceptKey(key))
	}
	p.conn, p.br = conn, br
	if deflate {
		setupDeflatePeer(t, p, resp.Header.Values("Sec-WebSocket-Extensions"), nt)
	}
	return p
}

// deflateOffer is the tester's permessage-deflate offer as a client.
func deflateOffer(nt takeoverSide) string {
	offer := "permessage-deflate"
	switch nt {
	case takeoverLibrary:
		offer += "; server_no_context_takeover"
	case takeoverTester:
		offer += "; client_no_context_takeover"
	}
	return offer
}

// setupDeflatePeer sets the tester up as a client from the library
// server's answer to deflateOffer.
func setupDeflatePeer(t *testing.T, p *rawPeer, exts []string, nt takeoverSide) {
	t.Helper()
	p.deflate, p.fresh = hasDeflate(exts, "client_no_context_takeover")
	if !p.deflate {
		t.Fatalf("permessage-deflate offered to a server with Compression set, response has Sec-WebSocket-Extensions %q", exts)
	}
	_, p.inflateFresh = hasDeflate(exts, "server_no_context_takeover")
	if nt == takeoverLibrary && !p.inflateFresh {
		t.Fatalf("offer with server_no_context_takeover accepted without it (RFC 7692 7.1.1.1): %q", exts)
	}
	if nt == takeoverTester {
		p.fresh = true
	}
}

// runServerCase runs c against the library's server side on net/http.
func runServerCase(t *testing.T, c tcase, a api) { runServerCaseOn(t, backendHTTP, c, a) }

// serverCasesOn returns runServerCase for backend b, in runSections' shape.
func serverCasesOn(b backend) func(*testing.T, tcase, api) {
	return func(t *testing.T, c tcase, a api) { runServerCaseOn(t, b, c, a) }
}

// runServerCaseOn runs c against the library's server side on backend b.
func runServerCaseOn(t *testing.T, b backend, c tcase, a api) {
	opts := &websocket.ServerOptions{MaxLength: c.maxLength, CloseTimeout: closeTimeout}
	if c.deflate {
		opts.Compression = deflateOptions()
	}
	addr, res := startEchoServer(t, b, opts, a)
	p := openServerConn(t, addr, t.Name(), c.deflate, c.noTakeover)
	runWire(t, p, c)
	p.conn.Close()
	checkLibResult(t, c, res, "server")
}

// closeTimeout is given to the library so that cases where the tester never
// answers a close stay short.
const closeTimeout = time.Second

// clientHandshake is how the raw test server answers the library's opening
// handshake; it returns the bytes to write (status line, headers, and anything
// that should follow in the same write).
type clientHandshake func(req *http.Request) string

func acceptingHandshake(extra string) clientHandshake {
	return func(req *http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
			extra + "\r\n"
	}
}

// clientRun is one run of the library's client against the raw test server.
type clientRun struct {
	peer *rawPeer      // nil when the handshake response was not a 101
	conn net.Conn      // the tester's end of TCP
	req  *http.Request // the library's handshake request
	res  chan error    // how Dial or the echo loop ended (a *dialError for Dial)
	ws   chan *websocket.Conn
}

// startClient listens on 127.0.0.1, starts websocket.Dial plus the echo loop in
// a goroutine, and answers the handshake with hs.
func startClient(t *testing.T, opts *websocket.ClientOptions, hs clientHandshake, name string, a api) *clientRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	run := &clientRun{res: make(chan error, 2), ws: make(chan *websocket.Conn, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	url := "ws://" + ln.Addr().String() + "/chat"
	go func() {
		if a == apiEvents {
			c := websocket.NewClient(url, opts)
			eventEcho(c, run.res)
			if err := c.StartContext(ctx); err != nil {
				run.res <- &dialError{err}
				return
			}
			run.ws <- c
			return
		}
		c, _, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			run.res <- &dialError{err}
			return
		}
		run.ws <- c
		if a == apiStream {
			run.res <- streamEcho(ctx, c)
		} else {
			run.res <- echoLoop(ctx, c)
		}
	}()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(readTimeout))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("library client did not connect: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	run.conn = conn
	conn.SetDeadline(time.Now().Add(readTimeout))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("reading the client's handshake: %v", err)
	}
	run.req = req
	resp := hs(req)
	if _, err := conn.Write([]byte(resp)); err != nil {
		t.Fatalf("writing handshake response: %v", err)
	}
	conn.SetDeadline(time.Time{})
	if strings.HasPrefix(resp, "HTTP/1.1 101") {
		run.peer = newRawPeer(conn, br, false, seedOf(name))
	}
	return run
}

// result waits for the library's client goroutine to finish.
func (r *clientRun) result(t *testing.T, wait time.Duration) error {
	t.Helper()
	select {
	case err := <-r.res:
		return err
	case <-time.After(wait):
		t.Fatalf("library client still running after %v", wait)
		return nil
	}
}

// dialError marks a failure of websocket.Dial itself, as opposed to the read loop.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// runClientCase runs c against the library's client side.
func runClientCase(t *testing.T, c tcase, a api) {
	opts := &websocket.ClientOptions{MaxLength: c.maxLength, CloseTimeout: closeTimeout}
	hs := acceptingHandshake("")
	var deflateOK, fresh bool
	if c.deflate {
		opts.Compression = deflateOptions()
		hs = func(r *http.Request) string {
			var ext string
			ext, deflateOK, fresh = deflateResponse(r)
			if !deflateOK {
				return acceptingHandshake("")(r)
			}
			switch c.noTakeover {
			case takeoverLibrary:
				ext += "; client_no_context_takeover"
			case takeoverTester:
				if !fresh {
					ext += "; server_no_context_takeover"
				}
				fresh = true
			}
			return acceptingHandshake("Sec-WebSocket-Extensions: " + ext + "\r\n")(r)
		}
	}
	run := startClient(t, opts, hs, t.Name(), a)
	if run.peer == nil {
		t.Fatal("handshake failed")
	}
	if c.deflate {
		if !deflateOK {
			t.Fatalf("client with Compression set made no usable permessage-deflate offer: %q", run.req.Header.Values("Sec-WebSocket-Extensions"))
		}
		run.peer.deflate, run.peer.fresh = true, fresh
		run.peer.inflateFresh = c.noTakeover == takeoverLibrary
	}
	runWire(t, run.peer, c)
	run.conn.Close()
	err := run.result(t, c.wait()+5*time.Second)
	var de *dialError
	if errors.As(err, &de) {
		t.Fatalf("client: %v", err)
	}
	checkLibErr(t, c, err, "client")
}

func runSections(t *testing.T, secs []section, s side, a api, run func(*testing.T, tcase, api)) {
	for _, sec := range secs {
		t.Run(sec.name, func(t *testing.T) {
			for _, c := range sec.cases {
				if c.side != both && c.side != s {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					run(t, c, a)
				})
			}
		})
	}
}
