package websocket

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// deflateSniff records what goes through a client's TCP connection, so that
// tests can check the frames on the wire: RSV1, payloads, window distances.
type deflateSniff struct {
	net.Conn
	mu      sync.Mutex
	in, out bytes.Buffer // bytes read (from the server), written (to it)
}

func (s *deflateSniff) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	s.mu.Lock()
	s.in.Write(p[:n])
	s.mu.Unlock()
	return n, err
}

func (s *deflateSniff) Write(p []byte) (int, error) {
	n, err := s.Conn.Write(p)
	s.mu.Lock()
	s.out.Write(p[:n])
	s.mu.Unlock()
	return n, err
}

// CloseWrite passes the half-close on, which the closing handshake uses
// to tell the peer it may close TCP.
func (s *deflateSniff) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// received and sent return the recorded streams without the handshake.
func (s *deflateSniff) received(t *testing.T) []byte { return s.stream(t, &s.in) }
func (s *deflateSniff) sent(t *testing.T) []byte     { return s.stream(t, &s.out) }

func (s *deflateSniff) stream(t *testing.T, b *bytes.Buffer) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := bytes.Index(b.Bytes(), []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no handshake recorded")
	}
	return append([]byte(nil), b.Bytes()[i+4:]...)
}

// sniffDialer returns ClientOptions.NetDialContext recording into *sniff.
func sniffDialer(sniff **deflateSniff) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		*sniff = &deflateSniff{Conn: nc}
		return *sniff, nil
	}
}

type wireFrame struct {
	fin     bool
	rsv     uint8
	op      opcode
	payload []byte
}

// wireMessage is a data message as it was on the wire.
type wireMessage struct {
	compressed bool   // RSV1 on the first frame
	payload    []byte // the frames' payloads, unmasked, concatenated
	frames     []wireFrame
}

// wireParse splits a recorded stream into frames, unmasking payloads, and
// groups data frames into messages. It fails the test on any frame with
// RSV2/RSV3, RSV1 on a control or continuation frame.
func wireParse(t *testing.T, b []byte) []wireMessage {
	t.Helper()
	var msgs []wireMessage
	var cur *wireMessage
	for len(b) > 0 {
		h, n, err := parseFrameHeader(b)
		if err != nil {
			t.Fatalf("wire: %v", err)
		}
		if n == 0 || int64(len(b)-n) < h.length {
			break // cut off when the connection ended
		}
		p := append([]byte(nil), b[n:n+int(h.length)]...)
		b = b[n+int(h.length):]
		if h.masked {
			maskBytes(h.maskKey, 0, p)
		}
		f := wireFrame{fin: h.fin, rsv: h.rsv, op: h.opcode, payload: p}
		if h.rsv&(rsv2|rsv3) != 0 {
			t.Fatalf("wire: frame %v with rsv %#x", h.opcode, h.rsv)
		}
		if h.opcode.isControl() {
			if h.rsv != 0 {
				t.Fatalf("wire: control frame %v has RSV1 set", h.opcode)
			}
			continue
		}
		if h.opcode == opContinuation {
			if cur == nil {
				t.Fatal("wire: continuation without a message")
			}
			if h.rsv != 0 {
				t.Fatal("wire: RSV1 on a continuation frame")
			}
		} else {
			msgs = append(msgs, wireMessage{compressed: h.rsv&rsv1 != 0})
			cur = &msgs[len(msgs)-1]
		}
		cur.payload = append(cur.payload, p...)
		cur.frames = append(cur.frames, f)
		if h.fin {
			cur = nil
		}
	}
	return msgs
}

// direction describes what one sending direction must look like on the
// wire under the agreed parameters.
type direction struct {
	threshold  int  // messages at least this long are compressed
	noTakeover bool // every message must inflate on its own
	bits       int  // 8..14: no back-reference may reach further than 2^bits
}

// checkDirection verifies that the recorded messages are the sent ones,
// compressed exactly when the threshold says, and within the agreed
// parameters.
func checkDirection(t *testing.T, what string, got []wireMessage, want [][]byte, dir direction) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: %d messages on the wire, want %d", what, len(got), len(want))
	}
	stream := deflateNewDecompressor(true)
	for i, w := range want {
		g := got[i]
		if g.compressed != (len(w) >= dir.threshold) {
			t.Fatalf("%s: message %d (%d bytes) compressed=%v, threshold %d", what, i, len(w), g.compressed, dir.threshold)
		}
		if !g.compressed {
			if !bytes.Equal(g.payload, w) {
				t.Fatalf("%s: uncompressed message %d differs", what, i)
			}
			continue
		}
		out, err := stream.decompress(nil, g.payload, -1)
		if err != nil || !bytes.Equal(out, w) {
			t.Fatalf("%s: message %d inflates to %d bytes (%v), want %d", what, i, len(out), err, len(w))
		}
		if dir.noTakeover {
			alone, err := deflateNewDecompressor(false).decompress(nil, g.payload, -1)
			if err != nil || !bytes.Equal(alone, w) {
				t.Fatalf("%s: message %d does not inflate on its own under no context takeover: %v", what, i, err)
			}
		}
		if dir.bits > 0 && dir.bits < 15 && len(g.payload) > 0 {
			if d := deflateTestMaxDistance(t, g.payload); d > 1<<dir.bits {
				t.Fatalf("%s: message %d uses distance %d, window bits %d", what, i, d, dir.bits)
			}
		}
	}
}

// deflateMessages is a mix that exercises the threshold, fragment and
// window boundaries: empty, tiny, JSON-like, repetitive text longer than
// the largest window, and incompressible bytes.
func deflateMessages() [][]byte { return deflateMessagesSized(70000, 20000) }

