package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket"
)

// caseTimeout bounds one case on our side; the 16 MiB cases under the race
// detector on a busy machine are the slowest.
const caseTimeout = 60 * time.Second

// closeTimeout bounds our closing handshakes.
const closeTimeout = 10 * time.Second

// ourServerOptions is the configuration of our server for a case.
func ourServerOptions(c Case) *websocket.ServerOptions {
	return &websocket.ServerOptions{
		MaxLength:    maxCaseSize(),
		Protocols:    ourProtocols,
		CloseTimeout: closeTimeout,
		Compression:  c.Compression,
	}
}

// ourClientOptions is the configuration of our client for a case.
func ourClientOptions(c Case) *websocket.ClientOptions {
	o := &websocket.ClientOptions{
		MaxLength:    maxCaseSize(),
		CloseTimeout: closeTimeout,
		Compression:  c.Compression,
	}
	if c.Kind == KindSubprotocol {
		o.Protocols = offeredProtocols
	}
	return o
}

// API is the style of our library's API a column uses on our side.
type API string

const (
	// APIBlocking is Accept / Dial with Read, Write and NextWriter.
	APIBlocking API = "blocking"
	// APIEvents is NewServer / NewClient with Start, OnMessage, Send and
	// OnClose (the seed's API).
	APIEvents API = "events"
)

// ourConn is our side of one case's connection. Its methods hide which
// API runs it, so each case is written once.
type ourConn struct {
	ctx   context.Context
	c     *websocket.Conn
	api   API
	sniff *sniffConn
	pings chan []byte // payloads given to OnPing
	pongs chan []byte // payloads given to OnPong

	// APIEvents only.
	msgs     chan websocket.Message // copies of what OnMessage got
	closed   chan struct{}          // closed after OnClose
	closeErr *websocket.CloseError  // what OnClose got
	onClose  atomic.Int32           // OnClose calls
}

// newOurConn wraps c and sets its handlers; for APIEvents, call it before
// Start so that no event is missed.
func newOurConn(ctx context.Context, c *websocket.Conn, api API, sn *sniffConn) *ourConn {
	oc := &ourConn{ctx: ctx, c: c, api: api, sniff: sn,
		pings: make(chan []byte, 16), pongs: make(chan []byte, 16),
		msgs: make(chan websocket.Message, 64), closed: make(chan struct{})}
	keep := func(ch chan []byte) func([]byte) {
		return func(p []byte) {
			select {
			case ch <- bytes.Clone(p):
			default:
			}
		}
	}
	c.OnPing(keep(oc.pings))
	c.OnPong(keep(oc.pongs))
	if api == APIEvents {
		c.OnMessage(func(m websocket.Message) {
			select {
			case oc.msgs <- websocket.Message{Type: m.Type, Data: bytes.Clone(m.Data)}:
			case <-ctx.Done():
			}
		})
		c.OnClose(func(code websocket.StatusCode, reason string) {
			if oc.onClose.Add(1) == 1 {
				oc.closeErr = &websocket.CloseError{Code: code, Reason: reason}
				close(oc.closed)
			}
		})
	}
	return oc
}

// read returns the next message, or the close error once the connection
// ended.
func (oc *ourConn) read() (websocket.MessageType, []byte, error) {
	if oc.api == APIBlocking {
		return oc.c.Read(oc.ctx)
	}
	select {
	case m := <-oc.msgs:
		return m.Type, m.Data, nil
	case <-oc.closed:
		select { // OnMessage calls come before OnClose: drain them first
		case m := <-oc.msgs:
			return m.Type, m.Data, nil
		default:
			return 0, nil, oc.closeErr
		}
	case <-oc.ctx.Done():
		return 0, nil, fmt.Errorf("no message or close event: %w", oc.ctx.Err())
	}
}

