package conformance

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// hsCase is one opening-handshake case against the server (RFC 6455 4.2).
type hsCase struct {
	name string
	opts websocket.ServerOptions
	// edit changes the valid request; host is the server's host:port.
	edit func(r rawRequest, host string) rawRequest
	// status lists the acceptable response codes.
	status []int
	// check, if set, inspects the response further; key is the request's key.
	check func(t *testing.T, resp *http.Response, key string)
	note  string
	// wire, if set, edits the request's bytes, for what rawRequest cannot
	// say (line endings, folded lines, whitespace before a colon).
	wire func(b []byte) []byte
	// evloop, when set, is the acceptable response codes on the event-loop
	// backend, whose request parser refuses more than net/http does where
	// RFC 9112 lets a server choose; evloopNote cites the rule. check then
	// runs only where the status is the one in status.
	evloop     []int
	evloopNote string
}

// statusOn is the acceptable response codes of c on backend b.
func (c hsCase) statusOn(b backend) []int {
	if b != backendHTTP && c.evloop != nil {
		return c.evloop
	}
	return c.status
}

func set(name, value string) func(rawRequest, string) rawRequest {
	return func(r rawRequest, _ string) rawRequest { return r.with(name, value) }
}

func addHeader(name, value string) func(rawRequest, string) rawRequest {
	return func(r rawRequest, _ string) rawRequest {
		r.headers = append(r.headers, [2]string{name, value})
		return r
	}
}

func origin(format string) func(rawRequest, string) rawRequest {
	return func(r rawRequest, host string) rawRequest {
		return r.with("Origin", strings.ReplaceAll(format, "HOST", host))
	}
}

// replace edits the request's bytes: the first old becomes new.
func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte { return []byte(strings.Replace(string(b), old, new, 1)) }
}

func keyOf(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

// wantProtocol checks the negotiated subprotocol; "" means the header must be absent.
func wantProtocol(p string) func(*testing.T, *http.Response, string) {
	return func(t *testing.T, resp *http.Response, _ string) {
		vals := resp.Header.Values("Sec-WebSocket-Protocol")
		switch {
		case p == "" && len(vals) != 0:
			t.Fatalf("Sec-WebSocket-Protocol %q, want none (RFC 6455 4.2.2: no header when no protocol is selected)", vals)
		case p != "" && (len(vals) != 1 || vals[0] != p):
			t.Fatalf("Sec-WebSocket-Protocol %q, want exactly %q", vals, p)
		}
	}
}

func wantVersionHeader(t *testing.T, resp *http.Response, _ string) {
	if v := resp.Header.Get("Sec-WebSocket-Version"); !slices.Contains(tokens(resp.Header.Values("Sec-WebSocket-Version")), "13") {
		t.Fatalf("Sec-WebSocket-Version %q in the refusal, want 13 (RFC 6455 4.2.2)", v)
	}
}

// tokens splits comma-separated header values into trimmed tokens.
func tokens(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func hasToken(vals []string, tok string) bool {
	return slices.ContainsFunc(tokens(vals), func(s string) bool { return strings.EqualFold(s, tok) })
}

func wantValid101(t *testing.T, resp *http.Response, key string) {
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, acceptKey(key))
	}
	if !hasToken(resp.Header.Values("Upgrade"), "websocket") {
		t.Fatalf("Upgrade %q, want websocket", resp.Header.Values("Upgrade"))
	}
	if !hasToken(resp.Header.Values("Connection"), "upgrade") {
		t.Fatalf("Connection %q, want Upgrade", resp.Header.Values("Connection"))
	}
	if v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) != 0 {
		t.Fatalf("Sec-WebSocket-Extensions %q without any offered", v)
	}
}

func wantBody(t *testing.T, resp *http.Response, _ string) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if len(strings.TrimSpace(string(b))) == 0 {
		t.Fatal("400 response without a reason in the body")
	}
}