// deflateMessagesSized is deflateMessages with the long text and the random
// bytes of the given lengths; the text must exceed 5000 bytes.
func deflateMessagesSized(textLen, randomLen int) [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, randomLen)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	var text strings.Builder
	for i := 0; text.Len() < textLen; i++ {
		fmt.Fprintf(&text, "line %d of a long text that repeats itself with small changes %d\n", i, i%13)
	}
	json := []byte(`{"id":1,"type":"chat","user":"ada","room":"lobby","text":"hello, compressed world","ts":1732170000}`)
	json2 := bytes.Repeat(json, 4)
	return [][]byte{{}, []byte("a"), json, json2, json2, []byte(text.String()[:textLen]), random, []byte(text.String()[:5000])}
}

// compressionCase is one pair of options for a round trip over HTTP.
type compressionCase struct {
	name     string
	server   *CompressionOptions
	client   *CompressionOptions
	wantExt  string // the Sec-WebSocket-Extensions response, "" for none
	override func(*testing.T, *Conn, *direction, *direction)
}

func compressionCases() []compressionCase {
	cases := []compressionCase{
		{name: "defaults", server: &CompressionOptions{}, client: &CompressionOptions{}, wantExt: "permessage-deflate"},
		{name: "server-off", server: nil, client: &CompressionOptions{}},
		{name: "client-off", server: &CompressionOptions{}, client: nil},
		{name: "no-takeover-both", server: &CompressionOptions{NoContextTakeover: true}, client: &CompressionOptions{NoContextTakeover: true},
			wantExt: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{name: "no-takeover-server-opt", server: &CompressionOptions{NoContextTakeover: true}, client: &CompressionOptions{},
			wantExt: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{name: "no-takeover-client-opt", server: &CompressionOptions{}, client: &CompressionOptions{NoContextTakeover: true},
			wantExt: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{name: "level-huffman", server: &CompressionOptions{Level: flate.HuffmanOnly}, client: &CompressionOptions{Level: flate.HuffmanOnly}, wantExt: "permessage-deflate"},
		{name: "level-6", server: &CompressionOptions{Level: 6}, client: &CompressionOptions{Level: flate.DefaultCompression}, wantExt: "permessage-deflate"},
		{name: "level-9", server: &CompressionOptions{Level: 9}, client: &CompressionOptions{Level: 9}, wantExt: "permessage-deflate"},
		{name: "threshold-all", server: &CompressionOptions{Threshold: -1}, client: &CompressionOptions{Threshold: -1}, wantExt: "permessage-deflate"},
		{name: "threshold-1000", server: &CompressionOptions{Threshold: 1000}, client: &CompressionOptions{Threshold: 6000}, wantExt: "permessage-deflate"},
	}
	for bits := 8; bits <= 15; bits++ {
		ext := fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", bits)
		cext := fmt.Sprintf("permessage-deflate; client_max_window_bits=%d", bits)
		if bits == 15 {
			ext, cext = "permessage-deflate", "permessage-deflate"
		}
		cases = append(cases,
			compressionCase{name: fmt.Sprintf("server-opt-server-bits-%d", bits), server: &CompressionOptions{ServerMaxWindowBits: bits, Threshold: -1}, client: &CompressionOptions{}, wantExt: ext},
			compressionCase{name: fmt.Sprintf("client-opt-server-bits-%d", bits), server: &CompressionOptions{}, client: &CompressionOptions{ServerMaxWindowBits: bits}, wantExt: ext},
			// The server asks the client for a window limit; the client
			// offered client_max_window_bits without a value.
			compressionCase{name: fmt.Sprintf("server-opt-client-bits-%d", bits), server: &CompressionOptions{ClientMaxWindowBits: bits}, client: &CompressionOptions{Threshold: -1}, wantExt: cext},
			// The client limits itself and says so with a value, which
			// the server need not echo.
			compressionCase{name: fmt.Sprintf("client-opt-client-bits-%d", bits), server: &CompressionOptions{}, client: &CompressionOptions{ClientMaxWindowBits: bits, Level: 9}, wantExt: "permessage-deflate",
				override: func(t *testing.T, c *Conn, up, down *direction) { up.bits = bits }},
		)
	}
	cases = append(cases, compressionCase{name: "both-bits-and-no-takeover", server: &CompressionOptions{ServerMaxWindowBits: 9, ClientMaxWindowBits: 10, NoContextTakeover: true},
		client:  &CompressionOptions{ServerMaxWindowBits: 12, ClientMaxWindowBits: 11, NoContextTakeover: true},
		wantExt: "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10"})
	return cases
}

// TestDeflateRoundTrip echoes a mix of messages through a compressing
// server for each pair of options and checks the negotiation, the echoed
// messages and every frame on the wire in both directions.
func TestDeflateRoundTrip(t *testing.T) {
	msgs := deflateMessages()
	for _, tc := range compressionCases() {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, echoHandler(&ServerOptions{Compression: tc.server}))
			var sniff *deflateSniff
			c, resp, err := Dial(testContext(t), url, &ClientOptions{Compression: tc.client, NetDialContext: sniffDialer(&sniff)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != tc.wantExt {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, tc.wantExt)
			}
			if (c.pmd != nil) != (tc.wantExt != "") {
				t.Fatalf("compression on=%v, want %v", c.pmd != nil, tc.wantExt != "")
			}
			ctx := testContext(t)
			for i, m := range msgs {
				typ := TextMessage
				if i == 6 {
					typ = BinaryMessage
				}
				if err := c.Write(ctx, typ, m); err != nil {
					t.Fatal(err)
				}
				gotTyp, got, err := c.Read(ctx)
				if err != nil || gotTyp != typ || !bytes.Equal(got, m) {
					t.Fatalf("message %d: %v %d bytes, %v; want %v %d bytes", i, gotTyp, len(got), err, typ, len(m))
				}
			}
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			up := direction{threshold: 1 << 62}
			down := up
			if c.pmd != nil {
				p := c.pmd.params
				up = direction{threshold: tc.client.threshold(), noTakeover: p.clientNoContextTakeover, bits: p.clientMaxWindowBits}
				down = direction{threshold: tc.server.threshold(), noTakeover: p.serverNoContextTakeover, bits: p.serverMaxWindowBits}
				if tc.override != nil {
					tc.override(t, c, &up, &down)
				}
			}
			checkDirection(t, "client to server", wireParse(t, sniff.sent(t)), msgs, up)
			checkDirection(t, "server to client", wireParse(t, sniff.received(t)), msgs, down)
		})
	}
}

// deflateConnPair returns a server and a client connection over loopback
// TCP with the given agreement installed directly, bypassing the
// handshake, so that every combination of parameters can be tried,
// including ones our own client would never offer.
func deflateConnPair(t *testing.T, params deflateParams, sopts, copts *CompressionOptions) (srv, cli *Conn, sniff *deflateSniff) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	cnc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	snc := wait(t, accepted, "accept")
	if snc == nil {
		t.Fatal("accept failed")
	}
	srv = newConn(false, 0, time.Second)
	srv.opened(snc, nil)
	srv.flushed.Store(true)
	srv.enableDeflate(params, sopts)
	// The sniffer expects a handshake before the frames.
	sniff = &deflateSniff{Conn: cnc}
	sniff.in.WriteString("\r\n\r\n")
	sniff.out.WriteString("\r\n\r\n")
	cli = newConn(true, 0, time.Second)
	cli.opened(sniff, nil)
	cli.flushed.Store(true)
	cli.enableDeflate(params, copts)
	t.Cleanup(func() { srv.CloseNow(); cli.CloseNow() })
	return srv, cli, sniff
}

