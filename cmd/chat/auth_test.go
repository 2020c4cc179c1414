package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdriver/websocket"
)

const testAuthSecret = "a-secret-of-at-least-32-bytes-for-tests"

// issueToken is what a site that signs its users in to the chat does: an
// HS256 JWT with the user's name in sub, an expiry and, optionally, rooms.
func issueToken(t *testing.T, sub string, exp time.Duration, rooms ...string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp).Unix()}
	if rooms != nil {
		claims["rooms"] = rooms
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testAuthSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignInProgram: the program with -auth-secret-file accepts a signed
// token (the name is the token's) and refuses a missing or expired one
// with 401 and the reason.
func TestSignInProgram(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(testAuthSecret+"\n"), 0o600)
	ch := startChild(t, "-log-level warn -addr 127.0.0.1:0 -history 0 -auth-secret-file "+secretFile+" -data "+t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ch.url+"/chat?nick=someone-else", &websocket.ClientOptions{Header: http.Header{"Authorization": {"Bearer " + issueToken(t, "ann", time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.TextMessage, []byte("signed in")); err != nil {
		t.Fatal(err)
	}
	for m := readT(t, c); m != "ann: signed in"; m = readT(t, c) {
		if strings.HasSuffix(m, ": signed in") {
			t.Fatalf("the message came as %q, want it from the token's user ann", m)
		}
	}
	for tok, want := range map[string]string{"": "sign-in required", issueToken(t, "ann", -time.Hour): "token expired"} {
		_, resp, err := websocket.Dial(ctx, ch.url+"/chat?token="+tok, nil)
		var he *websocket.HandshakeError
		if !errors.As(err, &he) || resp.StatusCode != 401 || !strings.Contains(err.Error(), want) {
			t.Errorf("token %q: %v, want 401 saying %q", tok, err, want)
		}
	}
}

func TestErrorAuthSecret(t *testing.T) {
	msg := runBad(t, "-addr 127.0.0.1:0 -data "+t.TempDir(), "CHAT_AUTH_SECRET=short")
	mustSay(t, "short secret", msg, []string{"at least 32", "openssl rand"})
}

// TestBrowserSignIn: the page opened with #token= connects as the token's
// user (the name field cannot be changed); without a token it says so and
// links to the site's sign-in page.
func TestBrowserSignIn(t *testing.T) {
	bctx := browser(t)
	cfg := chatConfig(t.TempDir())
	cfg.AuthSecret = []byte(testAuthSecret)
	cfg.AuthLoginURL = "https://example.test/login?next=chat"
	ln := listen(t, "127.0.0.1:0")
	serveAt(t, cfg, ln, nil)
	url := "http://" + ln.Addr().String() + "/"

	a, _ := tab(t, bctx, url+"#token="+issueToken(t, "ann", time.Hour))
	if nick := waitOpen(t, a); nick != "ann" {
		t.Fatalf("signed-in page's name %q", nick)
	}
	if !evalJS[bool](t, a, `document.getElementById("nick-input").readOnly && !location.hash.includes("token")`) {
		t.Error("the name can be edited, or the token stays in the address bar")
	}
	say(t, a, "hello as ann")
	waitMessage(t, a, "ann", "hello as ann")

	b, _ := tab(t, bctx, url)
	waitJS(t, b, "sign-in link", `[...document.querySelectorAll("#messages li.signin a")].some(a => a.href === "https://example.test/login?next=chat")`)

	// An expired token: the page learns why and stops retrying.
	c, _ := tab(t, bctx, url+"#token="+issueToken(t, "ann", -time.Hour))
	waitJS(t, c, "expiry notice", `[...document.querySelectorAll("#messages li.signin")].some(li => li.textContent.includes("token expired"))`)
}
