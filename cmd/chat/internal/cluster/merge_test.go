package cluster_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
	"github.com/wsdriver/websocket/cmd/chat/internal/server"
)

var signSecret = []byte("0123456789abcdef0123456789abcdef-cluster")

func signFor(t *testing.T, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(signSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedJoin connects a JSON client with a sign-in token and a resume
// token (and a requested nickname, which sign-in must ignore).
func signedJoin(t *testing.T, base, room, token, resume, nick string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := base + "/chat/" + room + "?resume=" + resume + "&nick=" + nick
	h := http.Header{"Authorization": {"Bearer " + token}}
	c, _, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Protocols: []string{chat.Subprotocol}, Header: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	cl := &client{t: t, c: c}
	w := cl.next(func(e chat.Event) bool { return e.Type == "welcome" })
	if !w.SignedIn {
		t.Fatalf("welcome does not say signed in: %+v", w)
	}
	cl.nick = w.Nick
	return cl
}

// TestSignedInAcrossNodes: with sign-in on two nodes, a user's nickname is
// the token's on every node, for several connections at once (each with
// its own resume token).
func TestSignedInAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	sc := server.Config{Hub: chat.Config{History: 10}, AuthSecret: signSecret}
	a, b := startServerNode(t, ns.URL(), 1, sc), startServerNode(t, ns.URL(), 1, sc)
	alice := signFor(t, "alice")
	x := signedJoin(t, a.ws, "lobby", alice, "tab-one", "")
	y := signedJoin(t, b.ws, "lobby", alice, "tab-two", "")
	z := signedJoin(t, a.ws, "lobby", alice, "tab-three", "")
	for _, c := range []*client{x, y, z} {
		if c.nick != "alice" {
			t.Fatalf("signed-in alice got nickname %q", c.nick)
		}
	}
	x.say("hello from a")
	if e := y.next(isMessage); e.Nick != "alice" || e.Text != "hello from a" {
		t.Fatalf("on node b: %+v", e)
	}
}

// TestResumeCannotTakeSignedInName: someone who learnt a signed-in user's
// resume token (it travels in the URL) and signs in as themselves with it,
// asking for the user's name, on the other node, keeps their own name;
// the user keeps theirs; nor does an anonymous connection with the token
// on a node without sign-in.
func TestResumeCannotTakeSignedInName(t *testing.T) {
	ns := natstest.Start(t)
	sc := server.Config{Hub: chat.Config{History: 10}, AuthSecret: signSecret}
	a, b := startServerNode(t, ns.URL(), 1, sc), startServerNode(t, ns.URL(), 1, sc)
	x := signedJoin(t, a.ws, "lobby", signFor(t, "alice"), "alices-tab", "")
	m := signedJoin(t, b.ws, "lobby", signFor(t, "mallory"), "alices-tab", "alice")
	if x.nick != "alice" || m.nick != "mallory" {
		t.Fatalf("nicknames: alice's connection %q, mallory's %q", x.nick, m.nick)
	}
	// A node without sign-in (a rolling change that turns sign-in on) in
	// the same cluster: the resume token does not give alice's name away
	// there either.
	c := startServerNode(t, ns.URL(), 1, server.Config{Hub: chat.Config{History: 10}})
	if anon := join(t, c.ws+"/chat/lobby?nick=alice&resume=alices-tab"); anon.nick == "alice" {
		t.Fatal("an anonymous connection with alice's resume token took her name")
	}
	// Both still hold their names, on both nodes.
	m.say("who am i")
	if e := x.next(isMessage); e.Nick != "mallory" {
		t.Fatalf("mallory's message reached node a as %+v", e)
	}
	x.say("still alice")
	if e := m.next(func(e chat.Event) bool { return isMessage(e) && e.Text == "still alice" }); e.Nick != "alice" {
		t.Fatalf("alice's message reached node b as %+v", e)
	}
}

// TestClusterReplayMarkersAndQueue: in cluster mode too, a plain-text
// newcomer's replay is framed by the markers, and a replay longer than
// -queue does not disconnect the newcomer as a slow consumer.
func TestClusterReplayMarkersAndQueue(t *testing.T) {
	ns := natstest.Start(t)
	hc := chat.Config{History: 30, Queue: 4}
	a, b := startNodeWith(t, ns.URL(), 1, hc), startNodeWith(t, ns.URL(), 1, hc)
	w := join(t, a.ws+"/chat/replay")
	const n = 20
	for i := range n {
		w.say("m" + strings.Repeat("x", i))
		w.next(isMessage) // stored; one at a time, so that w's own queue stays short
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, _, err := websocket.Dial(ctx, b.ws+"/chat/replay", nil) // plain text
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseNow()
	read := func() string {
		t.Helper()
		_, data, err := p.Read(ctx)
		if err != nil {
			t.Fatalf("plain-text newcomer: %v", err)
		}
		return string(data)
	}
	for line := read(); line != " .... earlier messages (20):"; line = read() {
		if strings.Contains(line, "earlier") {
			t.Fatalf("replay starts with %q", line)
		}
	}
	for i := range n {
		if line := read(); !strings.HasSuffix(line, "m"+strings.Repeat("x", i)) {
			t.Fatalf("replayed message %d: %q", i, line)
		}
	}
	if line := read(); line != " .... end of earlier messages." {
		t.Fatalf("after the replay: %q", line)
	}
	// Still connected: a live message arrives.
	w.say("live")
	for line := read(); !strings.HasSuffix(line, "live"); line = read() {
	}
}
