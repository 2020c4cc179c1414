package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// These cases follow the shape of sections 12 and 13 of the Autobahn
// TestSuite: a raw peer that builds every frame itself negotiates one of
// several parameter sets, sends messages of 16 B to 128 KiB compressed
// with its own compressor, whole or with the compressed payload cut into
// frames of a fixed size, and checks each echo by inflating it under the
// agreed parameters. The server side is driven through the echo handler,
// the client side through a client echoing what a raw server sends, as
// wscat -echo does.

// conformanceOffer is one negotiation: what the raw client offers and the
// parameters the server must agree to.
type conformanceOffer struct {
	name  string
	offer string
	want  deflateParams
}

// Offers in the spirit of Autobahn 13.1 to 13.7: takeover or not, window
// limits of 8 and 15, and a list of offers of which the first is taken.
var conformanceOffers = []conformanceOffer{
	{"13.1 default", "permessage-deflate", deflateParams{}},
	{"13.2 client no takeover", "permessage-deflate; client_no_context_takeover", deflateParams{clientNoContextTakeover: true}},
	{"13.3 server bits 8", "permessage-deflate; server_max_window_bits=8", deflateParams{serverMaxWindowBits: 8}},
	{"13.4 server bits 15", "permessage-deflate; server_max_window_bits=15", deflateParams{serverMaxWindowBits: 15}},
	{"13.5 no takeover, bits 8", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8",
		deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8}},
	{"13.6 no takeover, bits 15", "permessage-deflate; server_no_context_takeover; server_max_window_bits=15; client_max_window_bits",
		deflateParams{serverNoContextTakeover: true, serverMaxWindowBits: 15}},
	{"13.7 several offers", "permessage-deflate; server_no_context_takeover; server_max_window_bits=8, permessage-deflate; server_no_context_takeover, permessage-deflate",
		deflateParams{serverNoContextTakeover: true, serverMaxWindowBits: 8}},
}

var conformanceSizes = []int{16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}

// conformancePayload is text (JSON-like, compressible) or binary
// (pseudo-random bytes over a small alphabet, partly compressible).
func conformancePayload(n int, binary bool, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	if binary {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(40))
		}
		return b
	}
	var s strings.Builder
	for s.Len() < n {
		fmt.Fprintf(&s, `{"id":%d,"name":"item-%d","tags":["a","b%d"],"price":%d.%02d},`, r.IntN(1e6), r.IntN(100), r.IntN(10), r.IntN(1000), r.IntN(100))
	}
	return []byte(s.String()[:n])
}

// rawFrameIO reads and writes frames on a raw connection for one side.
type rawFrameIO struct {
	nc     net.Conn
	br     *bufio.Reader
	client bool // frames we write are masked
}

