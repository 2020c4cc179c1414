package upgrade

import (
	"bufio"
	"errors"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics the parser, that the result does
// not depend on how the bytes are split into pieces, and that an accepted
// request is shaped as the handshake policy expects.
func FuzzParse(f *testing.F) {
	f.Add(browserRequest, uint8(3))
	f.Fuzz(func(t *testing.T, s string, step uint8) {
		r1, n1, err1 := parse(t, s, 0)
		r2, n2, err2 := parse(t, s, int(step%16)+1)
		if (err1 == nil) != (err2 == nil) || (r1 == nil) != (r2 == nil) || n1 != n2 {
			t.Fatalf("split changes the result: whole %v %d %v; in pieces %v %d %v", r1, n1, err1, r2, n2, err2)
		}
		if err1 != nil {
			var e1, e2 *Error
			if !errors.As(err1, &e1) || !errors.As(err2, &e2) || e1.Status < 400 || e1.Status > 599 {
				t.Fatalf("errors %v, %v are not refusals", err1, err2)
			}
			// A limit may be seen before a malformed line when the bytes
			// come in pieces, but never a different kind of refusal for a
			// complete line.
			return
		}
		if r1 == nil {
			return
		}
		if !reflect.DeepEqual(r1.Header, r2.Header) || r1.RequestURI != r2.RequestURI || r1.Host != r2.Host {
			t.Fatalf("split changes the request: %+v vs %+v", r1, r2)
		}
		if r1.Method != http.MethodGet || r1.ProtoMajor != 1 || r1.URL == nil || r1.Header["Host"] != nil {
			t.Fatalf("accepted request %+v", r1)
		}
	})
}

// oracle parses s as net/http's server does before it calls a handler:
// http.ReadRequest, then the server's version and Host checks.
func oracle(s string) (*http.Request, bool) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
	if err != nil {
		return nil, false
	}
	if r.ProtoMajor != 1 {
		return nil, false
	}
	// ReadRequest drops the Host header that the server checks: read it
	// as ReadRequest did, with textproto.
	_, rest, _ := strings.Cut(s, "\n")
	h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(rest))).ReadMIMEHeader()
	if err != nil {
		return nil, false
	}
	hosts := h["Host"]
	if r.ProtoAtLeast(1, 1) && len(hosts) == 0 {
		return nil, false
	}
	if len(hosts) == 1 {
		for i := 0; i < len(hosts[0]); i++ {
			if !validHostByte[hosts[0][i]] {
				return nil, false
			}
		}
	}
	// The server's checks of names and values (httpguts).
	for k, vs := range r.Header {
		if k == "" {
			return nil, false
		}
		for i := 0; i < len(k); i++ {
			if !isTokenByte(k[i]) {
				return nil, false
			}
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
					return nil, false
				}
			}
		}
	}
	delete(r.Header, "Host")
	return r, true
}

// stricter reports whether e is one of the refusals this parser makes
// where net/http accepts, by design (see the package documentation).
func stricter(e *Error, s string) bool {
	switch e {
	case errBareLF, errObsFold, errSpaceBeforeColon, errMethod, errBody, errURITooLong, errHeaderLineTooLarge, errTooManyHeaders, errHeadTooLarge:
		return true
	case errMalformedRequestLine:
		// A request-target with bytes above 0x7F.
		line, _, _ := strings.Cut(s, "\r\n")
		for i := 0; i < len(line); i++ {
			if line[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// FuzzDifferential compares the parser with net/http's: for a request that
// uses CRLF and has a complete head, both accept or both refuse (except
// where this parser is stricter by design), and when both accept they
// agree on the method, target, version, Host and headers.
func FuzzDifferential(f *testing.F) {
	f.Add(browserRequest)
	f.Fuzz(func(t *testing.T, s string) {
		if !strings.Contains(s, "\r\n\r\n") {
			s += "\r\n\r\n"
		}
		ours, _, err := parse(t, s, 0)
		theirs, ok := oracle(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if ok && !stricter(e, s) {
				t.Fatalf("refused with %v what net/http accepts: %q", err, s)
			}
			return
		}
		if ours == nil {
			t.Fatalf("no request and no error for a complete head: %q", s)
		}
		if !ok {
			t.Fatalf("accepted what net/http refuses: %q", s)
		}
		if ours.Method != theirs.Method || ours.RequestURI != theirs.RequestURI || ours.Proto != theirs.Proto ||
			ours.ProtoMajor != theirs.ProtoMajor || ours.ProtoMinor != theirs.ProtoMinor || ours.Host != theirs.Host ||
			ours.URL.String() != theirs.URL.String() || !reflect.DeepEqual(ours.Header, theirs.Header) {
			t.Fatalf("requests differ for %q:\nours   %q %q %q %q %v\ntheirs %q %q %q %q %v", s,
				ours.Method, ours.RequestURI, ours.Proto, ours.Host, ours.Header,
				theirs.Method, theirs.RequestURI, theirs.Proto, theirs.Host, theirs.Header)
		}
	})
}