// TestDeflateParamMatrix runs every combination of context takeover per
// direction with window bits 8..15 per direction, both ways, through the
// blocking API, eight messages deep so that takeover windows matter, and
// checks on the wire that each direction kept to its parameters.
func TestDeflateParamMatrix(t *testing.T) {
	// The long text still passes the largest window (32 KiB).
	msgs := deflateMessagesSized(34000, 3000)
	// Every value 8..15 in each direction, against no limit and against
	// another value in the other direction.
	bitsPairs := [][2]int{{0, 0}, {8, 0}, {0, 8}, {12, 0}, {0, 13}, {15, 0}, {0, 15}}
	for b := 8; b <= 15; b++ {
		bitsPairs = append(bitsPairs, [2]int{b, 23 - b})
	}
	for _, sNo := range []bool{false, true} {
		for _, cNo := range []bool{false, true} {
			for _, bp := range bitsPairs {
				params := deflateParams{serverNoContextTakeover: sNo, clientNoContextTakeover: cNo, serverMaxWindowBits: bp[0], clientMaxWindowBits: bp[1]}
				t.Run(strings.ReplaceAll(params.format(), "; ", ","), func(t *testing.T) {
					opts := &CompressionOptions{Threshold: -1}
					srv, cli, sniff := deflateConnPair(t, params, opts, opts)
					ctx := testContext(t)
					for i, m := range msgs {
						for _, pair := range [][2]*Conn{{cli, srv}, {srv, cli}} {
							from, to := pair[0], pair[1]
							errc := make(chan error, 1)
							go func() { errc <- from.Write(ctx, BinaryMessage, m) }()
							_, got, err := to.Read(ctx)
							if err != nil || !bytes.Equal(got, m) {
								t.Fatalf("message %d, client=%v to client=%v: %d bytes, %v; want %d bytes", i, from.client, to.client, len(got), err, len(m))
							}
							if err := wait(t, errc, "write"); err != nil {
								t.Fatal(err)
							}
						}
					}
					up := direction{noTakeover: cNo, bits: bp[1]}
					down := direction{noTakeover: sNo, bits: bp[0]}
					checkDirection(t, "client to server", wireParse(t, sniff.sent(t)), msgs, up)
					checkDirection(t, "server to client", wireParse(t, sniff.received(t)), msgs, down)
				})
			}
		}
	}
}

// TestDeflateTakeoverOnTheWire checks that a server keeps its window across
// messages unless server_no_context_takeover was agreed: the second copy of
// a message is smaller with takeover and identical without.
func TestDeflateTakeoverOnTheWire(t *testing.T) {
	msg := bytes.Repeat([]byte("context takeover lets the second copy refer to the first. "), 20)
	for _, noTakeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("server_no_context_takeover=%v", noTakeover), func(t *testing.T) {
			url := serve(t, echoHandler(&ServerOptions{Compression: &CompressionOptions{}}))
			var sniff *deflateSniff
			c := dialTest(t, url, &ClientOptions{Compression: &CompressionOptions{NoContextTakeover: noTakeover}, NetDialContext: sniffDialer(&sniff)})
			ctx := testContext(t)
			for range 2 {
				if err := c.Write(ctx, TextMessage, msg); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo: %v", err)
				}
			}
			for what, wire := range map[string][]byte{"server": sniff.received(t), "client": sniff.sent(t)} {
				m := wireParse(t, wire)
				if len(m) != 2 || !m[0].compressed || !m[1].compressed {
					t.Fatalf("%s: want 2 compressed messages, got %d", what, len(m))
				}
				same := bytes.Equal(m[0].payload, m[1].payload)
				if noTakeover && !same {
					t.Fatalf("%s: without context takeover both copies must compress alike", what)
				}
				if !noTakeover && len(m[1].payload) >= len(m[0].payload)/2 {
					t.Fatalf("%s: with context takeover the second copy is %d bytes, the first %d", what, len(m[1].payload), len(m[0].payload))
				}
			}
		})
	}
}

