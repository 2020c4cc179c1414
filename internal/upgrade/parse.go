// Package upgrade parses the HTTP/1.1 request of a WebSocket opening
// handshake for a server that owns its sockets and does not use net/http
// (the event-loop backend). Bytes are fed to a Parser as they arrive, in
// pieces of any size; the Parser answers "need more", "done, n bytes of
// this piece were the request" or an *Error that carries the HTTP status to
// answer with (AppendResponse writes that answer). The parsed request is
// returned as an *http.Request shaped as net/http's server would hand it to
// a handler, so the library's handshake policy (method, Upgrade and
// Connection tokens, version, key, origin, CheckOrigin, Authorize,
// subprotocols, extensions) applies to it unchanged.
//
// The parser is strict where RFC 9112 lets a server choose, since a
// WebSocket client is a browser or a library, never a hand-typed request:
//
//   - lines must end in CRLF; a bare LF is refused (RFC 9112 §2.2 allows a
//     server to accept it; net/http does), and so is a bare CR;
//   - whitespace between a header name and its colon is refused with
//     400, as RFC 9112 §5.1 requires (net/http trims it);
//   - obs-fold (a header line starting with a space or tab) is refused with
//     400, one of the two answers RFC 9112 §5.2 allows (net/http folds);
//   - the request-target must be visible ASCII (net/http lets bytes above
//     0x7F through);
//   - only GET is accepted (405 otherwise, with "Allow: GET"), since an
//     upgrade request has no body; any Transfer-Encoding, or a
//     Content-Length other than one "0", is refused with 400;
//   - HTTP/1.0 and HTTP/1.x are parsed (the policy then refuses versions
//     below 1.1 as the net/http path does); any other major version gets
//     505;
//   - Host is required for HTTP/1.1 and may appear once (RFC 9112 §3.2);
//   - limits: the request line (414 URI Too Long), each header line, the
//     number of header lines and the whole head (431 Request Header Fields
//     Too Large) are bounded, checked as bytes arrive, so an endless
//     request is refused as soon as it passes a limit.
//
// Everything net/http's http.ReadRequest (plus its server's Host checks)
// refuses is refused here too; when both accept, the method, target,
// version and headers are the same. The differential fuzz test
// FuzzDifferential checks this with net/http as the oracle.
//
// A Parser copies the bytes it is fed (the event loop lends them only for
// the duration of a callback) into one buffer that is bounded by the head
// limit, and makes a done request from it with one string allocation for
// the whole head plus the http.Request, its URL and its Header map; common
// header names are interned.
package upgrade

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
)

// Limits bounds what a Parser accepts. A zero field means its default.
type Limits struct {
	// MaxHeadBytes bounds the whole head: the request line, the header
	// lines and the empty line that ends it. Default 8 KiB.
	MaxHeadBytes int
	// MaxRequestLine bounds the request line (method, target, version);
	// passing it is 414. Default 4 KiB.
	MaxRequestLine int
	// MaxHeaderLine bounds one header line. Default 4 KiB.
	MaxHeaderLine int
	// MaxHeaders bounds the number of header lines. Default 64.
	MaxHeaders int
}

