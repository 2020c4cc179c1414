package server

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// checkOrigin is the chat's cross-site WebSocket hijacking defence: a
// request without Origin (not a browser), the server's own origin (its Host,
// or the host the trusted proxy was asked for), or an origin matching one of
// patterns is allowed. The chat checks this itself, rather than through the
// library's OriginPatterns, so that a refusal tells the operator which chat
// flag to use and so that the host a trusted proxy forwarded counts as the
// server's own.
func checkOrigin(r *http.Request, host string, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not allowed: it is not a URL with a host (a page opened from a file? serve it over HTTP)", origin)
	}
	if strings.EqualFold(u.Host, host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = origin
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed: this chat accepts pages from its own address (%s) and from origins given with -allow-origin; "+
		"to accept this one, start chat with -allow-origin %s (or CHAT_ALLOW_ORIGIN=%s)", origin, host, u.Host, u.Host)
}
