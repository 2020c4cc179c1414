package websocket

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// ServerOptions configures the server side of a connection, as websocket-driver's
// make-server keyword arguments do. The zero value is ready to use.
type ServerOptions struct {
	// MaxLength is the largest message accepted, in bytes, whole or summed
	// over its fragments (after decompression when compression is on). A
	// larger message closes the connection with 1009. 0 means
	// DefaultMaxLength; a negative value means no limit.
	MaxLength int64

	// Protocols are the subprotocols the server accepts (websocket-driver's
	// accept-protocols). The first protocol in the client's offer that is in
	// this list is chosen; if none is, the response names none and the
	// connection proceeds without one.
	Protocols []string

	// Header holds extra headers for the handshake response (websocket-driver's
	// additional-headers). Headers the handshake itself sets are ignored.
	Header http.Header

	// OriginPatterns lists the browser origins allowed besides the server's
	// own, as path.Match patterns over the origin's host[:port], such as
	// "example.com", "*.example.com" or "localhost:*"; a pattern containing
	// "://" is matched against the whole origin instead. A request without an
	// Origin header (a non-browser client) is always allowed. A refused
	// origin gets 403 Forbidden.
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts every origin. It exposes the server to
	// cross-site WebSocket hijacking if it relies on cookies.
	InsecureSkipOriginCheck bool

	// CloseTimeout bounds the closing handshake; 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Compression turns permessage-deflate on when the client offers it;
	// nil leaves it off.
	Compression *CompressionOptions

	// BorrowMessageData makes the event API lend Message.Data instead of
	// giving it away: Data is then only valid until OnMessage returns, and
	// may alias buffers that are reused by other connections, which saves
	// an allocation and a copy per message. Set it only when no handler
	// keeps Data (or anything sliced from it) after returning. By default
	// each message's Data is a new slice that the handler owns.
	BorrowMessageData bool

	// Logger receives the library's diagnostics: a panic in an event
	// handler (at error level, with the panic value and stack) and, at
	// debug level, connections failed for breaking the protocol and
	// refused handshakes. nil means slog.Default().
	Logger *slog.Logger

	// CheckOrigin, when set, replaces the default origin policy (and
	// OriginPatterns and InsecureSkipOriginCheck): it is called with the
	// handshake request, and false refuses it with 403 Forbidden and the
	// reason "origin not allowed". It must not keep r.
	CheckOrigin func(r *http.Request) bool

	// Authorize, when set, is called with the handshake request after the
	// protocol checks and the origin policy passed, before the upgrade. A
	// non-nil error refuses the handshake: with the status of a
	// *HandshakeError in the error's chain (such as 401 Unauthorized) and
	// its Reason, or else with 403 Forbidden and the error's text. It must
	// not keep r.
	Authorize func(r *http.Request) error

	// WriteTimeout bounds every write of a frame or message (Send*, Write,
	// WritePrepared, each fragment of a NextWriter, control frames), on top
	// of any context deadline: the earlier wins. A write that hits it
	// returns ErrWriteTimeout and drops the connection. 0 means
	// DefaultWriteTimeout; a negative value means no bound.
	WriteTimeout time.Duration

	// PingInterval turns keepalive on: a ping is sent every PingInterval,
	// and a peer from which nothing arrives within PongTimeout of a ping is
	// dropped with StatusAbnormalClosure and ErrPongTimeout (see
	// "Keepalive" in the package documentation). 0, the default, leaves it
	// off.
	PingInterval time.Duration

	// PongTimeout is how long after a keepalive ping the peer has to show
	// it is alive; 0 means PingInterval. Unused without PingInterval.
	PongTimeout time.Duration
}

// NewServer returns the server side of a connection for the handshake
// request r, as websocket-driver's make-server: nothing is sent until Start, so
// handlers can be registered first. opts may be nil.
//
// Once the handshake is done the connection keeps nothing of r, w or
// their buffers: the request's headers can be collected while the
// connection lives, unless a handler closure refers to r. The request's
// size is bounded by the http.Server that parsed it: its MaxHeaderBytes
// (net/http's default is 1 MB) caps the headers a client may send, and a
// WebSocket server seldom needs more than a few KiB.
func NewServer(w http.ResponseWriter, r *http.Request, opts *ServerOptions) *Conn {
	if opts == nil {
		opts = &ServerOptions{}
	}
	c := newConn(false, opts.MaxLength, opts.CloseTimeout)
	c.borrow, c.logger = opts.BorrowMessageData, opts.Logger
	c.configureBounds(opts.WriteTimeout, opts.PingInterval, opts.PongTimeout)
	c.hs = &handshakeInputs{w: w, r: r, serverOpt: *opts}
	return c
}