func serverHandshakeCases() []hsCase {
	chat := websocket.ServerOptions{Protocols: []string{"chat", "superchat"}}
	const badReq = "RFC 6455 4.2.1: a request that is not a valid opening handshake gets an HTTP error such as 400"
	const upgrade = "RFC 6455 4.2.1 suggests 400; RFC 7231 6.5.15 defines 426 for a server that requires an upgrade, so both are accepted"
	const version = "RFC 6455 4.2.2: unsupported version: an error such as 426 plus Sec-WebSocket-Version: 13"
	return []hsCase{
		{name: "valid_request", status: []int{101}, check: wantValid101},
		{name: "upgrade_value_case_insensitive", edit: set("Upgrade", "WebSocket"), status: []int{101}, check: wantValid101},
		{name: "connection_token_list", edit: set("Connection", "keep-alive, Upgrade"), status: []int{101}, check: wantValid101},
		{name: "connection_lowercase", edit: set("Connection", "upgrade"), status: []int{101}, check: wantValid101},
		{name: "extra_unknown_headers_ignored", edit: addHeader("X-Whatever", "1"), status: []int{101}, check: wantValid101},
		{name: "missing_upgrade", edit: set("Upgrade", "-"), status: []int{400, 426}, note: upgrade},
		{name: "upgrade_not_websocket", edit: set("Upgrade", "h2c"), status: []int{400, 426}, note: upgrade},
		{name: "missing_connection", edit: set("Connection", "-"), status: []int{400}, note: badReq},
		{name: "connection_keep_alive_only", edit: set("Connection", "keep-alive"), status: []int{400}, note: badReq},
		{name: "missing_key", edit: set("Sec-WebSocket-Key", "-"), status: []int{400}, note: badReq},
		{name: "empty_key", edit: set("Sec-WebSocket-Key", ""), status: []int{400}, note: badReq},
		{name: "key_not_base64", edit: set("Sec-WebSocket-Key", "this is not base64!!!!=="), status: []int{400},
			note: "RFC 6455 4.1: the key is a base64-encoded 16-byte value"},
		{name: "key_15_bytes", edit: set("Sec-WebSocket-Key", keyOf(15)), status: []int{400}},
		{name: "key_17_bytes", edit: set("Sec-WebSocket-Key", keyOf(17)), status: []int{400}},
		{name: "key_32_bytes", edit: set("Sec-WebSocket-Key", keyOf(32)), status: []int{400}},
		{name: "duplicate_key", edit: addHeader("Sec-WebSocket-Key", keyOf(16)), status: []int{400},
			note: "RFC 6455 11.3.1: Sec-WebSocket-Key MUST NOT appear more than once in a request"},
		{name: "bad_request_has_reason_body", edit: set("Sec-WebSocket-Key", "-"), status: []int{400}, check: wantBody,
			note: "issue 2: a bad handshake gets 400 with a reason in the body"},
		{name: "version_12", edit: set("Sec-WebSocket-Version", "12"), status: []int{426, 400}, check: wantVersionHeader, note: version},
		{name: "version_14", edit: set("Sec-WebSocket-Version", "14"), status: []int{426, 400}, check: wantVersionHeader, note: version},
		{name: "version_8", edit: set("Sec-WebSocket-Version", "8"), status: []int{426, 400}, check: wantVersionHeader, note: version},
		{name: "version_not_a_number", edit: set("Sec-WebSocket-Version", "abc"), status: []int{426, 400}, check: wantVersionHeader, note: version},
		{name: "missing_version", edit: set("Sec-WebSocket-Version", "-"), status: []int{426, 400}, note: badReq},
		{name: "method_post", edit: func(r rawRequest, _ string) rawRequest { r.method = "POST"; return r.with("Content-Length", "0") },
			status: []int{405}, note: "RFC 6455 4.1: the method MUST be GET"},
		{name: "method_post_with_body", edit: func(r rawRequest, _ string) rawRequest { r.method = "POST"; return r.with("Content-Length", "5") },
			wire: func(b []byte) []byte { return append(b, "hello"...) }, status: []int{405}},
		{name: "method_put", edit: func(r rawRequest, _ string) rawRequest { r.method = "PUT"; return r.with("Content-Length", "0") }, status: []int{405}},
		{name: "method_delete", edit: func(r rawRequest, _ string) rawRequest { r.method = "DELETE"; return r }, status: []int{405}},
		{name: "http_1_0", edit: func(r rawRequest, _ string) rawRequest { r.proto = "HTTP/1.0"; return r }, status: []int{400},
			note: "RFC 6455 4.1: the request MUST be HTTP/1.1 or higher"},
		{name: "missing_host", edit: set("Host", "-"), status: []int{400}, note: "RFC 6455 4.1 and RFC 7230 5.4 (net/http itself refuses)"},
		{name: "path_with_query", edit: func(r rawRequest, _ string) rawRequest { r.path = "/some/path?x=1"; return r }, status: []int{101}, check: wantValid101},

		// The request's HTTP/1.1 syntax (RFC 9112), where a server may
		// choose: net/http takes the lenient answer, the event-loop
		// backend's parser the strict one (see doc.go).
		{name: "bare_lf_line_ending", wire: replace("\r\nUpgrade:", "\nUpgrade:"), status: []int{101}, check: wantValid101,
			evloop: []int{400}, evloopNote: "RFC 9112 2.2: a recipient MAY accept a bare LF as a line terminator; the strict parser refuses it with 400"},
		{name: "obs_fold_header", edit: addHeader("X-Folded", "a"), wire: replace("X-Folded: a\r\n", "X-Folded: a\r\n b\r\n"), status: []int{101}, check: wantValid101,
			evloop: []int{400}, evloopNote: "RFC 9112 5.2: a server MUST either refuse obs-fold with 400 or replace it with SP; the strict parser refuses"},
		{name: "whitespace_before_colon", wire: replace("\r\nUpgrade:", "\r\nUpgrade :"), status: []int{400},
			note: "RFC 9112 5.1: a server MUST reject whitespace between a field name and the colon with 400"},
		{name: "target_not_ascii", edit: func(r rawRequest, _ string) rawRequest { r.path = "/caf\xc3\xa9"; return r }, status: []int{101}, check: wantValid101,
			evloop: []int{400}, evloopNote: "RFC 9112 3.2 and RFC 3986: a request-target is ASCII; a server that receives an invalid request-line SHOULD answer 400 (RFC 9112 3), which the strict parser does"},
		{name: "http_2_0_request_line", edit: func(r rawRequest, _ string) rawRequest { r.proto = "HTTP/2.0"; return r }, status: []int{505, 400},
			note: "RFC 9110 15.6.6: 505 for a major version the server does not support (a WebSocket over HTTP/2 is RFC 8441's CONNECT, not this)"},

		// 4.2.2 subprotocols: the first protocol the client offered that the server accepts.
		{name: "subprotocol_first_client_offer_wins", opts: chat, edit: set("Sec-WebSocket-Protocol", "superchat, chat"), status: []int{101}, check: wantProtocol("superchat"),
			note: "issue 2: pick the first protocol the client offered that the server accepts"},
		{name: "subprotocol_single", opts: chat, edit: set("Sec-WebSocket-Protocol", "chat"), status: []int{101}, check: wantProtocol("chat")},
		{name: "subprotocol_skip_unknown", opts: chat, edit: set("Sec-WebSocket-Protocol", "foo, chat"), status: []int{101}, check: wantProtocol("chat")},
		{name: "subprotocol_across_header_lines", opts: chat, edit: func(r rawRequest, _ string) rawRequest {
			r = r.with("Sec-WebSocket-Protocol", "foo")
			r.headers = append(r.headers, [2]string{"Sec-WebSocket-Protocol", "superchat, chat"})
			return r
		}, status: []int{101}, check: wantProtocol("superchat")},
		{name: "subprotocol_none_matching", opts: chat, edit: set("Sec-WebSocket-Protocol", "foo, bar"), status: []int{101}, check: wantProtocol(""),
			note: "no match is not a failure: the response just has no Sec-WebSocket-Protocol"},
		{name: "subprotocol_none_offered", opts: chat, status: []int{101}, check: wantProtocol("")},
		{name: "subprotocol_server_has_none", edit: set("Sec-WebSocket-Protocol", "chat"), status: []int{101}, check: wantProtocol("")},

		{name: "additional_headers", opts: websocket.ServerOptions{Header: http.Header{"X-Test": {"yes"}, "X-Multi": {"a", "b"}}},
			status: []int{101}, check: func(t *testing.T, resp *http.Response, key string) {
				wantValid101(t, resp, key)
				if resp.Header.Get("X-Test") != "yes" || !slices.Equal(resp.Header.Values("X-Multi"), []string{"a", "b"}) {
					t.Fatalf("additional headers missing: %v", resp.Header)
				}
			}},

		// Origin policy (RFC 6455 10.2 and issue 2).
		{name: "origin_absent_allowed", status: []int{101}, note: "a non-browser client sends no Origin and is allowed"},
		{name: "origin_same_allowed", edit: origin("http://HOST"), status: []int{101}},
		{name: "origin_foreign_refused", edit: origin("http://evil.example"), status: []int{403}},
		{name: "origin_same_host_other_port_refused", edit: func(r rawRequest, host string) rawRequest {
			h, _, _ := strings.Cut(host, ":")
			return r.with("Origin", "http://"+h+":1")
		}, status: []int{403}, note: "an origin is scheme, host and port; another port is another origin"},
		{name: "origin_null_refused", edit: origin("null"), status: []int{403}},
		{name: "origin_allow_list_match", opts: websocket.ServerOptions{OriginPatterns: []string{"*.example.com"}},
			edit: origin("https://app.example.com"), status: []int{101}},
		{name: "origin_allow_list_exact_match", opts: websocket.ServerOptions{OriginPatterns: []string{"example.com"}},
			edit: origin("https://example.com"), status: []int{101}},
		{name: "origin_allow_list_no_match", opts: websocket.ServerOptions{OriginPatterns: []string{"*.example.com"}},
			edit: origin("https://example.org"), status: []int{403}},
		{name: "origin_allow_list_keeps_same_origin", opts: websocket.ServerOptions{OriginPatterns: []string{"*.example.com"}},
			edit: origin("http://HOST"), status: []int{101}},
		{name: "origin_allow_list_port_wildcard", opts: websocket.ServerOptions{OriginPatterns: []string{"localhost:*"}},
			edit: origin("http://localhost:3000"), status: []int{101}},
		{name: "origin_allow_list_full_origin_match", opts: websocket.ServerOptions{OriginPatterns: []string{"https://app.example.com"}},
			edit: origin("https://app.example.com"), status: []int{101}, note: "a pattern with :// is matched against the whole origin, scheme included"},
		{name: "origin_allow_list_full_origin_other_scheme", opts: websocket.ServerOptions{OriginPatterns: []string{"https://app.example.com"}},
			edit: origin("http://app.example.com"), status: []int{403}},
		{name: "origin_insecure_skip", opts: websocket.ServerOptions{InsecureSkipOriginCheck: true},
			edit: origin("http://evil.example"), status: []int{101}},
	}
}