// writeMessage sends payload as one message, compressed ones with RSV1 on
// the first frame, cut into frames of fragment bytes (0: one frame).
func (r *rawFrameIO) writeMessage(t *testing.T, op opcode, payload []byte, compressed bool, fragment int) {
	t.Helper()
	var out []byte
	first := true
	for {
		k := len(payload)
		if fragment > 0 && k > fragment {
			k = fragment
		}
		var rsv uint8
		if first && compressed {
			rsv = rsv1
		}
		fop := op
		if !first {
			fop = opContinuation
		}
		out = appendFrame(out, k == len(payload), rsv, fop, payload[:k], r.client)
		payload = payload[k:]
		first = false
		if len(payload) == 0 {
			break
		}
	}
	if _, err := r.nc.Write(out); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

// readMessage reads one data message, skipping pings and pongs, and returns
// its opcode, whether RSV1 was set and its payload; a close frame is
// returned as a message with opClose.
func (r *rawFrameIO) readMessage(t *testing.T) (opcode, bool, []byte) {
	t.Helper()
	var op opcode
	var compressed, started bool
	var msg []byte
	for {
		var hdr [maxHeaderSize]byte
		if _, err := io.ReadFull(r.br, hdr[:2]); err != nil {
			t.Fatalf("raw read: %v", err)
		}
		n := 2
		switch hdr[1] & 0x7f {
		case 126:
			n += 2
		case 127:
			n += 8
		}
		if hdr[1]&0x80 != 0 {
			n += 4
		}
		if _, err := io.ReadFull(r.br, hdr[2:n]); err != nil {
			t.Fatalf("raw read: %v", err)
		}
		h, _, err := parseFrameHeader(hdr[:n])
		if err != nil {
			t.Fatal(err)
		}
		if h.masked != !r.client {
			t.Fatalf("frame masked=%v from the %s", h.masked, map[bool]string{true: "server", false: "client"}[r.client])
		}
		p := make([]byte, h.length)
		if _, err := io.ReadFull(r.br, p); err != nil {
			t.Fatalf("raw read: %v", err)
		}
		if h.masked {
			maskBytes(h.maskKey, 0, p)
		}
		switch {
		case h.opcode == opClose:
			return opClose, false, p
		case h.opcode.isControl():
			if h.rsv != 0 {
				t.Fatal("RSV1 on a control frame")
			}
			continue
		case !started:
			op, compressed, started = h.opcode, h.rsv&rsv1 != 0, true
		case h.rsv != 0:
			t.Fatal("RSV1 on a continuation frame")
		}
		msg = append(msg, p...)
		if h.fin {
			return op, compressed, msg
		}
	}
}

// conformanceRun sends every size, whole and fragmented, text and binary,
// through the peer's echo, compressing with ours and inflating the echo
// with theirs.
func conformanceRun(t *testing.T, rw *rawFrameIO, comp *messageCompressor, decomp *messageDecompressor, peerBits int) {
	t.Helper()
	for _, fragment := range []int{0, 1000} {
		for _, n := range conformanceSizes {
			if fragment > 0 && n > 32768 {
				continue // a thousand frames add time, not coverage
			}
			for _, binary := range []bool{false, true} {
				payload := conformancePayload(n, binary, uint64(fragment))
				op := opText
				if binary {
					op = opBinary
				}
				wire, err := comp.compress(nil, payload)
				if err != nil {
					t.Fatal(err)
				}
				rw.writeMessage(t, op, wire, true, fragment)
				gotOp, compressed, echo := rw.readMessage(t)
				if gotOp == opClose {
					code, reason, _ := parseClosePayload(echo)
					t.Fatalf("%d bytes: peer closed: %v %q", n, code, reason)
				}
				if gotOp != op {
					t.Fatalf("%d bytes: echo opcode %v, want %v", n, gotOp, op)
				}
				got := echo
				if compressed {
					// The distance decoder is slow; the window rule is
					// the same for larger messages.
					if peerBits > 0 && peerBits < 15 && len(echo) > 0 && n <= 16384 {
						if d := deflateTestMaxDistance(t, echo); d > 1<<peerBits {
							t.Fatalf("%d bytes: echo uses distance %d, window bits %d", n, d, peerBits)
						}
					}
					if got, err = decomp.decompress(nil, echo, -1); err != nil {
						t.Fatalf("%d bytes (fragment %d): echo does not inflate: %v", n, fragment, err)
					}
				} else if n >= compressDefaultThreshold {
					t.Fatalf("%d bytes: echo not compressed", n)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("%d bytes (fragment %d, binary %v): echo differs", n, fragment, binary)
				}
			}
		}
	}
}

// TestDeflateConformanceServer drives the library's server.
func TestDeflateConformanceServer(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{Compression: &CompressionOptions{}}))
	for _, o := range conformanceOffers {
		t.Run(o.name, func(t *testing.T) {
			nc, ext := rawDeflateClient(t, url, o.offer)
			exts, err := extParseHeader([]string{ext})
			if err != nil || len(exts) != 1 {
				t.Fatalf("response %q: %v", ext, err)
			}
			params, err := deflateParseParams(exts[0].params, false)
			if err != nil || params != o.want {
				t.Fatalf("agreed %q (%+v, %v), want %q", ext, params, err, o.want.format())
			}
			// Our raw client compresses as the offer allows: without
			// takeover when it said client_no_context_takeover.
			takeover := !strings.Contains(o.offer, "client_no_context_takeover") && !params.clientNoContextTakeover
			comp := deflateNewCompressor(1, 0, takeover, params.clientMaxWindowBits)
			rw := &rawFrameIO{nc: nc, br: bufio.NewReader(nc), client: true}
			conformanceRun(t, rw, comp, deflateNewDecompressor(params.peerTakeover(false)), params.serverMaxWindowBits)
			rw.writeMessage(t, opClose, appendClosePayload(nil, StatusNormalClosure, ""), false, 0)
		})
	}
}

// conformanceResponses are what a raw server answers to our client's
// default offer ("permessage-deflate; client_max_window_bits").
var conformanceResponses = []conformanceOffer{
	{"default", "permessage-deflate", deflateParams{}},
	{"server no takeover", "permessage-deflate; server_no_context_takeover", deflateParams{serverNoContextTakeover: true}},
	{"client no takeover", "permessage-deflate; client_no_context_takeover", deflateParams{clientNoContextTakeover: true}},
	{"client bits 8", "permessage-deflate; client_max_window_bits=8", deflateParams{clientMaxWindowBits: 8}},
	{"client bits 15", "permessage-deflate; client_max_window_bits=15", deflateParams{clientMaxWindowBits: 15}},
	{"server bits 9", "permessage-deflate; server_max_window_bits=9", deflateParams{serverMaxWindowBits: 9}},
	{"everything", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=8",
		deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 8}},
}