// TestDeflateStreaming uses NextWriter and NextReader with compression: a
// message written in pieces over many fragments, read in small pieces; a
// message left half-read (which must be inflated to its end for the window
// to stay right) followed by more messages; and both kinds mixed.
func TestDeflateStreaming(t *testing.T) {
	for _, noTakeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_context_takeover=%v", noTakeover), func(t *testing.T) {
			opts := &CompressionOptions{NoContextTakeover: noTakeover}
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, &ServerOptions{Compression: opts})
				if err != nil {
					return
				}
				defer c.CloseNow()
				// Echo with the streaming API on both ends.
				for {
					typ, rd, err := c.NextReader(context.Background())
					if err != nil {
						return
					}
					wr, err := c.NextWriter(context.Background(), typ)
					if err != nil {
						return
					}
					if _, err := io.CopyBuffer(wr, rd, make([]byte, 777)); err != nil {
						return
					}
					if err := wr.Close(); err != nil {
						return
					}
				}
			})
			var sniff *deflateSniff
			c := dialTest(t, url, &ClientOptions{Compression: opts, NetDialContext: sniffDialer(&sniff)})
			ctx := testContext(t)
			msgs := deflateMessages()
			for i, m := range msgs {
				typ := TextMessage
				if i == 6 {
					typ = BinaryMessage // random bytes are not UTF-8
				}
				wr, err := c.NextWriter(ctx, typ)
				if err != nil {
					t.Fatal(err)
				}
				for p := m; len(p) > 0; {
					k := min(len(p), 1000+i)
					if _, err := wr.Write(p[:k]); err != nil {
						t.Fatal(err)
					}
					p = p[k:]
				}
				if err := wr.Close(); err != nil {
					t.Fatal(err)
				}
				gotTyp, rd, err := c.NextReader(ctx)
				if err != nil || gotTyp != typ {
					t.Fatalf("message %d: %v %v", i, gotTyp, err)
				}
				if i == 5 {
					// Read only the start, then move on.
					head := make([]byte, 100)
					if _, err := io.ReadFull(rd, head); err != nil || !bytes.Equal(head, m[:100]) {
						t.Fatalf("head of message %d: %v", i, err)
					}
					continue
				}
				got, err := io.ReadAll(rd)
				if err != nil || !bytes.Equal(got, m) {
					t.Fatalf("message %d: %d bytes, %v; want %d", i, len(got), err, len(m))
				}
			}
			// A ReadMessage right after a half-read NextReader.
			for range 2 {
				if err := c.Write(ctx, TextMessage, msgs[5]); err != nil {
					t.Fatal(err)
				}
			}
			_, rd, err := c.NextReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rd.Read(make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			for _, want := range [][]byte{msgs[5]} {
				if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("after a half-read message: %d bytes, %v", len(got), err)
				}
			}
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			// A streamed message has RSV1 on its first frame only and is
			// split over several frames.
			sent := wireParse(t, sniff.sent(t))
			if len(sent) < 6 || len(sent[5].frames) < 2 || !sent[5].compressed {
				t.Fatalf("streamed 70 KB message: %d messages, %d frames", len(sent), len(sent[5].frames))
			}
			up := direction{threshold: opts.threshold(), noTakeover: noTakeover}
			checkDirection(t, "client to server", sent, msgs, up)
		})
	}
}

// TestDeflateEvents runs the event API on both sides with compression.
func TestDeflateEvents(t *testing.T) {
	opts := &CompressionOptions{}
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, &ServerOptions{Compression: opts})
		ws.OnMessage(func(m Message) {
			if m.Type == TextMessage {
				ws.SendText(strings.ToUpper(m.Text()))
			} else {
				ws.SendBinary(m.Data)
			}
		})
		ws.Start()
	})
	ws := NewClient(url, &ClientOptions{Compression: opts})
	got := make(chan Message, 10)
	closed := make(chan StatusCode, 1)
	ws.OnMessage(func(m Message) { got <- Message{Type: m.Type, Data: bytes.Clone(m.Data)} })
	ws.OnClose(func(code StatusCode, _ string) { closed <- code })
	text := strings.Repeat("compress me please ", 200)
	ws.SendText(text) // queued until open
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	if ws.pmd == nil {
		t.Fatal("compression was not negotiated")
	}
	bin := bytes.Repeat([]byte{1, 2, 3, 4}, 3000)
	ws.SendBinary(bin)
	ws.SendText("short")
	for _, want := range []Message{{TextMessage, []byte(strings.ToUpper(text))}, {BinaryMessage, bin}, {TextMessage, []byte("SHORT")}} {
		m := wait(t, got, "message")
		if m.Type != want.Type || !bytes.Equal(m.Data, want.Data) {
			t.Fatalf("got %v %d bytes, want %v %d bytes", m.Type, len(m.Data), want.Type, len(want.Data))
		}
	}
	ws.Close(StatusNormalClosure, "bye")
	if code := wait(t, closed, "close"); code != StatusNormalClosure {
		t.Fatalf("close code %v", code)
	}
}