// write sends one message in one frame.
func (oc *ourConn) write(typ websocket.MessageType, p []byte) error {
	if oc.api == APIBlocking {
		return oc.c.Write(oc.ctx, typ, p)
	}
	if typ == websocket.TextMessage {
		return oc.c.Send(string(p))
	}
	return oc.c.Send(p)
}

// finalErr waits for the end of the connection and returns its error, as
// Err reports it and, for APIEvents, as OnClose did.
func (oc *ourConn) finalErr() error {
	select {
	case <-oc.c.Done():
	case <-oc.ctx.Done():
		return errors.New("connection not done")
	}
	if oc.api == APIEvents {
		select {
		case <-oc.closed:
		case <-oc.ctx.Done():
			return errors.New("OnClose was not called")
		}
		if n := oc.onClose.Load(); n != 1 {
			return fmt.Errorf("OnClose was called %d times", n)
		}
		if ce := oc.closeErr; ce.Code != websocket.CloseStatus(oc.c.Err()) {
			return fmt.Errorf("OnClose got %d %q, Err() is %v", ce.Code, ce.Reason, oc.c.Err())
		}
	}
	return oc.c.Err()
}

// runCase runs our half of c on an open connection. A failure closes the
// connection with 4000 so that the peer stops waiting too.
func runCase(oc *ourConn, c Case) error {
	err := c.run(oc, c)
	if err != nil && oc.c.ReadyState() == websocket.Open {
		reason := err.Error()
		if len(reason) > 100 {
			reason = reason[:100]
		}
		reason = strings.ToValidUTF8(reason, "?")
		oc.c.Close(4000, reason)
	}
	return err
}

// runPayload sends the case's payload, then checks the peer's digest of
// what it received and the echo it sent back, byte for byte. With Count,
// the further messages go one at a time to the peer, which now only
// echoes them. With Compression, it also checks what was negotiated and
// that the messages went compressed both ways (checkDeflate).
func runPayload(oc *ourConn, c Case) error {
	if c.Compression != nil {
		if err := checkDeflateAgreed(oc, c); err != nil {
			return err
		}
	}
	if err := exchangeFirst(oc, c); err != nil {
		return err
	}
	for i := 1; i < c.count(); i++ {
		p := c.payloadN(i)
		if err := oc.write(c.Type, p); err != nil {
			return fmt.Errorf("write of message %d: %w", i+1, err)
		}
		typ, got, err := oc.read()
		if err != nil {
			return fmt.Errorf("reading the echo of message %d: %w", i+1, err)
		}
		if typ != c.Type {
			return fmt.Errorf("echo of message %d is %s, want %s", i+1, typ, c.Type)
		}
		if err := sameBytes(fmt.Sprintf("echo of message %d", i+1), got, p); err != nil {
			return err
		}
	}
	if c.Compression != nil {
		if err := checkDeflateFrames(oc, c); err != nil {
			return err
		}
	}
	return closeNormal(oc)
}

// exchangeFirst sends the case's first message and checks the digest and
// the echo.
func exchangeFirst(oc *ourConn, c Case) error {
	p := c.payload()
	if c.Fragment {
		w, err := oc.c.NextWriter(oc.ctx, c.Type)
		if err != nil {
			return fmt.Errorf("NextWriter: %w", err)
		}
		for i, off := 0, 0; off < len(p); i++ {
			n := min(fragmentSizes[i%len(fragmentSizes)], len(p)-off)
			if _, err := w.Write(p[off : off+n]); err != nil {
				return fmt.Errorf("fragment write: %w", err)
			}
			off += n
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("closing the message writer: %w", err)
		}
		if !oc.sniff.awaitOut(func() bool { return oc.sniff.out.count(opContinuation) > 0 }) {
			return errors.New("our NextWriter sent the message as a single frame")
		}
	} else if c.Prepared {
		pm, err := websocket.NewPreparedMessage(c.Type, p)
		if err != nil {
			return fmt.Errorf("NewPreparedMessage: %w", err)
		}
		if err := oc.c.WritePrepared(oc.ctx, pm); err != nil {
			return fmt.Errorf("WritePrepared: %w", err)
		}
	} else if err := oc.write(c.Type, p); err != nil {
		return fmt.Errorf("write: %w", err)
	}

	typ, got, err := oc.read()
	if err != nil {
		return fmt.Errorf("reading the peer's digest: %w", err)
	}
	if err := checkDigest(typ, got, c.Type, p); err != nil {
		return err
	}
	typ, got, err = oc.read()
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if typ != c.Type {
		return fmt.Errorf("echo is %s, want %s", typ, c.Type)
	}
	if err := sameBytes("echo", got, p); err != nil {
		return err
	}
	if c.Kind == KindEchoFragmented {
		if n := oc.sniff.in.count(opContinuation); n == 0 {
			return errors.New("the peer's echo arrived as a single frame, want fragments")
		}
	}
	return nil
}

