package websocket

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"
)

// HTTP2Client carries client WebSockets over HTTP/2 (RFC 8441): set it as
// ClientOptions.HTTP2. It keeps the HTTP/2 connections it opens, one per
// origin (more when a server limits its concurrent streams), and opens each
// WebSocket dialled through it as a stream of one of them, so share one
// HTTP2Client between the Dials (and NewClients) to the same origins. A
// connection is opened with the options of the Dial that needs it (TLS
// configuration, dialer, proxy); it closes after a minute without streams.
// An origin that does not speak HTTP/2, or does not advertise extended
// CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL), is dialled over HTTP/1.1
// instead, and not tried over HTTP/2 again for a minute. The zero value is
// ready to use; it is safe for concurrent use.
//
// It sends the extended CONNECT through net/http's HTTP/2 client, whose
// public RoundTrip refuses the :protocol pseudo-header; Go 1.26 hands out
// the connection-level round tripper that sends it (see init). Where that
// is not available (Go 1.27 made it a stub), every Dial falls back to
// HTTP/1.1.
type HTTP2Client struct {
	once    sync.Once
	t1      *http.Transport                                       // owns the HTTP/2 connection pool
	upgrade func(authority string, c *tls.Conn) http.RoundTripper // adds a connection to the pool
	mu      sync.Mutex
	pooled  map[string]http.RoundTripper // origins with a connection in the pool
	http1   map[string]time.Time         // origins to dial over HTTP/1.1, until when
}

// http1Memory is how long an origin found without WebSockets over HTTP/2
// is dialled over HTTP/1.1 straight away.
const http1Memory = time.Minute

// init sets up net/http's HTTP/2 client. Its public RoundTrip refuses the
// :protocol pseudo-header, but the round tripper that its TLSNextProto
// hook returns for a connection sends it as an extended CONNECT. That
// round tripper only uses connections given to it (it never dials), so the
// HTTP2Client dials them itself, with the options of each Dial.
func (h *HTTP2Client) init() {
	h.once.Do(func() {
		h.t1 = &http.Transport{
			ForceAttemptHTTP2:  true,
			DisableCompression: true,
			IdleConnTimeout:    http1Memory,
		}
		h.t1.CloseIdleConnections() // configures HTTP/2, and closes nothing yet
		h.upgrade = h.t1.TLSNextProto["h2"]
	})
}

// CloseIdleConnections closes the HTTP/2 connections that carry no
// WebSocket.
func (h *HTTP2Client) CloseIdleConnections() {
	h.init()
	h.t1.CloseIdleConnections()
}

// useHTTP1 reports whether origin was found without WebSockets over HTTP/2
// recently.
func (h *HTTP2Client) useHTTP1(origin string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.http1[origin]
	if ok && time.Now().After(until) {
		delete(h.http1, origin)
		return false
	}
	return ok
}

func (h *HTTP2Client) rememberHTTP1(origin string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.http1 == nil {
		h.http1 = make(map[string]time.Time)
	}
	h.http1[origin] = time.Now().Add(http1Memory)
	delete(h.pooled, origin)
}

// setPooled records that the pool has a connection to origin, served by
// rt.
func (h *HTTP2Client) setPooled(origin string, rt http.RoundTripper) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pooled == nil {
		h.pooled = make(map[string]http.RoundTripper)
	}
	h.pooled[origin] = rt
}

// pooledRT returns the round tripper of the pool's connections to origin,
// or nil if the pool has none.
func (h *HTTP2Client) pooledRT(origin string) http.RoundTripper {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pooled[origin]
}