// rawDeflateClient does the handshake by hand with the given
// Sec-WebSocket-Extensions (none if ""), returning the connection and the
// response's extension header.
func rawDeflateClient(t *testing.T, url, ext string) (net.Conn, string) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if ext != "" {
		req += "Sec-WebSocket-Extensions: " + ext + "\r\n"
	}
	io.WriteString(nc, req+"\r\n")
	resp := make([]byte, 0, 256)
	var one [1]byte
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := nc.Read(one[:]); err != nil {
			t.Fatal(err)
		}
		resp = append(resp, one[0])
	}
	r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(resp)), nil)
	if err != nil || r.StatusCode != 101 {
		t.Fatalf("handshake: %s", resp)
	}
	return nc, r.Header.Get("Sec-WebSocket-Extensions")
}

// deflateBomb returns a compressed message that inflates to n zero bytes
// (n a multiple of 1 MiB). It repeats one sync-flushed segment: each ends
// byte-aligned and refers to nothing before it, so the copies chain into
// one valid stream, and building it costs one 1 MiB compression.
func deflateBomb(n int) []byte {
	var sink compressSink
	fw, _ := flate.NewWriter(&sink, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	seg := sink.b
	out := bytes.Repeat(seg, n>>20)
	return out[:len(out)-len(deflateTail)]
}

// TestDeflateProtocolErrors sends what a broken or hostile peer would and
// checks the close code, for both reading APIs.
func TestDeflateProtocolErrors(t *testing.T) {
	compressed := func(p []byte) []byte { return compressMessageOnce(flate.BestSpeed, p) }
	hello := compressed([]byte("hello"))
	cases := []struct {
		name   string
		frames [][]byte
		want   StatusCode
	}{
		{"corrupt deflate", [][]byte{clientFrame(true, rsv1, opBinary, []byte{0xff, 0xff, 0xff, 0xff})}, StatusInvalidFramePayloadData},
		{"corrupt after valid start", [][]byte{clientFrame(true, rsv1, opText, append(append([]byte{}, hello...), 0xff, 0xff))}, StatusInvalidFramePayloadData},
		{"compressed invalid UTF-8", [][]byte{clientFrame(true, rsv1, opText, compressed([]byte("ok \xff\xfe bad")))}, StatusInvalidFramePayloadData},
		{"compressed truncated UTF-8", [][]byte{clientFrame(true, rsv1, opText, compressed([]byte("cut \xe2\x82")))}, StatusInvalidFramePayloadData},
		{"RSV1 on continuation", [][]byte{clientFrame(false, rsv1, opText, hello[:2]), clientFrame(true, rsv1, opContinuation, hello[2:])}, StatusProtocolError},
		{"RSV1 on uncompressed continuation", [][]byte{clientFrame(false, 0, opText, []byte("a")), clientFrame(true, rsv1, opContinuation, []byte("b"))}, StatusProtocolError},
		{"RSV1 on ping", [][]byte{clientFrame(true, rsv1, opPing, []byte("p"))}, StatusProtocolError},
		{"RSV2 with deflate", [][]byte{clientFrame(true, rsv2, opText, []byte("a"))}, StatusProtocolError},
		{"bomb", [][]byte{clientFrame(true, rsv1, opBinary, deflateBomb(8<<20))}, StatusMessageTooBig},
		{"bomb over fragments", [][]byte{clientFrame(false, rsv1, opBinary, deflateBomb(4<<20)), clientFrame(true, 0, opContinuation, deflateBomb(4<<20))}, StatusMessageTooBig},
	}
	for _, api := range []string{"ReadMessage", "NextReader", "events"} {
		for _, tc := range cases {
			t.Run(api+"/"+tc.name, func(t *testing.T) {
				gotErr := make(chan error, 1)
				url := serve(t, func(w http.ResponseWriter, r *http.Request) {
					opts := &ServerOptions{Compression: &CompressionOptions{}, MaxLength: 1 << 20}
					if api == "events" {
						ws := NewServer(w, r, opts)
						ws.OnError(func(err error) { gotErr <- err })
						ws.Start()
						return
					}
					c, err := Accept(w, r, opts)
					if err != nil {
						return
					}
					defer c.CloseNow()
					for {
						if api == "ReadMessage" {
							_, _, err = c.Read(context.Background())
						} else {
							var rd io.Reader
							if _, rd, err = c.NextReader(context.Background()); err == nil {
								_, err = io.Copy(io.Discard, rd)
							}
						}
						if err != nil {
							gotErr <- err
							return
						}
					}
				})
				nc, ext := rawDeflateClient(t, url, "permessage-deflate")
				if ext != "permessage-deflate" {
					t.Fatalf("extension %q", ext)
				}
				for _, f := range tc.frames {
					nc.Write(f)
				}
				if code := readCloseCode(t, nc); code != tc.want {
					t.Fatalf("close code %v, want %v", code, tc.want)
				}
				nc.Close() // the server waits for TCP to go down
				var pe *ProtocolError
				if err := wait(t, gotErr, "server error"); !errors.As(err, &pe) || pe.Code != tc.want {
					t.Fatalf("server error %v, want a ProtocolError with %v", err, tc.want)
				}
			})
		}
	}
}

// TestDeflateBombMemory checks that a message inflating to 256 MiB is
// stopped at the 1 MiB limit having allocated a small multiple of the
// limit, not of the inflated size.
func TestDeflateBombMemory(t *testing.T) {
	bomb := deflateBomb(256 << 20)
	const limit = 1 << 20
	type result struct {
		err   error
		alloc uint64
	}
	res := make(chan result, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &ServerOptions{Compression: &CompressionOptions{}, MaxLength: limit})
		if err != nil {
			return
		}
		defer c.CloseNow()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err = c.Read(context.Background())
		runtime.ReadMemStats(&after)
		res <- result{err, after.TotalAlloc - before.TotalAlloc}
	})
	nc, _ := rawDeflateClient(t, url, "permessage-deflate")
	go nc.Write(clientFrame(true, rsv1, opBinary, bomb))
	if code := readCloseCode(t, nc); code != StatusMessageTooBig {
		t.Fatalf("close code %v", code)
	}
	nc.Close()
	r := wait(t, res, "server")
	if CloseStatus(r.err) != 0 {
		t.Fatalf("error %v", r.err)
	}
	t.Logf("bomb of %d compressed bytes (256 MiB inflated): %d bytes allocated while reading", len(bomb), r.alloc)
	// The bound is generous (the whole process allocates during the read)
	// yet far below the 256 MiB an unbounded inflate would take.
	if r.alloc > 16*limit+uint64(len(bomb))*2 {
		t.Fatalf("reading the bomb allocated %d bytes, limit %d", r.alloc, limit)
	}
}

