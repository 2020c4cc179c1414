package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// lockedBuffer collects the server's log and reports the URL it listens on.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

var urlRE = regexp.MustCompile(`url=(ws://\S+)`)

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if m := urlRE.FindSubmatch(p); m != nil {
		select {
		case b.url <- string(m[1]):
		default:
		}
	}
	return len(p), nil
}

func startEcho(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{url: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("wsecho did not shut down")
		}
	})
	select {
	case u := <-logs.url:
		return u
	case err := <-done:
		t.Fatalf("wsecho exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("wsecho did not start")
	}
	return ""
}

func TestEchoKeepsTypes(t *testing.T) {
	url := startEcho(t, "-protocols", "a,b", "-header", "X-Echo: yes", "-max-length", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Protocols: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocol() != "b" || resp.Header.Get("X-Echo") != "yes" {
		t.Fatalf("protocol %q, headers %v", c.Protocol(), resp.Header)
	}
	for _, m := range []struct {
		typ  websocket.MessageType
		data string
	}{{websocket.TextMessage, "héllo"}, {websocket.BinaryMessage, "\x00\xff"}} {
		c.Write(ctx, m.typ, []byte(m.data))
		typ, got, err := c.Read(ctx)
		if err != nil || typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, got, err)
		}
	}
	// -max-length 100: a larger message closes with 1009.
	c.Write(ctx, websocket.BinaryMessage, make([]byte, 101))
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("over -max-length: %v", err)
	}
}

func TestEchoCompression(t *testing.T) {
	url := startEcho(t, "-compress", "-no-context-takeover")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.ClientOptions{Compression: &websocket.CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q", ext)
	}
	msg := strings.Repeat("compress me ", 200)
	c.Write(ctx, websocket.TextMessage, []byte(msg))
	if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
		t.Fatalf("compressed echo: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-max-length", "0"},
		{"-max-length", "lots"},
		{"-header", "no colon"},
		{"stray"},
		{"-compress-level", "42", "-compress"},
	} {
		err := run(context.Background(), args, io.Discard)
		if err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