// serverHandshakeOn returns the server's opening-handshake cases (RFC 6455
// 4.2) run against backend b.
func serverHandshakeOn(b backend) func(*testing.T) {
	return func(t *testing.T) { testServerHandshake(t, b) }
}

func testServerHandshake(t *testing.T, b backend) {
	for _, c := range append(serverHandshakeCases(), deflateServerCases()...) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.note != "" {
				t.Log(c.note)
			}
			status := c.statusOn(b)
			if b != backendHTTP && c.evloop != nil {
				t.Logf("%s backend: %s", b, c.evloopNote)
			}
			opts := c.opts
			host, _ := startEchoServer(t, b, &opts, apiBlocking)
			key := newKey(newRawPeer(nil, nil, true, seedOf(t.Name())).rng)
			req := defaultRequest(host, key)
			if c.edit != nil {
				req = c.edit(req, host)
			}
			raw := req.bytes()
			if c.wire != nil {
				raw = c.wire(raw)
			}
			resp, conn, _ := roundTripBytes(t, host, raw)
			defer conn.Close()
			if !slices.Contains(status, resp.StatusCode) {
				t.Fatalf("status %d, want %v", resp.StatusCode, status)
			}
			if c.check != nil && slices.Contains(c.status, resp.StatusCode) {
				c.check(t, resp, key)
			}
		})
	}
	t.Run("frames_in_same_write_as_request", func(t *testing.T) {
		t.Parallel()
		host, res := startEchoServer(t, b, &websocket.ServerOptions{CloseTimeout: closeTimeout}, apiBlocking)
		p := newRawPeer(nil, nil, true, seedOf(t.Name()))
		key := newKey(p.rng)
		raw := append(defaultRequest(host, key).bytes(), p.encode(textF("early"))...)
		resp, conn, br := roundTripBytes(t, host, raw)
		if resp.StatusCode != 101 {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		p.conn, p.br = conn, br
		c := tcase{want: []item{textI("early")}, note: "a frame that arrives with the request must not be lost when the connection is hijacked"}
		runWire(t, p, c)
		conn.Close()
		checkLibResult(t, c, res, "server")
	})
}

