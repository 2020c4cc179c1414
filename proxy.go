package websocket

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
)

// This file is the client's way out through a proxy: which proxy a URL
// takes (ClientOptions.Proxy, by default the environment as net/http reads
// it), and the tunnel to the target through an HTTP proxy (CONNECT, RFC 9110
// §9.3.6) or a SOCKS5 proxy (RFC 1928, with RFC 1929 user/password). The
// tunnel carries the handshake, and for wss:// the TLS session with the
// target, exactly as a direct TCP connection would.

// ProxyError reports that a proxy refused to open the tunnel to the target,
// or broke its protocol while doing so. Network errors reaching the proxy
// are returned wrapped, not as a ProxyError.
type ProxyError struct {
	// Proxy is the proxy's URL, with any password redacted.
	Proxy string
	// StatusCode is an HTTP proxy's answer to CONNECT; 0 for SOCKS5 or when
	// the proxy gave no status.
	StatusCode int
	// SOCKSReply is a SOCKS5 proxy's reply code (RFC 1928 §6, REP); 0 for an
	// HTTP proxy or when the proxy gave none.
	SOCKSReply int
	// Reason says what went wrong, in words.
	Reason string
}

// Error names the proxy and says why it failed.
func (e *ProxyError) Error() string {
	return "websocket: proxy " + e.Proxy + ": " + e.Reason
}

// proxyRequest presents the WebSocket URL to a Proxy function as the HTTP
// request the handshake is: ws:// as http:// and wss:// as https://, so that
// http.ProxyFromEnvironment applies HTTP_PROXY to the first and HTTPS_PROXY
// to the second, as it would for the same request made by net/http.
func proxyRequest(u *url.URL, secure bool) *http.Request {
	pu := *u
	pu.Scheme = "http"
	if secure {
		pu.Scheme = "https"
	}
	return &http.Request{Method: http.MethodGet, URL: &pu, Host: u.Host, Header: http.Header{}}
}

// proxyFor returns the proxy that proxy (nil: the environment) picks for
// the WebSocket URL u, or nil to connect directly.
func proxyFor(u *url.URL, secure bool, proxy func(*http.Request) (*url.URL, error)) (*url.URL, error) {
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	p, err := proxy(proxyRequest(u, secure))
	if err != nil {
		return nil, fmt.Errorf("websocket: choosing a proxy: %w", err)
	}
	if p == nil {
		return nil, nil
	}
	switch p.Scheme {
	case "http", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("websocket: proxy %s: scheme %q is not supported (use http, socks5 or socks5h)", p.Redacted(), p.Scheme)
	}
	if p.Hostname() == "" {
		return nil, fmt.Errorf("websocket: proxy %s has no host", p.Redacted())
	}
	return p, nil
}