// Defaults of Limits.
const (
	DefaultMaxHeadBytes   = 8 << 10
	DefaultMaxRequestLine = 4 << 10
	DefaultMaxHeaderLine  = 4 << 10
	DefaultMaxHeaders     = 64
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	if l.MaxHeaderLine <= 0 {
		l.MaxHeaderLine = DefaultMaxHeaderLine
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	return l
}

// span is a field of the head: buf[start:end].
type span struct{ start, end int32 }

// header is one header line's name and value (without the OWS around it).
type header struct{ name, value span }

// Parser parses one handshake request fed in pieces. The zero value uses
// the default Limits. A Parser is used by one goroutine at a time; after
// it reports done or an error, Reset makes it ready for another request.
type Parser struct {
	Limits Limits

	buf       []byte // the head so far, copied from the pieces fed
	off       int    // start of the first line not parsed yet
	lines     int    // lines parsed, the request line included
	method    span
	target    span
	major     int
	minor     int
	headers   []header
	url       *url.URL // the target, parsed when the head ends
	targetStr string
	done      bool
	err       *Error
}

// Reset forgets the request parsed so far, keeping the buffers.
func (p *Parser) Reset() {
	*p = Parser{Limits: p.Limits, buf: p.buf[:0], headers: p.headers[:0]}
}

// Feed gives the parser the next piece of the connection's bytes. It
// returns done == false and a nil error when the head is not complete yet
// (all of b was taken); done == true when the head ended within b, with n
// the number of bytes of b that belonged to it (b[n:] is what the client
// sent after the request, which the caller keeps); or an *Error to answer
// with its status. b is not kept. After done or an error Feed returns the
// same result again without reading b, until Reset.
func (p *Parser) Feed(b []byte) (n int, done bool, err error) {
	if p.err != nil {
		return 0, false, p.err
	}
	if p.done {
		return 0, true, nil
	}
	l := p.Limits.withDefaults()
	before := len(p.buf)
	// Take no more than one byte past the head limit: anything beyond
	// cannot be part of an acceptable head.
	take := b
	if room := l.MaxHeadBytes + 1 - before; len(take) > room {
		take = take[:room]
	}
	p.buf = append(p.buf, take...)
	for {
		i := bytes.IndexByte(p.buf[p.off:], '\n')
		if i < 0 {
			break
		}
		end := p.off + i + 1 // just past the LF
		if end > l.MaxHeadBytes {
			return 0, false, p.fail(errHeadTooLarge)
		}
		if e := p.line(l, p.off, end); e != nil {
			return 0, false, p.fail(e)
		}
		p.off = end
		if p.done {
			if e := p.finish(); e != nil {
				return 0, false, p.fail(e)
			}
			return end - before, true, nil
		}
	}
	// The line in progress has no LF yet: check the limits now, so that a
	// client cannot make the server buffer more than they allow.
	pending := len(p.buf) - p.off
	switch {
	case p.lines == 0 && pending > l.MaxRequestLine+2:
		return 0, false, p.fail(errURITooLong)
	case p.lines > 0 && pending > l.MaxHeaderLine+2:
		return 0, false, p.fail(errHeaderLineTooLarge)
	case len(p.buf) > l.MaxHeadBytes:
		return 0, false, p.fail(errHeadTooLarge)
	}
	return 0, false, nil
}

func (p *Parser) fail(e *Error) *Error {
	p.err = e
	return e
}

// line parses buf[start:end], a line that ends in LF.
func (p *Parser) line(l Limits, start, end int) *Error {
	if end-start < 2 || p.buf[end-2] != '\r' {
		return errBareLF
	}
	s := p.buf[start : end-2]
	if p.lines == 0 {
		p.lines++
		if len(s) > l.MaxRequestLine {
			return errURITooLong
		}
		return p.requestLine(s, start)
	}
	if len(s) == 0 {
		p.done = true
		return nil
	}
	p.lines++
	if len(s) > l.MaxHeaderLine {
		return errHeaderLineTooLarge
	}
	if len(p.headers) >= l.MaxHeaders {
		return errTooManyHeaders
	}
	return p.headerLine(s, start)
}

// requestLine parses "method SP request-target SP HTTP-version"
// (RFC 9112 §3) in s, which starts at offset base of buf.
func (p *Parser) requestLine(s []byte, base int) *Error {
	sp1 := bytes.IndexByte(s, ' ')
	if sp1 <= 0 {
		return errMalformedRequestLine
	}
	rest := s[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errMalformedRequestLine
	}
	method, target, version := s[:sp1], rest[:sp2], rest[sp2+1:]
	for _, c := range method {
		if !isTokenByte(c) {
			return errMalformedRequestLine
		}
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return errMalformedRequestLine
		}
	}
	// HTTP-version = "HTTP/" DIGIT "." DIGIT
	if len(version) != 8 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return errMalformedVersion
	}
	p.major, p.minor = int(version[5]-'0'), int(version[7]-'0')
	if p.major != 1 {
		return errVersion
	}
	if string(method) != http.MethodGet {
		return errMethod
	}
	p.method = span{int32(base), int32(base + sp1)}
	t := base + sp1 + 1
	p.target = span{int32(t), int32(t + sp2)}
	return nil
}

