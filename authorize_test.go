package websocket

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// dialRefusal dials url with header and returns the *HandshakeError the
// refusal gave, failing the test if the handshake succeeded.
func dialRefusal(t *testing.T, url string, header http.Header) *HandshakeError {
	t.Helper()
	c, _, err := Dial(testContext(t), url, &ClientOptions{Header: header})
	if err == nil {
		c.CloseNow()
		t.Fatal("handshake accepted, want a refusal")
	}
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial error = %v, want a *HandshakeError", err)
	}
	return he
}

func TestCheckOrigin(t *testing.T) {
	opts := &ServerOptions{
		// Allowed: one origin that is not the server's own. The patterns
		// would allow another, but CheckOrigin replaces them.
		OriginPatterns: []string{"other.example"},
		CheckOrigin: func(r *http.Request) bool {
			return r.Header.Get("Origin") == "https://app.example"
		},
	}
	url := serve(t, echoHandler(opts))

	c := dialTest(t, url, &ClientOptions{Header: http.Header{"Origin": {"https://app.example"}}})
	c.Close(StatusNormalClosure, "")

	for _, origin := range []string{"https://other.example", "https://evil.example"} {
		he := dialRefusal(t, url, http.Header{"Origin": {origin}})
		if he.StatusCode != http.StatusForbidden || !strings.Contains(he.Reason, "origin not allowed") {
			t.Errorf("origin %s: refused with %d %q, want 403 and \"origin not allowed\"", origin, he.StatusCode, he.Reason)
		}
	}
}

func TestAuthorize(t *testing.T) {
	opts := &ServerOptions{
		Authorize: func(r *http.Request) error {
			switch r.Header.Get("Authorization") {
			case "Bearer good":
				return nil
			case "":
				return fmt.Errorf("checking token: %w", &HandshakeError{StatusCode: http.StatusUnauthorized, Reason: "token required"})
			}
			return errors.New("token rejected")
		},
	}
	url := serve(t, echoHandler(opts))

	c := dialTest(t, url, &ClientOptions{Header: http.Header{"Authorization": {"Bearer good"}}})
	ctx := testContext(t)
	if err := c.Write(ctx, TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hi" {
		t.Fatalf("echo = %q, %v", msg, err)
	}
	c.Close(StatusNormalClosure, "")

	he := dialRefusal(t, url, nil)
	if he.StatusCode != http.StatusUnauthorized || !strings.Contains(he.Reason, "token required") {
		t.Errorf("no token: refused with %d %q, want 401 and the reason", he.StatusCode, he.Reason)
	}
	he = dialRefusal(t, url, http.Header{"Authorization": {"Bearer bad"}})
	if he.StatusCode != http.StatusForbidden || !strings.Contains(he.Reason, "token rejected") {
		t.Errorf("bad token: refused with %d %q, want 403 and the error's text", he.StatusCode, he.Reason)
	}

	// Authorize runs after the origin policy: a foreign origin is refused
	// even with a good token.
	he = dialRefusal(t, url, http.Header{"Authorization": {"Bearer good"}, "Origin": {"https://evil.example"}})
	if he.StatusCode != http.StatusForbidden || !strings.Contains(he.Reason, "origin") {
		t.Errorf("foreign origin: refused with %d %q, want the origin refusal", he.StatusCode, he.Reason)
	}
}
