package websocket

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// acceptStream is the HTTP/2 transport step (RFC 8441 §5): the reply is a
// 200 response on the request's stream, which then carries the
// connection. The handler must keep running until the connection is done:
// net/http ends the stream when it returns.
func (c *Conn) acceptStream(w http.ResponseWriter, r *http.Request, reply handshakeReply) error {
	h := w.Header()
	setExtraHeaders(h, reply.header)
	if c.subprotocol != "" {
		h.Set("Sec-WebSocket-Protocol", c.subprotocol)
	}
	if reply.extensions != "" {
		h.Set("Sec-WebSocket-Extensions", reply.extensions)
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("websocket: sending the handshake response: %w", err)
	}
	return c.opened(newServerStream(w, rc, r), nil)
}

// h2Hop are the connection-specific headers that HTTP/2 forbids (RFC 9113
// §8.2.2): ServerOptions.Header cannot add them to an HTTP/2 response.
var h2Hop = []string{"Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te"}

// setExtraHeaders copies ServerOptions.Header into an HTTP/2 response's
// headers, skipping what appendExtraHeaders skips for HTTP/1.1 and the
// headers HTTP/2 forbids.
func setExtraHeaders(dst, h http.Header) {
	for name, values := range h {
		canon := http.CanonicalHeaderKey(name)
		if slices.Contains(reservedHeaders, canon) || slices.Contains(h2Hop, canon) || strings.ContainsAny(name, "\r\n: ") {
			continue
		}
		for _, v := range values {
			if !strings.ContainsAny(v, "\r\n") {
				dst.Add(canon, v)
			}
		}
	}
}

// servesStream reports whether the connection is a server's over an
// HTTP/2 stream, which lives only as long as the handler that accepted it.
func (c *Conn) servesStream() bool {
	s, ok := c.netConn.(*streamConn)
	return ok && s.w != nil
}
