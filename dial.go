package websocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ClientOptions configures the client side of a connection, as websocket-driver's
// make-client keyword arguments do. The zero value is ready to use.
type ClientOptions struct {
	// MaxLength is the largest message accepted, as in ServerOptions.
	MaxLength int64

	// Protocols are the subprotocols offered, in order of preference. The
	// server's choice is available from Conn.Protocol.
	Protocols []string

	// Header holds extra request headers, such as Origin, Authorization or
	// cookies. Headers the handshake itself sets are ignored.
	Header http.Header

	// TLSConfig is used for wss:// URLs; nil means the defaults. Its
	// ServerName defaults to the URL's host.
	TLSConfig *tls.Config

	// NetDialContext opens the TCP connection (to the proxy, if there is
	// one); nil means a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// CloseTimeout bounds the closing handshake; 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Compression offers permessage-deflate; nil offers nothing.
	Compression *CompressionOptions

	// Proxy picks the proxy for a connection (proxy.go), given the
	// handshake as an HTTP request whose URL is the WebSocket URL with ws
	// as http and wss as https, so that net/http's helpers apply: nil means
	// http.ProxyFromEnvironment (HTTP_PROXY for ws://, HTTPS_PROXY for
	// wss://, NO_PROXY; never for localhost or loopback addresses), and
	// http.ProxyURL(u) always uses u. A nil URL means no proxy: a func
	// returning nil, nil turns the environment's proxy off. Proxy URLs may
	// be http:// (CONNECT, with Basic credentials from the URL's userinfo),
	// socks5:// (names resolved here) or socks5h:// (resolved by the proxy).
	Proxy func(*http.Request) (*url.URL, error)

	// BorrowMessageData lends Message.Data to OnMessage instead of giving
	// it away, as in ServerOptions: Data is then only valid until the
	// handler returns and may alias buffers reused by other connections.
	BorrowMessageData bool

	// Logger receives the library's diagnostics, as in ServerOptions; nil
	// means slog.Default().
	Logger *slog.Logger

	// WriteTimeout bounds every write, as in ServerOptions.
	WriteTimeout time.Duration

	// PingInterval turns keepalive on, as in ServerOptions; 0 leaves it
	// off.
	PingInterval time.Duration

	// PongTimeout is how long a keepalive ping waits for a sign of life, as
	// in ServerOptions; 0 means PingInterval.
	PongTimeout time.Duration

	// HTTP2, when set, carries wss:// connections over HTTP/2 (RFC 8441)
	// where the server allows it, as streams of the HTTP/2 connections
	// that the HTTP2Client shares between all the Dials given it: many
	// WebSockets to one origin then share one TCP and TLS connection
	// (opened with these options' TLSConfig, NetDialContext and Proxy).
	// Where the server does not speak HTTP/2 or does not advertise
	// extended CONNECT, the connection is made over HTTP/1.1 as without
	// it. nil means HTTP/1.1 only; ws:// URLs always use it.
	HTTP2 *HTTP2Client
}

// NewClient returns the client side of a connection to url (ws:// or
// wss://), as websocket-driver's make-client: nothing is sent until Start, so
// handlers can be registered first. opts may be nil.
func NewClient(url string, opts *ClientOptions) *Conn {
	if opts == nil {
		opts = &ClientOptions{}
	}
	c := newConn(true, opts.MaxLength, opts.CloseTimeout)
	c.borrow, c.logger = opts.BorrowMessageData, opts.Logger
	c.configureBounds(opts.WriteTimeout, opts.PingInterval, opts.PongTimeout)
	c.hs = &handshakeInputs{url: url, clientOpt: *opts}
	return c
}

// Dial opens a WebSocket connection to url (ws:// or wss://) for use with
// the blocking API. ctx bounds the dial and the handshake. If the server
// does not switch protocols the error is a *HandshakeError holding its
// status and response; the response is returned in either case when there
// was one. opts may be nil.
func Dial(ctx context.Context, url string, opts *ClientOptions) (*Conn, *http.Response, error) {
	c := NewClient(url, opts)
	resp, err := c.dial(ctx)
	if err != nil {
		c.finish(err)
		return nil, resp, err
	}
	c.flushed.Store(true)
	return c, resp, nil
}