// clientHsCase is one opening-handshake case against the client (RFC 6455 4.1).
type clientHsCase struct {
	name string
	opts websocket.ClientOptions
	resp clientHandshake
	// check inspects the request and the result; err is what Dial returned.
	check func(t *testing.T, run *clientRun, err error)
	// conn, if set, inspects the connection Dial returned.
	conn func(t *testing.T, ws *websocket.Conn)
	note string
}

func respond(s string) clientHandshake { return func(*http.Request) string { return s } }

func wantDialError(t *testing.T, _ *clientRun, err error) {
	var de *dialError
	if !errors.As(err, &de) {
		t.Fatalf("Dial succeeded (reader ended with %v), want a handshake error", err)
	}
}

func wantHandshakeStatus(code int) func(*testing.T, *clientRun, error) {
	return func(t *testing.T, run *clientRun, err error) {
		var he *websocket.HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("Dial error %v, want a *websocket.HandshakeError", err)
		}
		if he.StatusCode != code || he.Response == nil || he.Response.StatusCode != code {
			t.Fatalf("HandshakeError status %d (response %v), want %d with the response", he.StatusCode, he.Response != nil, code)
		}
	}
}

func wantDialOK(t *testing.T, run *clientRun, err error) {
	var de *dialError
	if errors.As(err, &de) {
		t.Fatalf("Dial failed: %v", err)
	}
}

