package upgrade

import (
	"net/http"
	"strconv"
)

// Error is a refused request: the HTTP status to answer with and the
// reason, which becomes the body of the answer (see AppendResponse).
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return "upgrade: " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Reason
}

// Is reports whether target is an *Error with the same status, so that
// errors.Is(err, &Error{Status: 431}) matches any 431 refusal.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && (t.Reason == "" || t.Reason == e.Reason)
}

// AppendResponse appends the HTTP/1.1 answer for the refusal to dst (see
// AppendErrorResponse); a 405 names the one method allowed.
func (e *Error) AppendResponse(dst []byte) []byte {
	var h http.Header
	if e.Status == http.StatusMethodNotAllowed {
		h = http.Header{"Allow": {http.MethodGet}}
	}
	return AppendErrorResponse(dst, e.Status, e.Reason, h)
}

// The refusals. Their reasons are sent to the client.
var (
	errBareLF               = &Error{http.StatusBadRequest, "line not ended by CRLF"}
	errMalformedRequestLine = &Error{http.StatusBadRequest, "malformed request line"}
	errMalformedVersion     = &Error{http.StatusBadRequest, "malformed HTTP version"}
	errMalformedTarget      = &Error{http.StatusBadRequest, "malformed request target"}
	errMalformedHeader      = &Error{http.StatusBadRequest, "malformed header line"}
	errSpaceBeforeColon     = &Error{http.StatusBadRequest, "whitespace between a header name and its colon"}
	errObsFold              = &Error{http.StatusBadRequest, "folded header line (obs-fold)"}
	errMalformedHost        = &Error{http.StatusBadRequest, "malformed Host header"}
	errManyHosts            = &Error{http.StatusBadRequest, "more than one Host header"}
	errMissingHost          = &Error{http.StatusBadRequest, "missing Host header"}
	errBody                 = &Error{http.StatusBadRequest, "an upgrade request has no body (Transfer-Encoding or Content-Length)"}
	errMethod               = &Error{http.StatusMethodNotAllowed, "handshake method must be GET"}
	errVersion              = &Error{http.StatusHTTPVersionNotSupported, "only HTTP/1.x is supported"}
	errURITooLong           = &Error{http.StatusRequestURITooLong, "request line too long"}
	errHeaderLineTooLarge   = &Error{http.StatusRequestHeaderFieldsTooLarge, "header line too long"}
	errTooManyHeaders       = &Error{http.StatusRequestHeaderFieldsTooLarge, "too many header lines"}
	errHeadTooLarge         = &Error{http.StatusRequestHeaderFieldsTooLarge, "request head too large"}
)

// AppendErrorResponse appends an HTTP/1.1 error answer to dst: the status
// line, header (canonical names; CR and LF in names or values are dropped,
// so a caller's reason cannot split the answer), Content-Type text/plain,
// Content-Length, Connection: close, and reason plus a newline as the body.
// The caller closes the connection after sending it.
func AppendErrorResponse(dst []byte, status int, reason string, header http.Header) []byte {
	text := http.StatusText(status)
	if text == "" {
		text = "Status " + strconv.Itoa(status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = appendClean(dst, text)
	dst = append(dst, "\r\n"...)
	for k, vs := range header {
		for _, v := range vs {
			dst = appendClean(dst, k)
			dst = append(dst, ": "...)
			dst = appendClean(dst, v)
			dst = append(dst, "\r\n"...)
		}
	}
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\nX-Content-Type-Options: nosniff\r\n\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// appendClean appends s without its CR and LF bytes.
func appendClean(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\r' && s[i] != '\n' {
			dst = append(dst, s[i])
		}
	}
	return dst
}
