package upgrade

import "net/textproto"

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTokenByte reports whether c may appear in a token (RFC 9110 §5.6.2):
// a visible ASCII character other than a delimiter.
func isTokenByte(c byte) bool { return tokenByte[c] }

var tokenByte = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range "\"(),/:;<=>?@[\\]{}" {
		t[c] = false
	}
	return t
}()

// isValueByte reports whether c may appear in a field value (RFC 9110
// §5.5): visible ASCII, space, tab or obs-text.
func isValueByte(c byte) bool { return c == '\t' || (c >= ' ' && c != 0x7f) }

// validHostByte holds the bytes net/http's server allows in a Host header:
// those of a reg-name, an IP literal, a port and percent-encoding.
var validHostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

// equalFold reports whether b is lower, ignoring ASCII case; lower must
// be lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// commonKeys interns the canonical names of the headers a handshake
// usually carries, so that they cost no allocation.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Host", "Connection", "Upgrade", "Origin", "User-Agent", "Accept",
		"Accept-Encoding", "Accept-Language", "Cache-Control", "Pragma",
		"Cookie", "Authorization", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded",
		"Content-Length", "Referer",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns the canonical form of the header name b (whose
// string form is s), as net/http's parser makes it.
func canonicalKey(b []byte, s string) string {
	var scratch [64]byte
	if len(b) <= len(scratch) {
		upper := true
		for i, c := range b {
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			scratch[i] = c
			upper = c == '-'
		}
		if k, ok := commonKeys[string(scratch[:len(b)])]; ok {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(s)
}