func clientHandshakeCases() []clientHsCase {
	accept := acceptingHandshake("")
	withProto := func(p string) clientHandshake { return acceptingHandshake("Sec-WebSocket-Protocol: " + p + "\r\n") }
	const fail = "RFC 6455 4.1: the client MUST fail the connection"
	return []clientHsCase{
		{name: "request_is_valid", resp: accept, check: func(t *testing.T, run *clientRun, err error) {
			r := run.req
			switch {
			case r.Method != "GET":
				t.Fatalf("method %s, want GET", r.Method)
			case !r.ProtoAtLeast(1, 1):
				t.Fatalf("protocol %s, want HTTP/1.1", r.Proto)
			case r.Host != run.conn.LocalAddr().String():
				t.Fatalf("Host %q, want %q", r.Host, run.conn.LocalAddr().String())
			case r.URL.Path != "/chat":
				t.Fatalf("path %q, want /chat", r.URL.Path)
			case !hasToken(r.Header.Values("Upgrade"), "websocket"):
				t.Fatalf("Upgrade %q", r.Header.Values("Upgrade"))
			case !hasToken(r.Header.Values("Connection"), "upgrade"):
				t.Fatalf("Connection %q", r.Header.Values("Connection"))
			case r.Header.Get("Sec-WebSocket-Version") != "13":
				t.Fatalf("Sec-WebSocket-Version %q", r.Header.Get("Sec-WebSocket-Version"))
			}
			k, kerr := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
			if kerr != nil || len(k) != 16 {
				t.Fatalf("Sec-WebSocket-Key %q is not base64 of 16 bytes", r.Header.Get("Sec-WebSocket-Key"))
			}
			if v := r.Header.Values("Sec-WebSocket-Protocol"); len(v) != 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q sent without any configured", v)
			}
			wantDialOK(t, run, err)
		}},
		{name: "offers_subprotocols", opts: websocket.ClientOptions{Protocols: []string{"a", "b"}}, resp: accept,
			check: func(t *testing.T, run *clientRun, err error) {
				if got := tokens(run.req.Header.Values("Sec-WebSocket-Protocol")); !slices.Equal(got, []string{"a", "b"}) {
					t.Fatalf("offered %q, want [a b] in order", got)
				}
			}},
		{name: "extra_request_headers", opts: websocket.ClientOptions{Header: http.Header{"X-Test": {"yes"}}}, resp: accept,
			check: func(t *testing.T, run *clientRun, err error) {
				if run.req.Header.Get("X-Test") != "yes" {
					t.Fatalf("X-Test missing from %v", run.req.Header)
				}
			}},
		{name: "agreed_subprotocol_reported", opts: websocket.ClientOptions{Protocols: []string{"a", "b"}}, resp: withProto("b"),
			check: wantDialOK, conn: func(t *testing.T, ws *websocket.Conn) {
				if ws.Protocol() != "b" {
					t.Errorf("Protocol() = %q, want %q", ws.Protocol(), "b")
				}
			}},
		{name: "wrong_accept", resp: respond("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey("wrong") + "\r\n\r\n"), check: wantDialError, note: fail},
		{name: "missing_accept", resp: respond("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), check: wantDialError, note: fail},
		{name: "missing_upgrade", resp: func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}, check: wantDialError, note: fail},
		{name: "upgrade_not_websocket", resp: func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}, check: wantDialError, note: fail},
		{name: "missing_connection", resp: func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}, check: wantDialError, note: fail},
		{name: "status_200", resp: respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), check: wantHandshakeStatus(200)},
		{name: "status_403", resp: respond("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"), check: wantHandshakeStatus(403),
			note: "issue 2: a failed handshake returns an error that carries the HTTP status and the response"},
		{name: "status_426", resp: respond("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"), check: wantHandshakeStatus(426)},
		{name: "subprotocol_not_offered", opts: websocket.ClientOptions{Protocols: []string{"a"}}, resp: withProto("z"), check: wantDialError,
			note: "RFC 6455 4.1: a subprotocol the client did not offer fails the connection"},
		{name: "two_subprotocols_selected", opts: websocket.ClientOptions{Protocols: []string{"a", "b"}}, resp: withProto("a, b"), check: wantDialError,
			note: "RFC 6455 4.2.2: the server selects one protocol; a list is not a selection the client offered"},
		{name: "subprotocol_when_none_offered", resp: withProto("z"), check: wantDialError},
		{name: "extension_not_offered", resp: acceptingHandshake("Sec-WebSocket-Extensions: x-unknown\r\n"), check: wantDialError,
			note: "RFC 6455 4.1: an extension the client did not offer fails the connection"},
	}
}