// TestDeflateNotNegotiated checks that RSV1 fails the connection with 1002
// whenever compression was not agreed: server off, or not offered.
func TestDeflateNotNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server *CompressionOptions
		offer  string
	}{
		{"server off", nil, "permessage-deflate"},
		{"not offered", &CompressionOptions{}, ""},
		{"offer declined", &CompressionOptions{}, "permessage-deflate; server_max_window_bits=7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, echoHandler(&ServerOptions{Compression: tc.server}))
			nc, ext := rawDeflateClient(t, url, tc.offer)
			if ext != "" {
				t.Fatalf("extension %q agreed", ext)
			}
			nc.Write(clientFrame(true, 0, opText, []byte("plain")))
			nc.Write(clientFrame(true, rsv1, opText, compressMessageOnce(1, []byte("hello"))))
			if code := readCloseCode(t, nc); code != StatusProtocolError {
				t.Fatalf("close code %v", code)
			}
		})
	}
}

// TestDeflateServerNegotiation checks the server's answer to offers at the
// HTTP level.
func TestDeflateServerNegotiation(t *testing.T) {
	cases := []struct {
		name    string
		opts    *CompressionOptions
		offers  []string
		status  int
		wantExt string
		inBody  string
	}{
		{"plain", &CompressionOptions{}, []string{"permessage-deflate"}, 101, "permessage-deflate", ""},
		{"other extension first", &CompressionOptions{}, []string{"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"}, 101, "permessage-deflate", ""},
		{"first offer invalid", &CompressionOptions{}, []string{"permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover"}, 101, "permessage-deflate; server_no_context_takeover", ""},
		{"offers over two lines", &CompressionOptions{}, []string{"permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=10"}, 101, "permessage-deflate; server_max_window_bits=10", ""},
		{"all offers invalid", &CompressionOptions{}, []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover=1, permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, 101, "", ""},
		{"window bits with leading zero", &CompressionOptions{}, []string{"permessage-deflate; server_max_window_bits=010"}, 101, "", ""},
		{"quoted value", &CompressionOptions{}, []string{`permessage-deflate; server_max_window_bits="12"`}, 101, "permessage-deflate; server_max_window_bits=12", ""},
		{"server asks client bits", &CompressionOptions{ClientMaxWindowBits: 9}, []string{"permessage-deflate; client_max_window_bits"}, 101, "permessage-deflate; client_max_window_bits=9", ""},
		{"client bits not offered", &CompressionOptions{ClientMaxWindowBits: 9}, []string{"permessage-deflate"}, 101, "permessage-deflate", ""},
		{"client bits offered lower", &CompressionOptions{ClientMaxWindowBits: 12}, []string{"permessage-deflate; client_max_window_bits=10"}, 101, "permessage-deflate", ""},
		{"server limits itself", &CompressionOptions{ServerMaxWindowBits: 11}, []string{"permessage-deflate; server_max_window_bits=13"}, 101, "permessage-deflate; server_max_window_bits=11", ""},
		{"server no takeover", &CompressionOptions{NoContextTakeover: true}, []string{"permessage-deflate"}, 101, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", ""},
		{"case-insensitive name", &CompressionOptions{}, []string{"PerMessage-Deflate"}, 101, "permessage-deflate", ""},
		{"malformed", &CompressionOptions{}, []string{"permessage-deflate; ="}, 400, "", "malformed"},
		{"malformed list", &CompressionOptions{}, []string{"permessage-deflate,, ;x"}, 400, "", "malformed"},
		{"unterminated quote", &CompressionOptions{}, []string{`permessage-deflate; server_max_window_bits="10`}, 400, "", "quoted"},
		{"malformed with compression off", nil, []string{"permessage-deflate; ="}, 101, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, echoHandler(&ServerOptions{Compression: tc.opts}))
			resp := rawHandshake(t, url, func(r *http.Request) {
				for _, o := range tc.offers {
					r.Header.Add("Sec-WebSocket-Extensions", o)
				}
			})
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != tc.wantExt {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, tc.wantExt)
			}
			if tc.status != 101 {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), tc.inBody) {
					t.Fatalf("body %q does not give the reason (%q)", body, tc.inBody)
				}
			}
		})
	}
}

// fakeServer answers one WebSocket handshake with the given extension
// header, then echoes nothing and reads until the client goes away; it
// returns the URL and a channel with the request's extension header.
func fakeServer(t *testing.T, ext string) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	offered := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		offered <- req.Header.Get("Sec-WebSocket-Extensions")
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if ext != "" {
			resp += "Sec-WebSocket-Extensions: " + ext + "\r\n"
		}
		io.WriteString(nc, resp+"\r\n")
		io.Copy(io.Discard, nc)
	}()
	return "ws://" + ln.Addr().String() + "/", offered
}