// dialStream tries the client's opening handshake over HTTP/2 (RFC 8441
// §4, §5): an extended CONNECT with :protocol websocket, answered with a
// 2xx status, on a pooled connection to the origin or a new one. used is
// false when no HTTP/2 answer came: the caller then dials HTTP/1.1, on tc
// if it is not nil (a TLS connection on which the server chose HTTP/1.1).
func (c *Conn) dialStream(ctx context.Context, u *url.URL, addr string, opts *ClientOptions) (resp *http.Response, used bool, tc net.Conn, err error) {
	h := opts.HTTP2
	h.init()
	if h.useHTTP1(addr) {
		return nil, false, nil, nil
	}
	if rt := h.pooledRT(addr); rt != nil {
		resp, err := c.streamHandshake(ctx, rt, u, opts)
		if resp != nil || ctx.Err() != nil {
			return resp, true, nil, err
		}
		// No pooled connection could take the stream (gone, or at the
		// server's limit of concurrent streams): open another.
	}
	nc, err := dialSecure(ctx, opts, u, true, addr, "h2", "http/1.1")
	if err != nil {
		return nil, true, nil, err
	}
	tlsConn := nc.(*tls.Conn)
	if tlsConn.ConnectionState().NegotiatedProtocol != "h2" {
		h.rememberHTTP1(addr)
		return nil, false, nc, nil
	}
	rt := h.upgrade(addr, tlsConn)
	h.setPooled(addr, rt)
	resp, err = c.streamHandshake(ctx, rt, u, opts)
	if resp != nil || ctx.Err() != nil {
		return resp, true, nil, err
	}
	// HTTP/2 without extended CONNECT: SETTINGS_ENABLE_CONNECT_PROTOCOL
	// was not in the server's first SETTINGS frame (or net/http would not
	// send it, see HTTP2Client). The connection is of no use to us.
	tlsConn.Close()
	h.rememberHTTP1(addr)
	c.logDebug("websocket: no WebSocket over HTTP/2, dialling HTTP/1.1", "origin", addr, "error", err)
	return nil, false, nil, nil
}

// streamHandshake sends the extended CONNECT through rt and checks the
// answer. A nil response means that none came.
func (c *Conn) streamHandshake(ctx context.Context, rt http.RoundTripper, u *url.URL, opts *ClientOptions) (*http.Response, error) {
	ru := *u
	ru.Scheme, ru.Fragment = "https", ""
	header := make(http.Header)
	setExtraHeaders(header, opts.Header)
	header[":protocol"] = []string{"websocket"}
	header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Protocols) > 0 {
		header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Protocols, ", "))
	}
	if offer := clientExtensionOffer(opts.Compression); offer != "" {
		header.Set("Sec-WebSocket-Extensions", offer)
	}
	pr, pw := io.Pipe()
	// The stream outlives ctx, which bounds only the handshake.
	sctx, cancel := context.WithCancel(context.Background())
	var local, remote net.Addr
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		local, remote = i.Conn.LocalAddr(), i.Conn.RemoteAddr()
	}}
	req := (&http.Request{
		Method: http.MethodConnect,
		URL:    &ru,
		Host:   u.Host,
		Header: header,
		Body:   pr,
	}).WithContext(httptrace.WithClientTrace(sctx, trace))

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		done <- result{resp, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		cancel()
		if res = <-done; res.resp != nil {
			res.resp.Body.Close()
		}
		pw.Close()
		return nil, ctx.Err()
	}
	abandon := func() {
		if res.resp != nil {
			res.resp.Body.Close()
		}
		pw.Close()
		cancel()
	}
	if res.err != nil {
		abandon()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, res.err
	}
	resp := res.resp
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		abandon()
		reason := strings.TrimSpace(string(body))
		if reason == "" {
			reason = resp.Status
		}
		return resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: reason, Response: resp}
	}
	if err := c.checkAgreement(resp.Header, opts); err != nil {
		abandon()
		return resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: err.Error(), Response: resp}
	}
	// The body is the connection: the caller gets the response without it.
	out := *resp
	out.Body = http.NoBody
	if err := c.opened(newClientStream(resp.Body, pw, cancel, local, remote), nil); err != nil {
		return &out, err
	}
	return &out, nil
}
