package websocket

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// handshakeGUID is the fixed GUID of RFC 6455 §1.3, hashed with the client's
// key to prove the server speaks WebSocket.
const handshakeGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(handshakeGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// newHandshakeKey returns a fresh Sec-WebSocket-Key: 16 random bytes in
// base64 (RFC 6455 §4.1).
func newHandshakeKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// validHandshakeKey reports whether key is base64 of 16 bytes.
func validHandshakeKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

// headerTokens returns the comma-separated tokens of every value of the
// header name, trimmed of whitespace, empty elements dropped.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// headerHasToken reports whether the header name lists token, compared
// case-insensitively (as Connection and Upgrade are, RFC 7230 §6.1, §6.7).
func headerHasToken(h http.Header, name, token string) bool {
	for _, t := range headerTokens(h, name) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}

// HandshakeError reports a failed opening handshake. On the client it
// carries the server's HTTP status and response (StatusCode 101 with a
// Reason when the server agreed but its answer broke the protocol). On the
// server StatusCode is the status the client was answered with and Response
// is nil.
type HandshakeError struct {
	StatusCode int
	Reason     string
	Response   *http.Response
}

// Error describes the status and the reason.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket: handshake failed: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Reason)
}