// Accept does the server's opening handshake for r and returns the open
// connection, for use with the blocking API (Read, Write, ...). If the
// request is not an acceptable WebSocket handshake, Accept answers it with
// an HTTP error (400, 403, 405 or 426, with the reason in the body) and
// returns a *HandshakeError. ServerOptions.CheckOrigin and Authorize let
// the caller refuse a request (403 by default, or another status through a
// *HandshakeError). opts may be nil.
//
// The returned connection keeps nothing of r; but the handler calling
// Accept has r on its stack for as long as it runs the connection, so r
// and all its headers stay in memory that long. Bound them with the
// http.Server's MaxHeaderBytes (net/http's default is 1 MB), or run the
// connection from a function that does not hold r.
//
// Accept also answers a WebSocket over HTTP/2 (an extended CONNECT, RFC
// 8441) with the same options and policy; the connection then travels on
// the request's stream, which net/http ends when the handler returns: the
// handler must not return before the connection is done (see Done).
func Accept(w http.ResponseWriter, r *http.Request, opts *ServerOptions) (*Conn, error) {
	c := NewServer(w, r, opts)
	if err := c.accept(); err != nil {
		c.logDebug("websocket: opening handshake failed", "client", false, "error", err)
		c.finish(err)
		return nil, err
	}
	c.flushed.Store(true)
	return c, nil
}

// refuse answers a bad handshake with an HTTP error and returns the error.
func refuse(w http.ResponseWriter, status int, reason string, header ...string) error {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	http.Error(w, "websocket: "+reason, status)
	return &HandshakeError{StatusCode: status, Reason: reason}
}

// handshakeReply is what the server answers an acceptable opening
// handshake with, whatever carries it: checkHandshake decides it, and the
// transport (hijackHTTP1 or acceptStream) puts it on the wire.
type handshakeReply struct {
	key        string // the client's Sec-WebSocket-Key (HTTP/1.1 only)
	extensions string // the Sec-WebSocket-Extensions answer, or ""
	header     http.Header
	stream     bool // an HTTP/2 extended CONNECT (RFC 8441)
}

// accept answers the handshake request: one policy (checkHandshake) for
// every transport, then the transport step, which takes over the TCP
// connection for HTTP/1.1 (RFC 6455 §4.2.2) or the request's stream for
// HTTP/2 (RFC 8441 §5).
func (c *Conn) accept() error {
	hs := c.hs
	c.hs = nil
	w, r := hs.w, hs.r
	reply, refused := c.checkHandshake(r, &hs.serverOpt)
	if refused != nil {
		return refuse(w, refused.StatusCode, refused.Reason, refused.header...)
	}
	if reply.stream {
		return c.acceptStream(w, r, reply)
	}
	return c.hijackHTTP1(w, reply)
}

// handshakeRefusal is a refused handshake: the status, the reason and the
// response headers (name, value pairs) that refuse sends.
type handshakeRefusal struct {
	HandshakeError
	header []string
}

func refusal(status int, reason string, header ...string) *handshakeRefusal {
	return &handshakeRefusal{HandshakeError{StatusCode: status, Reason: reason}, header}
}