// dialTCP opens the byte stream the handshake goes over to addr (host:port
// of u): a TCP connection, directly or through the proxy that opts.Proxy
// picks. opts.NetDialContext opens the TCP connection either way.
func dialTCP(ctx context.Context, opts *ClientOptions, u *url.URL, secure bool, addr string) (net.Conn, error) {
	proxy, err := proxyFor(u, secure, opts.Proxy)
	if err != nil {
		return nil, err
	}
	dialer := opts.NetDialContext
	if dialer == nil {
		dialer = (&net.Dialer{}).DialContext
	}
	if proxy == nil {
		nc, err := dialer(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("websocket: dial %s: %w", addr, err)
		}
		return nc, nil
	}
	port := proxy.Port()
	if port == "" {
		port = "80"
		if proxy.Scheme != "http" {
			port = "1080"
		}
	}
	paddr := net.JoinHostPort(proxy.Hostname(), port)
	nc, err := dialer(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("websocket: dial proxy %s: %w", proxy.Redacted(), err)
	}
	g, err := startIO(ctx, nc, bothDeadlines)
	if err == nil {
		if proxy.Scheme == "http" {
			err = httpConnect(nc, proxy, addr)
		} else {
			err = socksConnect(ctx, nc, proxy, addr)
		}
		err = g.end(err)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// httpConnect asks the HTTP proxy on nc for a tunnel to addr.
func httpConnect(nc net.Conn, proxy *url.URL, addr string) error {
	if _, err := nc.Write(connectRequest(addr, proxy.User)); err != nil {
		return fmt.Errorf("websocket: proxy %s: sending CONNECT: %w", proxy.Redacted(), err)
	}
	// The target speaks only after the client does (the handshake or TLS's
	// ClientHello), so the proxy's answer is all there is to read, and a
	// buffer may read past it only if the proxy broke that rule.
	return readConnectResponse(bufio.NewReaderSize(nc, 1024), proxy)
}

// connectRequest is the CONNECT request for addr, with the proxy URL's
// userinfo as Basic credentials (RFC 9110 §11.7.2, RFC 7617).
func connectRequest(addr string, user *url.Userinfo) []byte {
	req := []byte("CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n")
	if user != nil {
		pass, _ := user.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(user.Username() + ":" + pass))
		req = append(req, "Proxy-Authorization: Basic "+cred+"\r\n"...)
	}
	return append(req, "\r\n"...)
}

// readConnectResponse reads the proxy's answer to CONNECT: any 2xx opens
// the tunnel (RFC 9110 §15.3); anything else is a *ProxyError.
func readConnectResponse(br *bufio.Reader, proxy *url.URL) error {
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("websocket: proxy %s: reading the answer to CONNECT: %w", proxy.Redacted(), err)
	}
	// The body is never read: a 2xx answer to CONNECT has none, whatever
	// its Content-Length says (RFC 9110 §9.3.6), and after any other the
	// connection is dropped.
	if resp.StatusCode/100 != 2 {
		reason := "refused CONNECT: " + resp.Status
		// 407 is the status for this (RFC 9110 §15.5.8), but some proxies
		// (tinyproxy 1.11, for one) answer bad credentials with 401.
		if resp.StatusCode == http.StatusProxyAuthRequired || resp.StatusCode == http.StatusUnauthorized {
			if proxy.User == nil {
				reason += ": proxy authentication is required; put user:password@ in the proxy URL"
			} else {
				reason += ": proxy authentication is required, and the proxy refused the user and password in the proxy URL"
			}
		}
		return &ProxyError{Proxy: proxy.Redacted(), StatusCode: resp.StatusCode, Reason: reason}
	}
	if br.Buffered() > 0 {
		return &ProxyError{Proxy: proxy.Redacted(), StatusCode: resp.StatusCode, Reason: "sent data after its answer to CONNECT, before the client spoke"}
	}
	return nil
}

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socksVersion      = 5
	socksNoAuth       = 0x00
	socksUserPass     = 0x02
	socksNoMethod     = 0xff
	socksCmdConnect   = 0x01
	socksAtypIPv4     = 0x01
	socksAtypDomain   = 0x03
	socksAtypIPv6     = 0x04
	socksAuthVersion  = 0x01
	socksReplySuccess = 0x00
)

