package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// peerReadLimit lets the Go peers take the 16 MiB cases.
const peerReadLimit = 64 << 20

// fragmentingBufferSize makes gorilla send a message written through
// NextWriter as frames of at most this size: it has no per-Write flush.
const fragmentingBufferSize = 1024

type gorillaLib struct{}

func (gorillaLib) name() string   { return "gorilla" }
func (gorillaLib) title() string  { return "gorilla/websocket" }
func (gorillaLib) module() string { return "github.com/gorilla/websocket" }

// can: gorilla's permessage-deflate always asks for no context takeover in
// both directions and knows no window parameters.
func (gorillaLib) can(c Capability) bool {
	switch c {
	case CanContextTakeover, CanWindowBits, CanAskWindowBits:
		return false
	}
	return true
}

// dial: mode needs no setting, as gorilla has one (PeerDeflateNoContext).
func (gorillaLib) dial(ctx context.Context, url string, protocols []string, fragmenting bool, _ PeerDeflate) (goConn, error) {
	// Offering compression is inert unless our side accepts it (Case.Compression).
	d := gorilla.Dialer{Subprotocols: protocols, HandshakeTimeout: 10 * time.Second, EnableCompression: true}
	if fragmenting {
		d.WriteBufferSize = fragmentingBufferSize
	}
	c, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return newGorillaConn(c), nil
}

func (gorillaLib) accept(w http.ResponseWriter, r *http.Request, fragmenting bool, _ PeerDeflate) (goConn, error) {
	u := gorilla.Upgrader{Subprotocols: []string{expectedProtocol}, EnableCompression: true}
	if fragmenting {
		u.WriteBufferSize = fragmentingBufferSize
	}
	c, err := u.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	return newGorillaConn(c), nil
}

type gorillaConn struct {
	c     *gorilla.Conn
	pongs chan string
}

func newGorillaConn(c *gorilla.Conn) *gorillaConn {
	g := &gorillaConn{c: c, pongs: make(chan string, 4)}
	c.SetReadLimit(peerReadLimit)
	c.SetPongHandler(func(p string) error {
		select {
		case g.pongs <- p:
		default:
		}
		return nil
	})
	return g
}

func (g *gorillaConn) Read(ctx context.Context) (bool, []byte, error) {
	g.c.SetReadDeadline(deadline(ctx))
	typ, p, err := g.c.ReadMessage()
	return typ == gorilla.TextMessage, p, err
}

func gorillaType(text bool) int {
	if text {
		return gorilla.TextMessage
	}
	return gorilla.BinaryMessage
}

func (g *gorillaConn) Write(ctx context.Context, text bool, p []byte) error {
	g.c.SetWriteDeadline(deadline(ctx))
	return g.c.WriteMessage(gorillaType(text), p)
}

func (g *gorillaConn) WriteFragments(ctx context.Context, text bool, chunks [][]byte) error {
	g.c.SetWriteDeadline(deadline(ctx))
	w, err := g.c.NextWriter(gorillaType(text))
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if _, err := w.Write(ch); err != nil {
			return err
		}
	}
	return w.Close()
}

var gorillaPing = []byte("ping from peer")

func (g *gorillaConn) Ping(ctx context.Context) ([]byte, error) {
	if err := g.c.WriteControl(gorilla.PingMessage, gorillaPing, deadline(ctx)); err != nil {
		return nil, err
	}
	select {
	case p := <-g.pongs:
		if p != string(gorillaPing) {
			return nil, errors.New("pong payload differs from the ping's")
		}
		return gorillaPing, nil
	case <-ctx.Done():
		return nil, errNoPong
	}
}

func (g *gorillaConn) CloseHandshake(ctx context.Context, code int, reason string) (string, error) {
	if err := g.c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, reason), deadline(ctx)); err != nil {
		return "", err
	}
	for {
		_, _, err := g.Read(ctx)
		if err == nil {
			continue
		}
		got, gotReason, ok := g.CloseInfo(err)
		if !ok {
			return "", errors.New("no close frame came back: " + err.Error())
		}
		return "handshake done, peer echoed " + closeString(got, gotReason), nil
	}
}

func (g *gorillaConn) CloseInfo(err error) (int, string, bool) {
	var ce *gorilla.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text, true
	}
	return 0, "", false
}

func (g *gorillaConn) Subprotocol() string { return g.c.Subprotocol() }
func (g *gorillaConn) Abort()              { g.c.Close() }

type coderLib struct{}

func (coderLib) name() string   { return "coder" }
func (coderLib) title() string  { return "coder/websocket" }
func (coderLib) module() string { return "github.com/coder/websocket" }

// can: coder does not honour window parameters.
func (coderLib) can(c Capability) bool { return c != CanWindowBits && c != CanAskWindowBits }

// coderMode is coder's setting for a PeerDeflate mode.
func coderMode(mode PeerDeflate) coder.CompressionMode {
	if mode == PeerDeflateNoContext {
		return coder.CompressionNoContextTakeover
	}
	return coder.CompressionContextTakeover
}

func (coderLib) dial(ctx context.Context, url string, protocols []string, _ bool, mode PeerDeflate) (goConn, error) {
	c, _, err := coder.Dial(ctx, url, &coder.DialOptions{
		Subprotocols:    protocols,
		CompressionMode: coderMode(mode),
	})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(peerReadLimit)
	return coderConn{c}, nil
}

func (coderLib) accept(w http.ResponseWriter, r *http.Request, _ bool, mode PeerDeflate) (goConn, error) {
	c, err := coder.Accept(w, r, &coder.AcceptOptions{
		Subprotocols:    []string{expectedProtocol},
		CompressionMode: coderMode(mode),
	})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(peerReadLimit)
	return coderConn{c}, nil
}

// coderConn: coder writes each Write of its Writer as one frame when the
// message is not compressed, so fragments need no configuration.
type coderConn struct{ c *coder.Conn }

func coderType(text bool) coder.MessageType {
	if text {
		return coder.MessageText
	}
	return coder.MessageBinary
}

func (k coderConn) Read(ctx context.Context) (bool, []byte, error) {
	typ, p, err := k.c.Read(ctx)
	return typ == coder.MessageText, p, err
}

func (k coderConn) Write(ctx context.Context, text bool, p []byte) error {
	return k.c.Write(ctx, coderType(text), p)
}

func (k coderConn) WriteFragments(ctx context.Context, text bool, chunks [][]byte) error {
	w, err := k.c.Writer(ctx, coderType(text))
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if _, err := w.Write(ch); err != nil {
			return err
		}
	}
	return w.Close()
}

// Ping: coder chooses the payload itself (a counter), so none is returned.
func (k coderConn) Ping(ctx context.Context) ([]byte, error) { return nil, k.c.Ping(ctx) }

func (k coderConn) CloseHandshake(_ context.Context, code int, reason string) (string, error) {
	// Close waits for the peer's close frame; it fails if none comes.
	if err := k.c.Close(coder.StatusCode(code), reason); err != nil {
		return "", err
	}
	return "handshake done", nil
}

func (k coderConn) CloseInfo(err error) (int, string, bool) {
	var ce coder.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason, true
	}
	return 0, "", false
}

func (k coderConn) Subprotocol() string { return k.c.Subprotocol() }
func (k coderConn) Abort()              { k.c.CloseNow() }

func closeString(code int, reason string) string { return fmt.Sprintf("%d %q", code, reason) }
