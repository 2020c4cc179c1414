package eventloop

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/wsdriver/websocket/internal/evloop"
)

// serveRequest runs the handler for one request, on its own goroutine:
// the handler may block (the blocking API's does for the connection's
// whole life). Unless the handler hijacked the connection (the WebSocket
// upgrade does), its buffered response is sent and the connection closed.
func (s *Server) serveRequest(nc *evloop.NetConn, r *http.Request) {
	defer s.reqs.Done()
	w := &responseWriter{nc: nc, header: make(http.Header)}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				nc.Close()
				return
			}
			s.log().Error("eventloop: handler panicked", "remote", r.RemoteAddr, "url", r.URL.String(), "panic", v, "stack", string(debug.Stack()))
			if w.hijacked {
				// net/http leaves a hijacked connection as it is; here
				// nobody else would end it (the blocking API's reader is
				// gone with the handler), so it is closed: the peer sees
				// the connection end (1006) instead of a silent one.
				nc.Close()
				return
			}
			if !w.wroteHeader {
				w.header = http.Header{}
				w.WriteHeader(http.StatusInternalServerError)
			}
			w.finish()
		}
	}()
	s.Handler.ServeHTTP(w, r)
	if !w.hijacked {
		w.finish()
	}
}

// responseWriter is the http.ResponseWriter of a request on this backend:
// it buffers the response and sends it whole when the handler returns,
// with Content-Length and "Connection: close"; or it hands the connection
// over (Hijack), as the WebSocket handshake asks.
type responseWriter struct {
	nc          *evloop.NetConn
	header      http.Header
	status      int
	wroteHeader bool
	hijacked    bool
	body        []byte
}

// maxResponseBody bounds a buffered response: this backend serves pages
// and small answers, not downloads.
const maxResponseBody = 8 << 20

// errBodyTooLarge is returned by Write past maxResponseBody.
var errBodyTooLarge = errors.New("eventloop: response body larger than 8 MiB (this backend buffers responses; serve large ones with net/http)")

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("eventloop: invalid WriteHeader code %v", status))
	}
	if status < 200 {
		return // informational responses are not sent on this backend
	}
	w.status, w.wroteHeader = status, true
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(w.body)+len(p) > maxResponseBody {
		return 0, errBodyTooLarge
	}
	if w.header.Get("Content-Type") == "" && len(w.body) == 0 {
		w.header.Set("Content-Type", http.DetectContentType(p))
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Flush does nothing: the response is sent when the handler returns.
func (w *responseWriter) Flush() {}

// Hijack hands the connection over. Bytes that followed the request are
// read from the returned net.Conn (the bufio.Reader holds none).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		return nil, nil, errors.New("eventloop: Hijack after WriteHeader")
	}
	w.hijacked = true
	// The smallest buffers bufio allows: the library reads and writes
	// the net.Conn itself.
	return w.nc, bufio.NewReadWriter(bufio.NewReaderSize(w.nc, 16), bufio.NewWriterSize(w.nc, 16)), nil
}

// SetReadDeadline and SetWriteDeadline let http.ResponseController work;
// the response is written when the handler returns, so they bound nothing
// the handler waits for.
func (w *responseWriter) SetReadDeadline(t time.Time) error  { return w.nc.SetReadDeadline(t) }
func (w *responseWriter) SetWriteDeadline(t time.Time) error { return nil }

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// finish sends the buffered response and closes the connection.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	b := make([]byte, 0, 256+len(w.body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	h := w.header
	h.Del("Connection")
	h.Del("Transfer-Encoding")
	if bodyAllowed(w.status) {
		h.Set("Content-Length", strconv.Itoa(len(w.body)))
	} else {
		h.Del("Content-Length")
	}
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	h.Set("Connection", "close")
	for name, values := range h {
		for _, v := range values {
			if !validHeaderValue(name) || !validHeaderValue(v) {
				continue
			}
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	if bodyAllowed(w.status) {
		b = append(b, w.body...)
	}
	w.nc.Write(b)
	w.nc.Close()
}

// validHeaderValue refuses values that would break the header block.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