// agreedExtensions returns the Sec-WebSocket-Extensions of the handshake's
// response as it crossed the wire, and whether our side was the server
// (the response went out).
func agreedExtensions(oc *ourConn) (string, bool, error) {
	oc.sniff.awaitOut(func() bool {
		_, in := oc.sniff.in.headerValues("Sec-WebSocket-Extensions")
		_, out := oc.sniff.out.headerValues("Sec-WebSocket-Extensions")
		return in || out
	})
	if v, ok := oc.sniff.in.headerValues("Sec-WebSocket-Extensions"); ok {
		return strings.Join(v, ", "), false, nil
	}
	if v, ok := oc.sniff.out.headerValues("Sec-WebSocket-Extensions"); ok {
		return strings.Join(v, ", "), true, nil
	}
	return "", false, errors.New("internal: the sniffer saw no 101 response")
}

// checkDeflateAgreed checks that the handshake agreed on exactly one
// permessage-deflate with the case's parameters.
func checkDeflateAgreed(oc *ourConn, c Case) error {
	ext, ourServer, err := agreedExtensions(oc)
	if err != nil {
		return err
	}
	var params map[string]string
	for _, e := range strings.Split(ext, ",") {
		fields := strings.Split(e, ";")
		if strings.TrimSpace(fields[0]) != "permessage-deflate" {
			continue
		}
		if params != nil {
			return fmt.Errorf("permessage-deflate agreed twice: %q", ext)
		}
		params = make(map[string]string)
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			params[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if params == nil {
		return fmt.Errorf("permessage-deflate was not agreed (Sec-WebSocket-Extensions: %q)", ext)
	}
	want := c.WantExt
	if ourServer {
		want = append(want[:len(want):len(want)], c.WantExtOurServer...)
	}
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := params[k]
		if !ok || (hasValue && got != v) {
			return fmt.Errorf("agreed %q, want %s in it", ext, w)
		}
	}
	for _, f := range c.ForbidExt {
		if _, ok := params[f]; ok {
			return fmt.Errorf("agreed %q, want no %s in it", ext, f)
		}
	}
	return nil
}

// checkDeflateFrames checks on the wire that every message of the case
// went compressed both ways: RSV1 on the first frame of each of our
// messages and of each of the peer's echoes, never on a continuation or
// control frame.
func checkDeflateFrames(oc *ourConn, c Case) error {
	check := func(who string, frames []frameRecord, wantAtLeast int) error {
		compressed := 0
		for _, f := range frames {
			switch {
			case f.Opcode == opText || f.Opcode == opBinary:
				if f.Rsv1 {
					compressed++
				}
			case f.Rsv1:
				return fmt.Errorf("%s set RSV1 on a frame with opcode %d", who, f.Opcode)
			}
		}
		if compressed < wantAtLeast {
			return fmt.Errorf("%s sent %d compressed messages (RSV1), want at least %d", who, compressed, wantAtLeast)
		}
		return nil
	}
	// Our side sent only the case's messages; the peer also sent its digest,
	// which may go either way.
	oc.sniff.awaitOut(func() bool { return check("we", oc.sniff.out.snapshot(), c.count()) == nil })
	if err := check("we", oc.sniff.out.snapshot(), c.count()); err != nil {
		return err
	}
	return check("the peer", oc.sniff.in.snapshot(), c.count())
}

// checkDigest checks the peer's "digest TYPE LEN SHA256HEX" message: what
// the peer received, as its own API saw it.
func checkDigest(typ websocket.MessageType, msg []byte, wantType websocket.MessageType, want []byte) error {
	if typ != websocket.TextMessage {
		return fmt.Errorf("digest message is %s, want text", typ)
	}
	f := strings.Fields(string(msg))
	if len(f) != 4 || f[0] != "digest" {
		return fmt.Errorf("want a digest message, got %.80q", msg)
	}
	sum := sha256.Sum256(want)
	if f[1] != wantType.String() || f[2] != strconv.Itoa(len(want)) || f[3] != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("peer received %s of %s bytes with sha256 %s; we sent %s of %d bytes with sha256 %x",
			f[1], f[2], f[3], wantType, len(want), sum)
	}
	return nil
}