func testClientHandshake(t *testing.T) {
	for _, c := range append(clientHandshakeCases(), deflateClientCases()...) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.note != "" {
				t.Log(c.note)
			}
			opts := c.opts
			opts.CloseTimeout = closeTimeout
			run := startClient(t, &opts, c.resp, t.Name(), apiBlocking)
			var err error
			if run.peer != nil {
				// Give Dial time to judge the response; an accepted connection is
				// then closed by the tester.
				select {
				case ws := <-run.ws:
					if c.conn != nil {
						c.conn(t, ws)
					}
				case err = <-run.res:
				case <-time.After(readTimeout):
					t.Fatal("Dial did not return")
				}
				if err == nil {
					runWire(t, run.peer, tcase{})
					run.conn.Close()
					err = run.result(t, readTimeout+5*time.Second)
				}
			} else {
				err = run.result(t, readTimeout+5*time.Second)
			}
			c.check(t, run, err)
		})
	}
	t.Run("keys_differ_between_dials", func(t *testing.T) {
		t.Parallel()
		var keys []string
		for range 2 {
			run := startClient(t, &websocket.ClientOptions{CloseTimeout: closeTimeout}, respond("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"), t.Name(), apiBlocking)
			run.result(t, readTimeout)
			keys = append(keys, run.req.Header.Get("Sec-WebSocket-Key"))
		}
		if keys[0] == keys[1] {
			t.Fatalf("two dials sent the same Sec-WebSocket-Key %q (RFC 6455 4.1: randomly selected per connection)", keys[0])
		}
	})
	t.Run("frames_in_same_write_as_101", func(t *testing.T) {
		t.Parallel()
		p := newRawPeer(nil, nil, false, seedOf(t.Name()))
		early := string(p.encode(textF("early"))) + string(p.encode(pingF([]byte("p"))))
		run := startClient(t, &websocket.ClientOptions{CloseTimeout: closeTimeout}, func(r *http.Request) string {
			return acceptingHandshake("")(r) + early
		}, t.Name(), apiBlocking)
		c := tcase{want: []item{textI("early"), pongI([]byte("p"))}, note: "frames right behind the 101 in one TCP write must not be lost"}
		runWire(t, run.peer, c)
		run.conn.Close()
		checkLibErr(t, c, run.result(t, readTimeout+5*time.Second), "client")
	})
	t.Run("no_response_dial_respects_context", func(t *testing.T) {
		t.Parallel()
		t.Log("a server that never answers the handshake: Dial returns once its context expires")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
			done <- err
		}()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(readTimeout))
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Dial succeeded without a handshake response")
			}
		case <-time.After(500*time.Millisecond + readTimeout):
			t.Fatal("Dial still waiting long after its context expired")
		}
	})
	t.Run("failed_handshake_closes_tcp", func(t *testing.T) {
		t.Parallel()
		run := startClient(t, &websocket.ClientOptions{}, respond("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+acceptKey("wrong")+"\r\n\r\n"), t.Name(), apiBlocking)
		wantDialError(t, run, run.result(t, readTimeout+5*time.Second))
		if err := run.peer.expectTCPClose(readTimeout); err != nil {
			t.Fatalf("after a refused handshake: %v", err)
		}
	})
}