// headerLine parses "field-name ':' OWS field-value OWS" (RFC 9112 §5) in
// s, which starts at offset base of buf.
func (p *Parser) headerLine(s []byte, base int) *Error {
	if s[0] == ' ' || s[0] == '\t' {
		return errObsFold
	}
	colon := bytes.IndexByte(s, ':')
	if colon <= 0 {
		return errMalformedHeader
	}
	if c := s[colon-1]; c == ' ' || c == '\t' {
		return errSpaceBeforeColon // RFC 9112 §5.1: a MUST; net/http trims it
	}
	for _, c := range s[:colon] {
		if !isTokenByte(c) {
			return errMalformedHeader
		}
	}
	vs, ve := colon+1, len(s)
	for vs < ve && (s[vs] == ' ' || s[vs] == '\t') {
		vs++
	}
	for ve > vs && (s[ve-1] == ' ' || s[ve-1] == '\t') {
		ve--
	}
	for _, c := range s[vs:ve] {
		if !isValueByte(c) {
			return errMalformedHeader
		}
	}
	p.headers = append(p.headers, header{
		name:  span{int32(base), int32(base + colon)},
		value: span{int32(base + vs), int32(base + ve)},
	})
	return nil
}

// finish checks the whole head once it has ended.
func (p *Parser) finish() *Error {
	hosts, lengths := 0, 0
	for _, h := range p.headers {
		name, value := p.bytes(h.name), p.bytes(h.value)
		switch {
		case equalFold(name, "host"):
			hosts++
			for _, c := range value {
				if !validHostByte[c] {
					return errMalformedHost
				}
			}
		case equalFold(name, "transfer-encoding"):
			return errBody
		case equalFold(name, "content-length"):
			if lengths++; lengths > 1 || string(value) != "0" {
				return errBody
			}
		}
	}
	if hosts > 1 {
		return errManyHosts
	}
	if hosts == 0 && p.minor >= 1 {
		return errMissingHost
	}
	p.targetStr = string(p.bytes(p.target))
	u, err := url.ParseRequestURI(p.targetStr)
	if err != nil {
		return errMalformedTarget
	}
	p.url = u
	return nil
}

func (p *Parser) bytes(s span) []byte { return p.buf[s.start:s.end] }

// Request returns the parsed request, as net/http's server would give it to
// a handler: Method, RequestURI, URL (from url.ParseRequestURI), Proto,
// ProtoMajor, ProtoMinor, Header with canonical keys and without Host, Host
// (from an absolute-form target, else the Host header), RemoteAddr, Body
// http.NoBody, and ctx as its context (nil means context.Background()).
// It returns nil unless Feed reported done. The request does not refer to
// the parser's buffer, so the parser can be reset or dropped.
func (p *Parser) Request(ctx context.Context, remoteAddr string) *http.Request {
	if !p.done || p.err != nil {
		return nil
	}
	// One string holds the head; every field is a substring of it.
	head := string(p.buf[:p.off])
	sub := func(s span) string { return head[s.start:s.end] }
	target, u := p.targetStr, p.url
	if ctx == nil {
		ctx = context.Background()
	}
	r := new(http.Request).WithContext(ctx)
	r.Method = sub(p.method)
	r.URL = u
	r.Proto = "HTTP/1.0"
	r.ProtoMajor, r.ProtoMinor = p.major, p.minor
	r.Header = make(http.Header, len(p.headers))
	r.Body = http.NoBody
	r.Host = u.Host
	r.RemoteAddr = remoteAddr
	r.RequestURI = target
	if p.minor != 0 {
		r.Proto = head[p.target.end+1 : p.target.end+9]
	}
	// One backing array holds the values; a key's first value takes a
	// one-element slice of it, which append copies out on a repeat.
	values := make([]string, len(p.headers))
	for i, h := range p.headers {
		key := canonicalKey(p.bytes(h.name), sub(h.name))
		value := sub(h.value)
		if key == "Host" {
			if r.Host == "" {
				r.Host = value
			}
			continue
		}
		if vs, ok := r.Header[key]; ok {
			r.Header[key] = append(vs, value)
			continue
		}
		values[i] = value
		r.Header[key] = values[i : i+1 : i+1]
	}
	// As net/http does (RFC 9111 §5.4): Pragma: no-cache alone means
	// Cache-Control: no-cache.
	if pragma := r.Header["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" && r.Header["Cache-Control"] == nil {
		r.Header["Cache-Control"] = []string{"no-cache"}
	}
	return r
}