// TestDeflateConformanceClient drives the library's client, echoing with
// the blocking API, against a raw server.
func TestDeflateConformanceClient(t *testing.T) {
	for _, o := range conformanceResponses {
		t.Run(o.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				c, _, err := Dial(testContext(t), "ws://"+ln.Addr().String()+"/", &ClientOptions{Compression: &CompressionOptions{}})
				if err != nil {
					done <- err
					return
				}
				defer c.CloseNow()
				if c.pmd == nil || c.pmd.params != o.want {
					done <- fmt.Errorf("client agreed to %+v, want %+v", c.pmd, o.want)
					return
				}
				var buf []byte
				for {
					typ, msg, err := c.ReadMessage(context.Background(), buf)
					if err != nil {
						if CloseStatus(err) == StatusNormalClosure {
							err = nil
						}
						done <- err
						return
					}
					buf = msg
					if err := c.Write(context.Background(), typ, msg); err != nil {
						done <- err
						return
					}
				}
			}()
			nc, br, req := acceptRawRequest(t, ln, 20*time.Second)
			defer nc.Close()
			if got := req.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate; client_max_window_bits" {
				t.Fatalf("offer %q", got)
			}
			io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
				acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\nSec-WebSocket-Extensions: "+o.offer+"\r\n\r\n")
			p := o.want
			comp := deflateNewCompressor(1, 0, !p.serverNoContextTakeover, p.serverMaxWindowBits)
			rw := &rawFrameIO{nc: nc, br: br, client: false}
			conformanceRun(t, rw, comp, deflateNewDecompressor(p.peerTakeover(true)), p.clientMaxWindowBits)
			rw.writeMessage(t, opClose, appendClosePayload(nil, StatusNormalClosure, ""), false, 0)
			if op, _, _ := rw.readMessage(t); op != opClose {
				t.Fatalf("client answered the close with %v", op)
			}
			nc.Close() // the server closes TCP first
			if err := wait(t, done, "client"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDeflateConformanceClientErrors checks how the client fails a server
// that sends what it must not.
func TestDeflateConformanceClientErrors(t *testing.T) {
	hello := compressMessageOnce(1, []byte("hello"))
	cases := []struct {
		name   string
		ext    string
		frames [][]byte
		want   StatusCode
	}{
		{"corrupt deflate", "permessage-deflate", [][]byte{appendFrame(nil, true, rsv1, opBinary, []byte{0xff, 0xff, 0xff}, false)}, StatusInvalidFramePayloadData},
		{"compressed invalid UTF-8", "permessage-deflate", [][]byte{appendFrame(nil, true, rsv1, opText, compressMessageOnce(1, []byte("bad \xc0\xaf")), false)}, StatusInvalidFramePayloadData},
		{"bomb", "permessage-deflate", [][]byte{appendFrame(nil, true, rsv1, opBinary, deflateBomb(8<<20), false)}, StatusMessageTooBig},
		{"RSV1 on continuation", "permessage-deflate", [][]byte{appendFrame(nil, false, rsv1, opText, hello[:3], false), appendFrame(nil, true, rsv1, opContinuation, hello[3:], false)}, StatusProtocolError},
		{"RSV1 on pong", "permessage-deflate", [][]byte{appendFrame(nil, true, rsv1, opPong, nil, false)}, StatusProtocolError},
		{"RSV1 not negotiated", "", [][]byte{appendFrame(nil, true, rsv1, opText, hello, false)}, StatusProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				c, _, err := Dial(testContext(t), "ws://"+ln.Addr().String()+"/", &ClientOptions{Compression: &CompressionOptions{}, MaxLength: 1 << 20, CloseTimeout: time.Second})
				if err != nil {
					done <- err
					return
				}
				defer c.CloseNow()
				_, _, err = c.Read(context.Background())
				done <- err
			}()
			nc, br, req := acceptRawRequest(t, ln, 10*time.Second)
			defer nc.Close()
			resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
			if tc.ext != "" {
				resp += "Sec-WebSocket-Extensions: " + tc.ext + "\r\n"
			}
			io.WriteString(nc, resp+"\r\n")
			for _, f := range tc.frames {
				nc.Write(f)
			}
			// The client's close frame, masked.
			d := &decoder{expectMasked: true}
			code := StatusCode(0)
			buf := make([]byte, 4096)
			for code == 0 {
				n, err := br.Read(buf)
				if err != nil {
					t.Fatalf("no close frame from the client: %v", err)
				}
				for b := buf[:n]; len(b) > 0 && code == 0; {
					k, ev, err := d.parse(b)
					if err != nil {
						t.Fatal(err)
					}
					b = b[k:]
					if ev.kind == eventClose {
						code = ev.code
					}
				}
			}
			if code != tc.want {
				t.Fatalf("client closed with %v, want %v", code, tc.want)
			}
			nc.Close()
			var pe *ProtocolError
			if err := wait(t, done, "client"); !errors.As(err, &pe) || pe.Code != tc.want {
				t.Fatalf("client error %v", err)
			}
		})
	}
}

// acceptRawRequest accepts one connection on ln, bounds it by timeout and
// reads the client's handshake request, for tests that answer it by hand.
func acceptRawRequest(t *testing.T, ln net.Listener, timeout time.Duration) (net.Conn, *bufio.Reader, *http.Request) {
	t.Helper()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	return nc, br, req
}
