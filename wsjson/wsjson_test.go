package wsjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsjson"
)

type point struct {
	X, Y int
	Name string
}

// pair returns the two ends of a WebSocket connection over 127.0.0.1,
// closed when the test ends.
func pair(t testing.TB) (server, client *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(accepted)
			return
		}
		accepted <- c
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	select {
	case server = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.CloseNow(); server.CloseNow() })
	return server, client
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrip(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	want := point{1, -2, "<a&b>"}
	if err := wsjson.Write(ctx, client, want); err != nil {
		t.Fatal(err)
	}
	// The wire holds exactly json.Marshal's output: text, no newline.
	typ, msg, err := server.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marshalled, _ := json.Marshal(want)
	if typ != websocket.TextMessage || string(msg) != string(marshalled) {
		t.Fatalf("got %v %q, want text %q", typ, msg, marshalled)
	}
	if err := server.Write(ctx, websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	var got point
	if err := wsjson.Read(ctx, client, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// A message that is not JSON, or not JSON of the right shape, is reported
// as a *DecodeError wrapping encoding/json's error, and the connection
// stays usable: the next message reads normally.
func TestBadJSONLeavesConnectionUsable(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	for _, m := range []string{`{"X": 1`, `not json`, `{"X": "one"}`} {
		if err := server.Write(ctx, websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wsjson.Write(ctx, server, point{X: 7}); err != nil {
		t.Fatal(err)
	}
	var p point
	for i, want := range []any{new(*json.SyntaxError), new(*json.SyntaxError), new(*json.UnmarshalTypeError)} {
		err := wsjson.Read(ctx, client, &p)
		var de *wsjson.DecodeError
		if !errors.As(err, &de) || de.Type != websocket.TextMessage {
			t.Fatalf("message %d: got %v, want a *DecodeError for a text message", i, err)
		}
		if !errors.As(err, want) {
			t.Fatalf("message %d: %v does not wrap %T", i, err, want)
		}
	}
	p = point{}
	if err := wsjson.Read(ctx, client, &p); err != nil || p.X != 7 {
		t.Fatalf("after bad messages: got %+v, %v", p, err)
	}
	if client.ReadyState() != websocket.Open {
		t.Fatalf("state %v, want open", client.ReadyState())
	}
}

// JSON in a binary message is accepted.
func TestReadBinary(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	if err := server.Write(ctx, websocket.BinaryMessage, []byte(`{"Name":"bin"}`)); err != nil {
		t.Fatal(err)
	}
	var p point
	if err := wsjson.Read(ctx, client, &p); err != nil || p.Name != "bin" {
		t.Fatalf("got %+v, %v", p, err)
	}
}

// A value that does not marshal sends nothing.
func TestWriteUnmarshallable(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	var ute *json.UnsupportedTypeError
	if err := wsjson.Write(ctx, client, map[string]any{"f": func() {}}); !errors.As(err, &ute) {
		t.Fatalf("got %v, want *json.UnsupportedTypeError", err)
	}
	if err := wsjson.Write(ctx, client, "next"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := wsjson.Read(ctx, server, &s); err != nil || s != "next" {
		t.Fatalf("got %q, %v; want the message after the failed one", s, err)
	}
}

// Connection errors come back as the connection reports them: the peer's
// close is a *websocket.CloseError, not a DecodeError.
func TestReadAfterClose(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	done := make(chan error, 1)
	go func() { done <- server.Close(websocket.StatusGoingAway, "bye") }()
	var v any
	err := wsjson.Read(ctx, client, &v)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("got %v, want a close with 1001", err)
	}
	var de *wsjson.DecodeError
	if errors.As(err, &de) {
		t.Fatalf("close reported as a DecodeError: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
}

// Large messages round-trip, and their buffers are not kept by the pools.
func TestLargeValue(t *testing.T) {
	server, client := pair(t)
	ctx := testContext(t)
	big := strings.Repeat("x", 200<<10)
	errc := make(chan error, 1)
	go func() { errc <- wsjson.Write(ctx, client, big) }()
	var got string
	if err := wsjson.Read(ctx, server, &got); err != nil || got != big {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
