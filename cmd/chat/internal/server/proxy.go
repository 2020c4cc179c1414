package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// peer is who a request comes from: the client's address, as far as the
// trusted proxies say, and the proxy it came through, if any.
type peer struct {
	addr string // the client: "ip:port" when direct, "ip" when told by a proxy
	ip   netip.Addr
	via  string // the trusted proxy's address, or ""
	host string // the host the client asked for: Host, or a trusted proxy's X-Forwarded-Host
}

// peerOf finds the real client of r. Only when the TCP peer is a trusted
// proxy are its Forwarded or X-Forwarded-For headers believed; anyone else
// could write anything there. The headers are read from the right (the
// entries the nearest proxies added) and the first address that is not a
// trusted proxy is the client; an entry that is not an address stops the
// walk at the last proxy.
func (s *Server) peerOf(r *http.Request) peer {
	p := peer{addr: r.RemoteAddr, host: r.Host}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return p
	}
	p.ip = ap.Addr().Unmap()
	if !s.trusted(p.ip) {
		return p
	}
	if h := lastValue(r.Header.Values("X-Forwarded-Host")); h != "" {
		p.host = h
	} else if h := forwardedParam(r.Header, "host"); h != "" {
		p.host = h
	}
	chain := forwardedFor(r.Header)
	client := p.ip
	for i := len(chain) - 1; i >= 0; i-- {
		ip, ok := parseForwardedAddr(chain[i])
		if !ok {
			break
		}
		client = ip
		if !s.trusted(ip) {
			break
		}
	}
	if client != p.ip {
		p.via, p.addr, p.ip = r.RemoteAddr, client.String(), client
	}
	return p
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, pfx := range s.cfg.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedFor lists the client addresses a proxy chain reported, oldest
// first: from Forwarded's for= parameters (RFC 7239) if there are any,
// else from X-Forwarded-For.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					out = append(out, strings.Trim(val, `"`))
				}
			}
		}
	}
	if out != nil {
		return out
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// forwardedParam returns the last value of parameter name in Forwarded.
func forwardedParam(h http.Header, name string) string {
	var last string
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, name) {
					last = strings.Trim(val, `"`)
				}
			}
		}
	}
	return last
}

func lastValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	parts := strings.Split(vs[len(vs)-1], ",")
	return strings.TrimSpace(parts[len(parts)-1])
}

// parseForwardedAddr reads one entry of a forwarding header: an IP
// address, possibly with a port, IPv6 possibly in brackets.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