// sameBytes describes the first difference between got and want.
func sameBytes(what string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%s differs: %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}

// closeNormal ends a case that went well with 1000 and checks that the
// closing handshake completed.
func closeNormal(oc *ourConn) error {
	return closeAndCheck(oc, websocket.StatusNormalClosure, "")
}

// closeAndCheck closes with code and reason, then checks that the peer
// answered with a close frame (Close itself gives up silently after the
// close timeout).
func closeAndCheck(oc *ourConn, code websocket.StatusCode, reason string) error {
	if err := oc.c.Close(code, reason); err != nil {
		return fmt.Errorf("Close(%d): %w", code, err)
	}
	var ce *websocket.CloseError
	if err := oc.finalErr(); !errors.As(err, &ce) || ce.Code == websocket.StatusAbnormalClosure {
		return fmt.Errorf("closing handshake did not complete: %v", err)
	}
	if oc.sniff.in.count(opClose) == 0 {
		return errors.New("no close frame came back from the peer")
	}
	return nil
}

// readUntilClosed reads (and drops) messages until the connection ends and
// returns that error.
func readUntilClosed(oc *ourConn) error {
	for {
		if _, _, err := oc.read(); err != nil {
			return err
		}
	}
}

// runPingFromPeer waits for the peer's report that its ping was answered,
// and checks on the wire that our pong carried the ping's payload.
func runPingFromPeer(oc *ourConn, _ Case) error {
	typ, msg, err := oc.read()
	if err != nil {
		return fmt.Errorf("waiting for the peer's pong-ok: %w", err)
	}
	f := strings.Fields(string(msg))
	if typ != websocket.TextMessage || len(f) < 1 || len(f) > 2 || f[0] != "pong-ok" {
		return fmt.Errorf("want pong-ok, got %s %.80q", typ, msg)
	}
	pings, pongs := oc.sniff.in.controls(opPing), oc.sniff.out.controls(opPong)
	if len(pings) == 0 {
		return errors.New("no ping frame arrived from the peer")
	}
	if len(pongs) < len(pings) {
		return fmt.Errorf("%d pings arrived, we sent %d pongs", len(pings), len(pongs))
	}
	for i := range pings {
		if !bytes.Equal(pings[i], pongs[i]) {
			return fmt.Errorf("ping %d carried %q, our pong %q", i, pings[i], pongs[i])
		}
	}
	if len(f) == 2 {
		want, err := hex.DecodeString(f[1])
		if err != nil || !bytes.Equal(want, pings[len(pings)-1]) {
			return fmt.Errorf("peer says it pinged with %s, the wire carried %q", f[1], pings[len(pings)-1])
		}
	}
	select {
	case p := <-oc.pings:
		if !bytes.Equal(p, pings[0]) {
			return fmt.Errorf("OnPing got %q, the wire carried %q", p, pings[0])
		}
	default:
		return errors.New("OnPing was not called")
	}
	return closeNormal(oc)
}

