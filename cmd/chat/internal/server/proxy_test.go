package server

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestPeerOf(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}}}
	for _, c := range []struct {
		name, remote string
		hdr          http.Header
		addr, via    string
		host         string
	}{
		{"direct, no headers", "192.0.2.1:5000", nil, "192.0.2.1:5000", "", "chat.test"},
		{"untrusted peer's header ignored", "192.0.2.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"evil.test"}}, "192.0.2.1:5000", "", "chat.test"},
		{"trusted proxy", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7", "127.0.0.1:4000", "chat.test"},
		{"spoofed entry left of the real one", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.7"}}, "198.51.100.7", "127.0.0.1:4000", "chat.test"},
		{"chain of trusted proxies", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.7, 10.1.2.3"}}, "198.51.100.7", "127.0.0.1:4000", "chat.test"},
		{"two header lines", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.7", "10.1.2.3"}}, "198.51.100.7", "127.0.0.1:4000", "chat.test"},
		{"Forwarded wins", "127.0.0.1:4000", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https;host=chat.example.com`}, "X-Forwarded-For": {"203.0.113.9"}}, "2001:db8::1", "127.0.0.1:4000", "chat.example.com"},
		{"X-Forwarded-Host", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Host": {"chat.example.com"}}, "198.51.100.7", "127.0.0.1:4000", "chat.example.com"},
		{"garbage stops at the proxy", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"unknown"}}, "127.0.0.1:4000", "", "chat.test"},
	} {
		r := &http.Request{RemoteAddr: c.remote, Header: c.hdr, Host: "chat.test"}
		if r.Header == nil {
			r.Header = http.Header{}
		}
		p := s.peerOf(r)
		if p.addr != c.addr || p.via != c.via || p.host != c.host {
			t.Errorf("%s: got addr %q via %q host %q, want %q via %q host %q", c.name, p.addr, p.via, p.host, c.addr, c.via, c.host)
		}
	}
}