// socksReplies are RFC 1928 §6's words for the reply codes.
var socksReplies = [...]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// socksConnect asks the SOCKS5 proxy on nc for a connection to addr. With
// socks5 the client resolves a host name itself; with socks5h the proxy
// does.
func socksConnect(ctx context.Context, nc net.Conn, proxy *url.URL, addr string) error {
	perr := func(reply int, format string, args ...any) error {
		return &ProxyError{Proxy: proxy.Redacted(), SOCKSReply: reply, Reason: fmt.Sprintf(format, args...)}
	}
	ioErr := func(what string, err error) error {
		return fmt.Errorf("websocket: proxy %s: %s: %w", proxy.Redacted(), what, err)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("websocket: bad port in %q", addr)
	}
	if _, err := netip.ParseAddr(host); err != nil && proxy.Scheme == "socks5" {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("websocket: resolving %s for SOCKS5 (socks5h:// leaves it to the proxy): %w", host, err)
		}
		host = ips[0].Unmap().String()
	}
	req, err := socksConnectRequest(host, uint16(port))
	if err != nil {
		return err
	}
	if _, err := nc.Write(socksGreeting(proxy.User)); err != nil {
		return ioErr("sending the greeting", err)
	}
	var b [2]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return ioErr("reading the method choice", err)
	}
	switch {
	case b[0] != socksVersion:
		return perr(0, "not a SOCKS5 proxy (version %d)", b[0])
	case b[1] == socksNoAuth:
	case b[1] == socksUserPass && proxy.User != nil:
		auth, err := socksAuthRequest(proxy.User)
		if err != nil {
			return err
		}
		if _, err := nc.Write(auth); err != nil {
			return ioErr("sending user and password", err)
		}
		if _, err := io.ReadFull(nc, b[:]); err != nil {
			return ioErr("reading the authentication status", err)
		}
		if b[1] != 0 {
			return perr(0, "proxy authentication failed: the proxy refused the user and password in the proxy URL")
		}
	case b[1] == socksNoMethod && proxy.User == nil:
		return perr(0, "proxy authentication is required; put user:password@ in the proxy URL")
	default:
		return perr(0, "the proxy accepts none of the offered authentication methods (it chose %#x)", b[1])
	}
	if _, err := nc.Write(req); err != nil {
		return ioErr("sending CONNECT", err)
	}
	return readSocksReply(nc, proxy)
}

// socksGreeting offers no authentication, and user/password when the proxy
// URL has a user (RFC 1928 §3).
func socksGreeting(user *url.Userinfo) []byte {
	if user == nil {
		return []byte{socksVersion, 1, socksNoAuth}
	}
	return []byte{socksVersion, 2, socksNoAuth, socksUserPass}
}

// socksAuthRequest is RFC 1929's user/password request.
func socksAuthRequest(user *url.Userinfo) ([]byte, error) {
	name := user.Username()
	pass, _ := user.Password()
	if len(name) == 0 || len(name) > 255 || len(pass) > 255 {
		return nil, errors.New("websocket: a SOCKS5 user name must have 1 to 255 bytes and a password at most 255")
	}
	req := []byte{socksAuthVersion, byte(len(name))}
	req = append(req, name...)
	req = append(req, byte(len(pass)))
	return append(req, pass...), nil
}

// socksConnectRequest is the CONNECT request for host (an IP address or a
// name for the proxy to resolve) and port (RFC 1928 §4, §5).
func socksConnectRequest(host string, port uint16) ([]byte, error) {
	req := []byte{socksVersion, socksCmdConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Is4() {
			req = append(req, socksAtypIPv4)
		} else {
			req = append(req, socksAtypIPv6)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) == 0 || len(host) > 255 {
			return nil, fmt.Errorf("websocket: host name %q does not fit SOCKS5 (1 to 255 bytes)", host)
		}
		req = append(req, socksAtypDomain, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, port), nil
}

// readSocksReply reads the proxy's reply to CONNECT, including the bound
// address that follows it, so that the tunnel starts clean.
func readSocksReply(r io.Reader, proxy *url.URL) error {
	perr := func(reply int, format string, args ...any) error {
		return &ProxyError{Proxy: proxy.Redacted(), SOCKSReply: reply, Reason: fmt.Sprintf(format, args...)}
	}
	ioErr := func(err error) error {
		return fmt.Errorf("websocket: proxy %s: reading the reply to CONNECT: %w", proxy.Redacted(), err)
	}
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return ioErr(err)
	}
	if h[0] != socksVersion {
		return perr(0, "not a SOCKS5 reply (version %d)", h[0])
	}
	if rep := int(h[1]); rep != socksReplySuccess {
		text := "unknown reply"
		if rep < len(socksReplies) {
			text = socksReplies[rep]
		}
		return perr(rep, "refused CONNECT: %s (reply %d)", text, rep)
	}
	var n int
	switch h[3] {
	case socksAtypIPv4:
		n = 4
	case socksAtypIPv6:
		n = 16
	case socksAtypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return ioErr(err)
		}
		n = int(l[0])
	default:
		return perr(0, "reply has unknown address type %d", h[3])
	}
	if _, err := io.ReadFull(r, make([]byte, n+2)); err != nil {
		return ioErr(err)
	}
	return nil
}
