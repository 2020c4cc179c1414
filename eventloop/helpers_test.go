package eventloop_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// waitTimeout bounds every wait of these tests for something that must
// happen: generous, since the machine may be busy; a test that passes
// never waits for it.
const waitTimeout = 20 * time.Second

// backend is a server serving a handler: the event-loop backend or
// net/http, so that a test runs the same handler on both.
type backend struct {
	name string
	addr string // host:port
}

// backendConfig holds the settings that both backends have.
type backendConfig struct {
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
}

// bothBackends serves h on a net/http server and on an event-loop server
// (with handlers on a worker goroutine and on the loop), all closed when
// the test ends.
func bothBackends(t *testing.T, h http.Handler, cfg backendConfig) []backend {
	t.Helper()
	hs := httptest.NewUnstartedServer(h)
	hs.Config.ReadHeaderTimeout = cfg.ReadHeaderTimeout
	hs.Config.MaxHeaderBytes = cfg.MaxHeaderBytes
	hs.Start()
	t.Cleanup(hs.Close)
	out := []backend{{"net/http", hs.Listener.Addr().String()}}
	for _, inline := range []bool{false, true} {
		s := &eventloop.Server{Handler: h, HandlersOnLoop: inline, ReadHeaderTimeout: cfg.ReadHeaderTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes, Loops: 1}
		start(t, s)
		out = append(out, backend{fmt.Sprintf("eventloop/inline=%v", inline), s.Addr().String()})
	}
	return out
}

// wsURL returns the ws:// URL of the server at addr.
func wsURL(addr string) string { return "ws://" + addr }

// testCtx returns a context that ends with the test or after waitTimeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a library client to the server at addr.
func dial(t *testing.T, addr string, opts *websocket.ClientOptions) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(testCtx(t), wsURL(addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// newKey returns a fresh Sec-WebSocket-Key.
func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// upgradeRequest returns a valid handshake request for path on addr,
// with extra header lines (each ending in CRLF).
func upgradeRequest(addr, path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + newKey() + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawConn is a TCP connection to a server, for speaking HTTP or
// WebSocket frames byte by byte.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitTimeout))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// roundTrip sends a raw request and reads the response with its body.
func (c *rawConn) roundTrip(req string) (*http.Response, string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, req); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, ""
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(body)
}

// upgrade does the opening handshake for path and fails the test unless
// it succeeds.
func (c *rawConn) upgrade(path string) {
	c.t.Helper()
	resp, body := c.roundTrip(upgradeRequest(c.nc.RemoteAddr().String(), path, ""))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("handshake: %s %q", resp.Status, body)
	}
}

// frame is a WebSocket frame as read by rawConn.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// writeFrame sends one masked frame with the given first byte (FIN, RSV
// and opcode).
func (c *rawConn) writeFrame(b0 byte, payload []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(encodeFrame(b0, payload)); err != nil {
		c.t.Fatal(err)
	}
}

func encodeFrame(b0 byte, payload []byte) []byte {
	b := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		b[1] = 0x80 | byte(n)
	case n < 1<<16:
		b[1] = 0x80 | 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 0x80 | 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, x := range payload {
		b = append(b, x^mask[i%4])
	}
	return b
}

// readFrame reads one unmasked frame from the server.
func (c *rawConn) readFrame() (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return frame{}, err
	}
	if h[1]&0x80 != 0 {
		return frame{}, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<24 {
		return frame{}, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return frame{}, err
	}
	return frame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: p}, nil
}

// readClose reads frames until a close frame and returns its code (1005
// for an empty one); it fails the test if the stream ends before one (a
// reset that lost it, or no close frame sent).
func (c *rawConn) readClose() (websocket.StatusCode, string) {
	c.t.Helper()
	for {
		f, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("no close frame: %v", err)
		}
		if f.op != 8 {
			continue
		}
		if len(f.payload) < 2 {
			return websocket.StatusNoStatusReceived, ""
		}
		return websocket.StatusCode(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
	}
}

// expectEOF waits for the server to end the TCP stream cleanly (a FIN,
// not a reset), skipping any bytes before it, then closes our side as a
// client does (the server waits for that, up to its CloseTimeout).
func (c *rawConn) expectEOF() {
	c.t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	if err != nil {
		c.t.Fatalf("the stream did not end cleanly: %v", err)
	}
	c.nc.Close()
}

// closeEvent is what an OnClose handler got.
type closeEvent struct {
	code   websocket.StatusCode
	reason string
}

// closeRecorder counts OnClose calls of a connection and reports the
// first.
type closeRecorder struct {
	ch    chan closeEvent
	calls chan struct{}
}

func newCloseRecorder() *closeRecorder {
	return &closeRecorder{ch: make(chan closeEvent, 1), calls: make(chan struct{}, 16)}
}

func (r *closeRecorder) onClose(code websocket.StatusCode, reason string) {
	r.calls <- struct{}{}
	select {
	case r.ch <- closeEvent{code, reason}:
	default:
	}
}

// wait returns the first OnClose's arguments.
func (r *closeRecorder) wait(t *testing.T) closeEvent {
	t.Helper()
	select {
	case ev := <-r.ch:
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("OnClose did not run")
		return closeEvent{}
	}
}

// once fails the test if OnClose ran more than once; call it after the
// server has finished with the connection.
func (r *closeRecorder) once(t *testing.T) {
	t.Helper()
	if n := len(r.calls); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
}

// contains reports whether s contains every one of subs.
func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// discardLogger drops what it is given: for the tests that make a
// handler panic on purpose.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