// runPingFromUs pings while a reader runs, and waits for OnPong with our
// payload.
func runPingFromUs(oc *ourConn, _ Case) error {
	readErr := make(chan error, 1)
	go func() { readErr <- readUntilClosed(oc) }()
	if err := oc.c.SendPing(ourPing); err != nil {
		return fmt.Errorf("SendPing: %w", err)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case p := <-oc.pongs:
		if !bytes.Equal(p, ourPing) {
			return fmt.Errorf("pong carried %q, want %q", p, ourPing)
		}
	case err := <-readErr:
		return fmt.Errorf("connection ended before the pong: %w", err)
	case <-timer.C:
		return errors.New("no pong within 10s")
	}
	if err := closeNormal(oc); err != nil {
		return err
	}
	<-readErr
	return nil
}

// runSubprotocol checks the protocol both sides agreed on.
func runSubprotocol(oc *ourConn, _ Case) error {
	if p := oc.c.Protocol(); p != expectedProtocol {
		return fmt.Errorf("our Protocol() is %q, want %q", p, expectedProtocol)
	}
	typ, msg, err := oc.read()
	if err != nil {
		return fmt.Errorf("waiting for the peer's protocol message: %w", err)
	}
	if want := "protocol " + expectedProtocol; typ != websocket.TextMessage || string(msg) != want {
		return fmt.Errorf("peer says %s %.80q, want %q", typ, msg, want)
	}
	return closeNormal(oc)
}

// runCloseFromUs closes with a code and a reason; the peer checks them.
func runCloseFromUs(oc *ourConn, _ Case) error {
	return closeAndCheck(oc, closeFromUs.code, closeFromUs.reason)
}

// runCloseFromPeer checks the code and reason of the peer's close.
func runCloseFromPeer(oc *ourConn, _ Case) error {
	err := readUntilClosed(oc)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("read ended with %v, want a close error", err)
	}
	if ce.Code != closeFromPeer.code || ce.Reason != closeFromPeer.reason {
		return fmt.Errorf("got close %d %q, want %d %q", ce.Code, ce.Reason, closeFromPeer.code, closeFromPeer.reason)
	}
	oc.sniff.awaitOut(func() bool { return oc.sniff.out.count(opClose) >= 1 })
	if n := oc.sniff.out.count(opClose); n != 1 {
		return fmt.Errorf("we sent %d close frames, want 1 (the echo)", n)
	}
	if err := oc.finalErr(); websocket.CloseStatus(err) != closeFromPeer.code {
		return fmt.Errorf("connection ended with %v, want the peer's close", err)
	}
	return nil
}

// runOurClient runs case c with our client against a peer's server at base
// (ws://host:port); the peer learns the case from the path /KIND/NAME.
func runOurClient(ctx context.Context, base string, api API, c Case) error {
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	var sn *sniffConn
	opts := ourClientOptions(c)
	opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sn = newClientSniff(nc)
		return sn, nil
	}
	url := base + "/" + string(c.Kind) + "/" + c.Name
	var oc *ourConn
	if api == APIBlocking {
		conn, _, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			return fmt.Errorf("Dial: %w", err)
		}
		oc = newOurConn(ctx, conn, api, sn)
	} else {
		conn := websocket.NewClient(url, opts)
		oc = newOurConn(ctx, conn, api, nil)
		if err := conn.StartContext(ctx); err != nil {
			return fmt.Errorf("Start: %w", err)
		}
		oc.sniff = sn // set by the dial inside Start
	}
	defer oc.c.CloseNow()
	return runCase(oc, c)
}
