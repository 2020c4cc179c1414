package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
)

// jsonClient is a chat.v1.json client for the process tests.
type jsonClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialJSON(t *testing.T, url string) (*jsonClient, chat.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Protocols: []string{chat.Subprotocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	jc := &jsonClient{t: t, c: c}
	return jc, jc.next(func(e chat.Event) bool { return e.Type == "welcome" })
}

func (jc *jsonClient) next(ok func(chat.Event) bool) chat.Event {
	jc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, b, err := jc.c.Read(ctx)
		if err != nil {
			jc.t.Fatalf("reading: %v", err)
		}
		var e chat.Event
		if err := json.Unmarshal(b, &e); err != nil {
			jc.t.Fatalf("bad event %q", b)
		}
		if ok(e) {
			return e
		}
	}
}

// post sends text and waits for its echo: JetStream has stored it.
func (jc *jsonClient) post(text string) chat.Event {
	jc.t.Helper()
	b, _ := json.Marshal(map[string]string{"type": "message", "text": text})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := jc.c.Write(ctx, websocket.TextMessage, b); err != nil {
		jc.t.Fatal(err)
	}
	e := jc.next(func(e chat.Event) bool { return e.Type == "error" || e.Type == "message" && e.Text == text })
	if e.Type == "error" {
		jc.t.Fatalf("posting %q: %+v", text, e)
	}
	return e
}

func isMsg(e chat.Event) bool { return e.Type == "message" }

// TestClusterKill9 runs two chat processes against one NATS server and
// kills one with SIGKILL: the other node announces its user's departure
// and frees the nickname within the dead-node bound, and the user resumes
// on the surviving node with ?since= and sees every message exactly once.
func TestClusterKill9(t *testing.T) {
	ns := natstest.Start(t)
	args := "-log-level warn -addr 127.0.0.1:0 -rate 0 -nats " + ns.URL() + " -nats-dead-after 2s"
	a := startChild(t, args)
	b := startChild(t, args)
	w, _ := dialJSON(t, b.url+"/chat/k?nick=watcher")
	x, _ := dialJSON(t, a.url+"/chat/k?nick=xavier")
	w.next(func(e chat.Event) bool { return e.Type == "join" && e.Nick == "xavier" })
	var last uint64
	for i := range 10 {
		last = x.post(fmt.Sprintf("x%d", i)).ID
	}
	for i := range 10 {
		if e := w.next(isMsg); e.Text != fmt.Sprintf("x%d", i) {
			t.Fatalf("watcher got %q, want x%d", e.Text, i)
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	killed := time.Now()
	var sent []string
	for i := range 5 {
		sent = append(sent, w.post(fmt.Sprintf("w%d", i)).Text)
	}
	w.next(func(e chat.Event) bool { return e.Type == "leave" && e.Nick == "xavier" })
	t.Logf("leave announced %v after kill -9 (-nats-dead-after 2s)", time.Since(killed).Round(100*time.Millisecond))
	// Resume on the other node, with the nickname (freed) and the last ID.
	y, welcome := dialJSON(t, fmt.Sprintf("%s/chat/k?nick=xavier&since=%d", b.url, last))
	if welcome.Nick != "xavier" {
		t.Fatalf("the dead node's nickname was not freed: got %q", welcome.Nick)
	}
	for _, want := range sent {
		if e := y.next(isMsg); e.Text != want {
			t.Fatalf("resumed: %q, want %q (no gap, no duplicate)", e.Text, want)
		}
	}
	w.post("live")
	if e := y.next(isMsg); e.Text != "live" {
		t.Fatalf("after the replay: %q", e.Text)
	}
	w.c.Write(context.Background(), websocket.TextMessage, []byte(`{"type":"who"}`))
	p := w.next(func(e chat.Event) bool { return e.Type == "presence" })
	if got := strings.Join(p.Users, ","); got != "watcher,xavier" {
		t.Fatalf("presence after the resume: %s", got)
	}
}

func TestClusterFlags(t *testing.T) {
	var help strings.Builder
	parseFlags([]string{"-help"}, func(string) string { return "" }, &help)
	for _, want := range []string{"-nats", "CHAT_NATS", "-nats-replicas", "-nats-dead-after", "Cluster mode", "-data is not used",
		"-trusted-proxy names the load balancer", "-auth-secret must be the same on every node", "-tls-cert is per node", "-max-conns-per-ip"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help does not mention %s", want)
		}
	}
	env := map[string]string{"CHAT_NATS": "nats://127.0.0.1:4222", "CHAT_NATS_REPLICAS": "3"}
	o, err := parseFlags(nil, func(k string) string { return env[k] }, &help)
	if err != nil || o.cluster.nats != env["CHAT_NATS"] || o.cluster.replicas != 3 {
		t.Fatalf("from the environment: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"-nats-replicas", "0"}, func(string) string { return "" }, &help); err == nil {
		t.Error("-nats-replicas 0 accepted")
	}
}