// checkHandshake is the server's handshake policy, shared by every
// transport: it checks the request (RFC 6455 §4.2.1, or RFC 8441 §5 for an
// HTTP/2 extended CONNECT), applies the origin policy, CheckOrigin and
// Authorize, and negotiates the subprotocol and permessage-deflate. It does
// no I/O: it returns the reply to send, or why the request is refused.
func (c *Conn) checkHandshake(r *http.Request, opts *ServerOptions) (handshakeReply, *handshakeRefusal) {
	var reply handshakeReply
	if r.ProtoMajor >= 2 {
		// RFC 8441 §4, §5: a CONNECT whose :protocol is websocket; there
		// is no Connection, Upgrade or Sec-WebSocket-Key over HTTP/2.
		if r.Method != http.MethodConnect {
			return reply, refusal(http.StatusMethodNotAllowed, "a WebSocket handshake over HTTP/2 must be an extended CONNECT (RFC 8441), not "+r.Method, "Allow", http.MethodConnect)
		}
		if p := r.Header.Get(":protocol"); !strings.EqualFold(p, "websocket") {
			return reply, refusal(http.StatusBadRequest, fmt.Sprintf("extended CONNECT :protocol is %q, not websocket", p))
		}
		reply.stream = true
	} else {
		if r.Method != http.MethodGet {
			return reply, refusal(http.StatusMethodNotAllowed, "handshake method must be GET, not "+r.Method, "Allow", http.MethodGet)
		}
		if !r.ProtoAtLeast(1, 1) {
			return reply, refusal(http.StatusBadRequest, "handshake needs HTTP/1.1 or later, not "+r.Proto)
		}
		if !headerHasToken(r.Header, "Connection", "upgrade") {
			return reply, refusal(http.StatusBadRequest, `"Connection" header must include "Upgrade"`)
		}
		if !headerHasToken(r.Header, "Upgrade", "websocket") {
			return reply, refusal(http.StatusBadRequest, `"Upgrade" header must include "websocket"`)
		}
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
		return reply, refusal(http.StatusUpgradeRequired, fmt.Sprintf("unsupported Sec-WebSocket-Version %q, this server speaks 13", strings.Join(v, ", ")), "Sec-WebSocket-Version", "13")
	}
	if !reply.stream {
		keys := r.Header.Values("Sec-WebSocket-Key")
		if len(keys) != 1 || !validHandshakeKey(keys[0]) {
			return reply, refusal(http.StatusBadRequest, `"Sec-WebSocket-Key" must be one base64-encoded 16-byte value`)
		}
		reply.key = keys[0]
	}
	switch {
	case opts.CheckOrigin != nil:
		if !opts.CheckOrigin(r) {
			return reply, refusal(http.StatusForbidden, "origin not allowed")
		}
	case !opts.InsecureSkipOriginCheck:
		if err := checkOrigin(r, opts.OriginPatterns); err != nil {
			return reply, refusal(http.StatusForbidden, err.Error())
		}
	}
	if opts.Authorize != nil {
		if err := opts.Authorize(r); err != nil {
			status, reason := http.StatusForbidden, err.Error()
			var he *HandshakeError
			if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode <= 599 {
				status, reason = he.StatusCode, he.Reason
				if reason == "" {
					reason = http.StatusText(status)
				}
			}
			return reply, refusal(status, reason)
		}
	}
	c.subprotocol = selectProtocol(headerTokens(r.Header, "Sec-WebSocket-Protocol"), opts.Protocols)
	ext, err := c.negotiateServerExtensions(r.Header.Values("Sec-WebSocket-Extensions"), opts.Compression)
	if err != nil {
		return reply, refusal(http.StatusBadRequest, err.Error())
	}
	reply.extensions, reply.header = ext, opts.Header
	return reply, nil
}

// hijackHTTP1 is the HTTP/1.1 transport step: it takes over the TCP
// connection from net/http and sends the 101 response (RFC 6455 §4.2.2).
func (c *Conn) hijackHTTP1(w http.ResponseWriter, reply handshakeReply) error {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return refuse(w, http.StatusInternalServerError, "cannot take over the connection: "+err.Error())
	}
	// Whatever net/http buffered beyond the request is already ours: a
	// client may send frames right behind its handshake.
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
	}

	resp := make([]byte, 0, 256)
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, acceptKey(reply.key)...)
	resp = append(resp, "\r\n"...)
	if c.subprotocol != "" {
		resp = append(resp, "Sec-WebSocket-Protocol: "+c.subprotocol+"\r\n"...)
	}
	if reply.extensions != "" {
		resp = append(resp, "Sec-WebSocket-Extensions: "+reply.extensions+"\r\n"...)
	}
	resp = appendExtraHeaders(resp, reply.header)
	resp = append(resp, "\r\n"...)
	if _, err := nc.Write(resp); err != nil {
		nc.Close()
		return fmt.Errorf("websocket: writing the handshake response: %w", err)
	}
	err = c.opened(nc, buffered)
	// net/http's serving goroutine lives as long as the handler, and with it
	// the reader and writer it handed over, 4 KiB of buffer each. They are
	// ours now and no longer needed: emptying them lets the buffers go.
	*brw.Reader = bufio.Reader{}
	*brw.Writer = bufio.Writer{}
	return err // non-nil if the connection was closed during the handshake
}

// reservedHeaders are set by the handshake; ServerOptions.Header and
// ClientOptions.Header cannot override them.
var reservedHeaders = []string{
	"Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Key",
	"Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Host",
}

// appendExtraHeaders appends h as header lines, skipping reserved names and
// values that would break the header block.
func appendExtraHeaders(dst []byte, h http.Header) []byte {
	for name, values := range h {
		canon := http.CanonicalHeaderKey(name)
		if slices.Contains(reservedHeaders, canon) {
			continue
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n") || strings.ContainsAny(name, "\r\n: ") {
				continue
			}
			dst = append(dst, canon+": "+v+"\r\n"...)
		}
	}
	return dst
}

// selectProtocol picks the first protocol the client offered that the
// server accepts. It returns the server's own string: the offered one is a
// slice of the request's header, which it would keep in memory for the
// connection's life.
func selectProtocol(offered, accepted []string) string {
	for _, p := range offered {
		if i := slices.Index(accepted, p); i >= 0 {
			return accepted[i]
		}
	}
	return ""
}

// checkOrigin enforces the origin policy: no Origin header (not a browser),
// the server's own origin, or one matching a pattern.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not allowed (it is not a URL with a host)", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = origin
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("origin pattern %q is malformed: %v", p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed; the server allows its own origin %q and OriginPatterns", origin, r.Host)
}