// TestDeflateClientNegotiation checks the client's offer and how it takes
// the server's answer.
func TestDeflateClientNegotiation(t *testing.T) {
	cases := []struct {
		name      string
		opts      *CompressionOptions
		response  string
		wantOffer string
		ok        bool
		on        bool
		params    deflateParams
	}{
		{"accepted", &CompressionOptions{}, "permessage-deflate", "permessage-deflate; client_max_window_bits", true, true, deflateParams{}},
		{"declined", &CompressionOptions{}, "", "permessage-deflate; client_max_window_bits", true, false, deflateParams{}},
		{"off", nil, "", "", true, false, deflateParams{}},
		{"off but server answers", nil, "permessage-deflate", "", false, false, deflateParams{}},
		{"unknown extension", &CompressionOptions{}, "x-foo", "permessage-deflate; client_max_window_bits", false, false, deflateParams{}},
		{"server sets client bits", &CompressionOptions{}, "permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits", true, true, deflateParams{clientMaxWindowBits: 9}},
		{"server adds its bits", &CompressionOptions{}, "permessage-deflate; server_max_window_bits=10; client_no_context_takeover", "permessage-deflate; client_max_window_bits", true, true, deflateParams{serverMaxWindowBits: 10, clientNoContextTakeover: true}},
		{"server bits above offer", &CompressionOptions{ServerMaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=10; client_max_window_bits", false, false, deflateParams{}},
		{"server bits missing", &CompressionOptions{ServerMaxWindowBits: 10}, "permessage-deflate", "permessage-deflate; server_max_window_bits=10; client_max_window_bits", false, false, deflateParams{}},
		{"client bits without value in response", &CompressionOptions{}, "permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits", false, false, deflateParams{}},
		{"unknown parameter", &CompressionOptions{}, "permessage-deflate; foo", "permessage-deflate; client_max_window_bits", false, false, deflateParams{}},
		{"two elements", &CompressionOptions{}, "permessage-deflate, permessage-deflate", "permessage-deflate; client_max_window_bits", false, false, deflateParams{}},
		{"malformed", &CompressionOptions{}, "permessage-deflate; ;", "permessage-deflate; client_max_window_bits", false, false, deflateParams{}},
		{"no takeover offer", &CompressionOptions{NoContextTakeover: true, ClientMaxWindowBits: 11}, "permessage-deflate; server_no_context_takeover",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=11", true, true, deflateParams{serverNoContextTakeover: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, offered := fakeServer(t, tc.response)
			c, _, err := Dial(testContext(t), url, &ClientOptions{Compression: tc.opts})
			if got := wait(t, offered, "request"); got != tc.wantOffer {
				t.Fatalf("offer %q, want %q", got, tc.wantOffer)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("Dial error %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				var he *HandshakeError
				if !errors.As(err, &he) {
					t.Fatalf("error %T %v, want a *HandshakeError", err, err)
				}
				return
			}
			defer c.CloseNow()
			if (c.pmd != nil) != tc.on {
				t.Fatalf("compression on=%v, want %v", c.pmd != nil, tc.on)
			}
			if c.pmd != nil && c.pmd.params != tc.params {
				t.Fatalf("params %+v, want %+v", c.pmd.params, tc.params)
			}
			if c.sess.dec.allowRSV1 != tc.on {
				t.Fatal("decoder RSV1 setting does not follow the negotiation")
			}
		})
	}
}

// TestDeflatePrepared broadcasts prepared messages to connections with
// different agreements: those without context takeover share one
// compressed payload per level, the others compress for themselves, and
// every client receives the message intact, including when the same
// PreparedMessage is written from many goroutines at once.
func TestDeflatePrepared(t *testing.T) {
	var mu sync.Mutex
	var conns []*Conn
	ready := make(chan struct{}, 16)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		opts := &CompressionOptions{Level: 6, NoContextTakeover: true}
		switch r.URL.Query().Get("kind") {
		case "takeover":
			opts = &CompressionOptions{}
		case "level9":
			opts = &CompressionOptions{Level: 9, NoContextTakeover: true}
		case "off":
			opts = nil
		}
		c, err := Accept(w, r, &ServerOptions{Compression: opts})
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		ready <- struct{}{}
		c.Read(context.Background()) // until the client closes
	})
	kinds := []string{"shared", "shared", "shared", "shared", "takeover", "takeover", "level9", "level9", "off"}
	type client struct {
		c     *Conn
		sniff *deflateSniff
		kind  string
	}
	var clients []client
	for _, k := range kinds {
		var sniff *deflateSniff
		c := dialTest(t, url+"?kind="+k, &ClientOptions{Compression: &CompressionOptions{}, NetDialContext: sniffDialer(&sniff)})
		clients = append(clients, client{c, sniff, k})
		wait(t, ready, "accept")
	}
	msg := bytes.Repeat([]byte(`{"event":"tick","payload":"the same for everyone"},`), 40)
	pm, err := NewPreparedMessage(TextMessage, msg)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := NewPreparedMessage(TextMessage, []byte("tiny"))
	ctx := testContext(t)
	const rounds = 3
	var wg sync.WaitGroup
	mu.Lock()
	for _, c := range conns {
		for range rounds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.WritePrepared(ctx, pm); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	mu.Unlock()
	wg.Wait()
	mu.Lock()
	for _, c := range conns {
		if err := c.WritePrepared(ctx, small); err != nil {
			t.Fatal(err)
		}
	}
	mu.Unlock()
	// Two levels among the connections without takeover: 6 and 9.
	if n := pm.deflated.count(); n != 2 {
		t.Fatalf("the prepared message was compressed %d times, want once per level (2)", n)
	}
	if n := small.deflated.count(); n != 0 {
		t.Fatalf("a message below the threshold was compressed %d times", n)
	}
	shared := map[string][]byte{}
	for _, cl := range clients {
		for i := range rounds + 1 {
			want := msg
			if i == rounds {
				want = []byte("tiny")
			}
			if _, got, err := cl.c.Read(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s client, message %d: %d bytes, %v", cl.kind, i, len(got), err)
			}
		}
		cl.c.Close(StatusNormalClosure, "")
		wire := wireParse(t, cl.sniff.received(t))
		if len(wire) != rounds+1 {
			t.Fatalf("%s: %d messages on the wire", cl.kind, len(wire))
		}
		if wire[rounds].compressed {
			t.Fatalf("%s: message below the threshold was compressed", cl.kind)
		}
		for i := range rounds {
			if wire[i].compressed != (cl.kind != "off") {
				t.Fatalf("%s: message %d compressed=%v", cl.kind, i, wire[i].compressed)
			}
			switch cl.kind {
			case "shared", "level9":
				if prev, ok := shared[cl.kind]; ok && !bytes.Equal(prev, wire[i].payload) {
					t.Fatalf("%s: connections got different compressed bytes", cl.kind)
				}
				shared[cl.kind] = wire[i].payload
			case "takeover":
				if i > 0 && len(wire[i].payload) >= len(wire[0].payload) {
					t.Fatalf("takeover: copy %d is %d bytes, the first %d", i, len(wire[i].payload), len(wire[0].payload))
				}
			}
		}
	}
}

// count reports how many compressed payloads the cache holds (tests).
func (p *deflatePrepared) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.payload)
}

