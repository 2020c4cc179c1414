package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecoder feeds arbitrary bytes to the protocol core, whole and in
// pieces. It must never panic, must report the same thing however the
// input is split, and must never deliver a message over the limit or a
// text message that is not UTF-8.
func FuzzDecoder(f *testing.F) {
	f.Add(clientFrame(true, 0, opText, []byte("hello")), uint8(3), true)
	f.Add(cat(clientFrame(false, 0, opText, []byte{0xe2}), clientFrame(true, 0, opPing, nil), clientFrame(true, 0, opContinuation, []byte{0x82, 0xac})), uint8(1), true)
	f.Add(appendFrame(nil, true, 0, opBinary, make([]byte, 300), false), uint8(7), false)
	f.Add(clientFrame(true, 0, opClose, []byte{0x03, 0xe8, 'o', 'k'}), uint8(2), true)
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint8(1), true)
	f.Fuzz(func(t *testing.T, in []byte, step uint8, server bool) {
		const limit = 1000
		whole := decodeAll(&decoder{expectMasked: server, maxLength: limit}, in, 0)
		split := decodeAll(&decoder{expectMasked: server, maxLength: limit}, in, int(step%16)+1)
		if fmt.Sprint(whole.events) != fmt.Sprint(split.events) || (whole.err == nil) != (split.err == nil) {
			t.Fatalf("split by %d changed the result:\nwhole %v %v\nsplit %v %v", step%16+1, whole.events, whole.err, split.events, split.err)
		}
		if whole.err != nil {
			var pe *ProtocolError
			if !errors.As(whole.err, &pe) || !pe.Code.validOnWire() {
				t.Fatalf("error %v is not a ProtocolError with a sendable code", whole.err)
			}
		}
		// Check the messages themselves with a decoder that keeps them.
		d := &decoder{expectMasked: server, maxLength: limit}
		var msg []byte
		for b := bytes.Clone(in); len(b) > 0; {
			n, ev, err := d.parse(b)
			if err != nil {
				break
			}
			b = b[n:]
			if ev.kind == eventData {
				msg = append(msg, ev.data...)
				if len(msg) > limit {
					t.Fatalf("message of %d bytes passed a limit of %d", len(msg), limit)
				}
				if ev.fin {
					if ev.typ == TextMessage && !utf8.Valid(msg) {
						t.Fatalf("invalid UTF-8 text delivered: %q", msg)
					}
					msg = msg[:0]
				}
			}
		}
	})
}

// FuzzClosePayload: a close body is either refused with a protocol error or
// decodes to a sendable code and a UTF-8 reason that encode back to it.
func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03, 0xe8, 'b', 'y', 'e'})
	f.Add([]byte{0x03, 0xed})
	f.Add([]byte{0x0f, 0xa0, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := parseClosePayload(p)
		if err != nil {
			return
		}
		if len(p) == 0 {
			if code != StatusNoStatusReceived {
				t.Fatalf("empty body gave %v", code)
			}
			return
		}
		if !code.validOnWire() || !utf8.ValidString(reason) {
			t.Fatalf("accepted %v %q", code, reason)
		}
		if got := appendClosePayload(nil, code, reason); !bytes.Equal(got, p) {
			t.Fatalf("round trip %x -> %x", p, got)
		}
	})
}

// hijackRecorder is an http.ResponseWriter that can be hijacked, for
// driving the server handshake without a network.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	conn *fakeConn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// fakeConn is a net.Conn that reads from a fixed input and records writes.
type fakeConn struct {
	in      io.Reader
	out     bytes.Buffer
	onWrite func(*fakeConn)
}

func (c *fakeConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) {
	n, err := c.out.Write(p)
	if c.onWrite != nil {
		c.onWrite(c)
	}
	return n, err
}
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzAcceptHandshake parses arbitrary bytes as a handshake request. The
// server either switches protocols for a request that follows RFC 6455
// §4.2.1, or refuses with a 4xx status and a reason.
func FuzzAcceptHandshake(f *testing.F) {
	f.Add("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://server.example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n\r\n")
	f.Add("POST / HTTP/1.0\r\nHost: a\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		rec := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), conn: &fakeConn{in: strings.NewReader("")}}
		c, err := Accept(rec, req, &ServerOptions{Protocols: []string{"chat"}})
		if err != nil {
			var he *HandshakeError
			if !errors.As(err, &he) || he.StatusCode < 400 || he.StatusCode > 499 || rec.Code != he.StatusCode || rec.Body.Len() == 0 {
				t.Fatalf("refusal %v with recorded status %d body %q", err, rec.Code, rec.Body)
			}
			return
		}
		defer c.CloseNow()
		resp := rec.conn.out.String()
		if req.Method != "GET" || req.Header.Get("Sec-WebSocket-Version") != "13" || !validHandshakeKey(req.Header.Get("Sec-WebSocket-Key")) {
			t.Fatalf("accepted a bad request: %q", raw)
		}
		if !strings.HasPrefix(resp, "HTTP/1.1 101 ") || !strings.Contains(resp, acceptKey(req.Header.Get("Sec-WebSocket-Key"))) {
			t.Fatalf("bad 101 response %q", resp)
		}
	})
}

// FuzzDialHandshake gives the client arbitrary bytes as the server's
// answer ("{ACCEPT}" in them is replaced by the right accept key). The
// client either opens, having checked RFC 6455 §4.1's rules, or fails with
// an error; it never panics.
func FuzzDialHandshake(f *testing.F) {
	f.Add("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n")
	f.Add("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x02hi")
	f.Add("HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\ngo away")
	f.Add("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
	f.Fuzz(func(t *testing.T, answer string) {
		pr, pw := io.Pipe()
		nc := &fakeConn{in: pr}
		nc.onWrite = func(fc *fakeConn) {
			nc.onWrite = nil
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(fc.out.Bytes())))
			if err != nil {
				t.Errorf("the client's own request does not parse: %v", err)
				pw.Close()
				return
			}
			out := strings.ReplaceAll(answer, "{ACCEPT}", acceptKey(req.Header.Get("Sec-WebSocket-Key")))
			go func() { io.WriteString(pw, out); pw.Close() }()
		}
		opts := &ClientOptions{Protocols: []string{"chat"}}
		c := NewClient("ws://example.com/", opts)
		u, _ := url.Parse("ws://example.com/")
		resp, _, err := c.handshake(nc, u, opts)
		if err != nil {
			return
		}
		if resp.StatusCode != 101 || !headerHasToken(resp.Header, "Upgrade", "websocket") || (c.Protocol() != "" && c.Protocol() != "chat") {
			t.Fatalf("accepted %q", answer)
		}
	})
}
