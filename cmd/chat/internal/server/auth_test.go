package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func signToken(t *testing.T, secret []byte, sub string, exp time.Duration, rooms ...string) string {
	t.Helper()
	c := tokenClaims{Rooms: rooms, RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}
	if exp != 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(exp))
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialStatus dials and returns the connection, or the refusal's status and
// body.
func dialStatus(t *testing.T, url string, h http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Header: h, Protocols: []string{chat.Subprotocol}})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, 101, ""
	}
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return nil, resp.StatusCode, err.Error()
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestSignIn(t *testing.T) { eachBackend(t, testSignIn) }

func testSignIn(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{History: 0}, AuthSecret: testSecret}, false)

	// Accepted: the name comes from the token, whatever ?nick= says, in
	// the header or the query parameter.
	ann, code, _ := dialStatus(t, ts.wsURL+"/chat?nick=mallory", bearer(signToken(t, testSecret, "ann", time.Hour)))
	if code != 101 {
		t.Fatalf("good token: %d", code)
	}
	var w chat.Event
	json.Unmarshal([]byte(read(t, ann)), &w)
	if w.Type != "welcome" || w.Nick != "ann" || !w.SignedIn {
		t.Fatalf("welcome %+v", w)
	}
	ann2, code, _ := dialStatus(t, ts.wsURL+"/chat?token="+signToken(t, testSecret, "ann", time.Hour), nil)
	if code != 101 {
		t.Fatalf("the same user in a second tab: %d", code)
	}
	json.Unmarshal([]byte(read(t, ann2)), &w)
	if w.Nick != "ann" {
		t.Fatalf("second tab's welcome %+v", w)
	}
	// Someone else cannot take the name.
	bob, _, _ := dialStatus(t, ts.wsURL+"/chat?nick=ann", bearer(signToken(t, testSecret, "bob", time.Hour, "lobby")))
	json.Unmarshal([]byte(read(t, bob)), &w)
	if w.Nick != "bob" {
		t.Fatalf("bob's welcome %+v", w)
	}
	write(t, bob, `{"type":"message","text":"/nick ann"}`)
	for {
		var e chat.Event
		json.Unmarshal([]byte(read(t, bob)), &e)
		if e.Type == "error" {
			if e.Code != "nick_refused" || !strings.Contains(e.Text, "sign-in") {
				t.Fatalf("/nick when signed in: %+v", e)
			}
			break
		}
	}
	// A room the token does not list: refused at the handshake (403) and
	// by /join.
	write(t, bob, `{"type":"message","text":"/join dev"}`)
	for {
		var e chat.Event
		json.Unmarshal([]byte(read(t, bob)), &e)
		if e.Type == "error" {
			if e.Code != "forbidden" || !strings.Contains(e.Text, `"dev"`) {
				t.Fatalf("/join dev: %+v", e)
			}
			break
		}
	}
	if _, code, body := dialStatus(t, ts.wsURL+"/chat/dev", bearer(signToken(t, testSecret, "bob", time.Hour, "lobby"))); code != 403 || !strings.Contains(body, `does not allow room "dev"`) {
		t.Fatalf("room not in the token: %d %s", code, body)
	}

	// Refused: 401 with the reason.
	for name, c := range map[string]struct {
		h    http.Header
		want string
	}{
		"no token":       {nil, "sign-in required"},
		"expired":        {bearer(signToken(t, testSecret, "ann", -time.Hour)), "token expired at"},
		"no expiry":      {bearer(signToken(t, testSecret, "ann", 0)), "no expiry"},
		"other secret":   {bearer(signToken(t, []byte("another secret, also 32 bytes long!"), "ann", time.Hour)), "signature does not match"},
		"bad name":       {bearer(signToken(t, testSecret, "a b", time.Hour)), "not a usable name"},
		"not a JWT":      {bearer("nonsense"), "token refused"},
		"alg none":       {bearer(unsignedToken(t)), "token refused"},
		"bearer garbage": {http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, "sign-in required"},
	} {
		_, code, body := dialStatus(t, ts.wsURL+"/chat", c.h)
		if code != 401 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 401 saying %q", name, code, body, c.want)
		}
	}

	// The page's question after a refused handshake.
	req, _ := http.NewRequest("GET", ts.url+"/auth/check?room=lobby", nil)
	req.Header.Set("Authorization", "Bearer "+signToken(t, testSecret, "ann", -time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans map[string]any
	json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(ans["error"].(string), "expired") {
		t.Fatalf("/auth/check: %d %v", resp.StatusCode, ans)
	}
}

func unsignedToken(t *testing.T) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAnonymousByDefault: without a secret, tokens are not needed and the
// seed's behaviour is unchanged.
func TestAnonymousByDefault(t *testing.T) { eachBackend(t, testAnonymousByDefault) }

func testAnonymousByDefault(t *testing.T, backend string) {
	ts := start(t, Config{Backend: backend, Hub: chat.Config{History: 0}}, false)
	c, code, _ := dialStatus(t, ts.wsURL+"/chat?nick=ann", nil)
	if code != 101 {
		t.Fatalf("anonymous: %d", code)
	}
	var w chat.Event
	json.Unmarshal([]byte(read(t, c)), &w)
	if w.Nick != "ann" {
		t.Fatalf("welcome %+v", w)
	}
}