// TestDeflateReleasedOnClose checks that closing a connection with context
// takeover returns its flate writer, and that writes after it fail cleanly.
func TestDeflateReleasedOnClose(t *testing.T) {
	url := serve(t, echoHandler(&ServerOptions{Compression: &CompressionOptions{}}))
	c := dialTest(t, url, &ClientOptions{Compression: &CompressionOptions{}})
	ctx := testContext(t)
	msg := bytes.Repeat([]byte("x"), 1000)
	if err := c.Write(ctx, BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if c.pmd.comp.fw == nil {
		t.Fatal("with context takeover the compressor should keep its writer between messages")
	}
	c.Close(StatusNormalClosure, "")
	<-c.Done()
	if c.pmd.comp.fw != nil {
		t.Fatal("the flate writer was not released when the connection closed")
	}
	if err := c.Write(ctx, BinaryMessage, msg); !errors.Is(err, ErrClosed) && CloseStatus(err) == 0 {
		t.Fatalf("Write after close: %v", err)
	}
}

// FuzzDeflateRead gives a server connection with compression agreed an
// arbitrary compressed message, split over two frames at an arbitrary
// point, and reads it with ReadMessage or NextReader. The connection either
// delivers exactly what a reference inflater makes of the payload, or
// fails with 1007 (bad data or bad UTF-8) or 1009 (too large); it never
// panics.
func FuzzDeflateRead(f *testing.F) {
	f.Add(compressMessageOnce(1, []byte("hello, hello, hello")), uint16(3), true, false, false)
	f.Add(compressMessageOnce(9, bytes.Repeat([]byte{0}, 100000)), uint16(10), false, true, true)
	f.Add([]byte{0xff, 0x00, 0x12}, uint16(1), false, false, true)
	f.Add(compressMessageOnce(1, []byte("caf\xc3")), uint16(0), true, true, false)
	f.Add([]byte{}, uint16(0), true, false, false)
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, payload []byte, split uint16, text, stream, takeover bool) {
		cut := min(int(split), len(payload))
		op := opBinary
		if text {
			op = opText
		}
		in := clientFrame(cut == len(payload), rsv1, op, payload[:cut])
		if cut < len(payload) {
			in = append(in, clientFrame(true, 0, opContinuation, payload[cut:])...)
		}
		c := newConn(false, limit, time.Second)
		c.opened(&fakeConn{in: bytes.NewReader(in)}, nil)
		c.flushed.Store(true)
		c.enableDeflate(deflateParams{clientNoContextTakeover: !takeover}, &CompressionOptions{})
		var got []byte
		var err error
		if stream {
			var rd io.Reader
			if _, rd, err = c.NextReader(context.Background()); err == nil {
				got, err = io.ReadAll(rd)
			}
		} else {
			_, got, err = c.Read(context.Background())
		}
		ref, refErr := io.ReadAll(io.LimitReader(flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader(inflateTrailer))), limit+1))
		if len(payload) == 0 {
			ref, refErr = nil, nil
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			switch pe.Code {
			case StatusMessageTooBig:
				if refErr == nil && len(ref) <= limit {
					t.Fatalf("1009 for a message of %d bytes", len(ref))
				}
			case StatusInvalidFramePayloadData:
				if refErr == nil && len(ref) <= limit && (!text || utf8Valid(ref)) {
					t.Fatalf("1007 for valid data: %v", err)
				}
			default:
				t.Fatalf("unexpected close code %v", pe.Code)
			}
			return
		}
		if refErr != nil || len(ref) > limit || !bytes.Equal(got, ref) || (text && !utf8Valid(got)) {
			t.Fatalf("delivered %d bytes; reference %d bytes, %v", len(got), len(ref), refErr)
		}
	})
}

func utf8Valid(b []byte) bool {
	var v utf8Validator
	return v.feed(b) && v.complete()
}