// dial connects and does the client's opening handshake (RFC 6455 §4.1).
func (c *Conn) dial(ctx context.Context) (*http.Response, error) {
	hs := c.hs
	c.hs = nil
	opts := &hs.clientOpt
	u, err := url.Parse(hs.url)
	if err != nil {
		return nil, fmt.Errorf("websocket: bad URL: %w", err)
	}
	secure := false
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		secure = true
	default:
		return nil, fmt.Errorf("websocket: URL scheme must be ws or wss, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("websocket: URL %q has no host", hs.url)
	}
	if u.Fragment != "" {
		return nil, errors.New("websocket: URL must not have a fragment")
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if secure {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var nc net.Conn
	if secure && opts.HTTP2 != nil {
		resp, used, tc, err := c.dialStream(ctx, u, addr, opts)
		if used {
			return resp, err
		}
		if tc != nil {
			nc = tc // the server chose HTTP/1.1 on this TLS connection
		}
	}
	if nc == nil {
		// HTTP/2 cannot carry this handshake: ask for HTTP/1.1 only.
		if nc, err = dialSecure(ctx, opts, u, secure, addr, "http/1.1"); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			nc.Close()
		}
	}()

	g, err := startIO(ctx, nc, bothDeadlines)
	if err != nil {
		return nil, err
	}
	resp, buffered, err := c.handshake(nc, u, opts)
	if err = g.end(err); err != nil {
		return resp, err
	}
	if err := c.opened(nc, buffered); err != nil {
		return resp, err // closed while dialing
	}
	ok = true
	return resp, nil
}

// handshake sends the request and checks the response (RFC 6455 §4.1).
func (c *Conn) handshake(nc net.Conn, u *url.URL, opts *ClientOptions) (*http.Response, []byte, error) {
	key := newHandshakeKey()
	req := make([]byte, 0, 512)
	req = append(req, "GET "+u.RequestURI()+" HTTP/1.1\r\nHost: "+u.Host+"\r\n"...)
	req = append(req, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n"...)
	if len(opts.Protocols) > 0 {
		req = append(req, "Sec-WebSocket-Protocol: "+strings.Join(opts.Protocols, ", ")+"\r\n"...)
	}
	if offer := clientExtensionOffer(opts.Compression); offer != "" {
		req = append(req, "Sec-WebSocket-Extensions: "+offer+"\r\n"...)
	}
	req = appendExtraHeaders(req, opts.Header)
	req = append(req, "\r\n"...)
	if _, err := nc.Write(req); err != nil {
		return nil, nil, fmt.Errorf("websocket: sending the handshake: %w", err)
	}

	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		reason := strings.TrimSpace(string(body))
		if reason == "" {
			reason = resp.Status
		}
		return resp, nil, &HandshakeError{StatusCode: resp.StatusCode, Reason: reason, Response: resp}
	}
	fail := func(format string, args ...any) (*http.Response, []byte, error) {
		return resp, nil, &HandshakeError{StatusCode: resp.StatusCode, Reason: fmt.Sprintf(format, args...), Response: resp}
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") {
		return fail(`response "Upgrade" header is %q, not websocket`, resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fail(`response "Connection" header is %q, not Upgrade`, resp.Header.Get("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return fail("Sec-WebSocket-Accept is %q, want %q", got, want)
	}
	if err := c.checkAgreement(resp.Header, opts); err != nil {
		return fail("%v", err)
	}
	var buffered []byte
	if n := br.Buffered(); n > 0 {
		buffered, _ = br.Peek(n)
	}
	return resp, buffered, nil
}

// checkAgreement checks and takes what the server's handshake response
// agreed to, over any transport: the subprotocol and the extensions.
func (c *Conn) checkAgreement(h http.Header, opts *ClientOptions) error {
	if p := h.Values("Sec-WebSocket-Protocol"); len(p) > 0 {
		i := slices.Index(opts.Protocols, p[0])
		if len(p) > 1 || i < 0 {
			return fmt.Errorf("server chose subprotocol %q, which was not offered", strings.Join(p, ", "))
		}
		c.subprotocol = opts.Protocols[i] // ours: the response is not kept
	}
	return c.acceptClientExtensions(h.Values("Sec-WebSocket-Extensions"), opts.Compression)
}

// dialSecure opens the connection to addr (host:port of u), through the
// proxy that opts picks, with TLS for wss:// offering the ALPN protocols
// protos.
func dialSecure(ctx context.Context, opts *ClientOptions, u *url.URL, secure bool, addr string, protos ...string) (net.Conn, error) {
	nc, err := dialTCP(ctx, opts, u, secure, addr)
	if err != nil || !secure {
		return nc, err
	}
	cfg := &tls.Config{}
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = protos
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket: TLS handshake: %w", err)
	}
	return tc, nil
}
