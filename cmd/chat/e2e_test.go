package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/wsdriver/websocket"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/server"
)

// -screenshot writes the browser test's screenshot to a path, as
// docs/chat.png is made: go test -run TestBrowser -screenshot ../../docs/chat.png
var screenshot = flag.String("screenshot", "", "write the chat page's screenshot to this file")

const chromium = "/usr/bin/chromium"

// browser starts headless Chromium with the project's flags.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; run scripts/install-deps.sh", chromium)
		}
		t.Skipf("%s not installed", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 760),
	)
	opts = append(opts, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// tab opens a new tab at url.
func tab(t *testing.T, bctx context.Context, url string) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx, cancel
}

// waitJS polls a JavaScript boolean expression until it holds.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		dump, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, dump)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func q(s string) string { return fmt.Sprintf("%q", s) } // a JS string literal

func waitOpen(t *testing.T, ctx context.Context) string {
	t.Helper()
	waitJS(t, ctx, "connected", `document.getElementById("status").dataset.state === "open" && document.getElementById("nick-input").value !== ""`)
	return evalJS[string](t, ctx, `document.getElementById("nick-input").value`)
}

func say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("input").value = ""`), chromedp.Focus(chromedp.CSS("#input")), chromedp.SendKeys(chromedp.CSS("#input"), text+kb.Enter)); err != nil {
		t.Fatalf("typing %q: %v", text, err)
	}
}

func waitMessage(t *testing.T, ctx context.Context, nick, text string) {
	t.Helper()
	waitJS(t, ctx, "message "+text, `[...document.querySelectorAll("#messages li.msg")].some(li =>
		li.querySelector(".body").textContent === `+q(text)+` && li.querySelector(".nick").textContent.startsWith(`+q(nick)+`))`)
}

func countMessages(t *testing.T, ctx context.Context, text string) int {
	t.Helper()
	return evalJS[int](t, ctx, `[...document.querySelectorAll("#messages li.msg .body")].filter(b => b.textContent === `+q(text)+`).length`)
}

func waitNotice(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	waitJS(t, ctx, "notice "+text, `[...document.querySelectorAll("#messages li.notice")].some(li => li.textContent.endsWith(`+q(text)+`))`)
}

// waitConnections polls the server's /metrics until n clients are connected.
func waitConnections(t *testing.T, addr string, n int) {
	t.Helper()
	want := fmt.Sprintf("\nchat_connections %d\n", n)
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d connections", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveAt runs a chat server on fixed listeners until the returned stop.
func serveAt(t *testing.T, cfg server.Config, ln, wsLn net.Listener) (stop func()) {
	t.Helper()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(ln, wsLn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, nil, nil) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("server did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	// Re-binding the port of a server that just stopped can race with the
	// kernel releasing it; retry briefly.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil
}

// backends are the servers the chat runs on (-backend); the end-to-end
// tests that do not need TLS or HTTP/2 run on each (eachBackend).
var backends = []string{server.BackendHTTP, server.BackendEventLoop}

// eachBackend runs test once per backend, as a subtest named after it.
func eachBackend(t *testing.T, test func(t *testing.T, backend string)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { test(t, b) })
	}
}

// chatConfigOn is chatConfig on the named backend.
func chatConfigOn(backend, data string) server.Config {
	cfg := chatConfig(data)
	cfg.Backend = backend
	return cfg
}

func chatConfig(data string) server.Config {
	return server.Config{
		Hub:             chat.Config{MaxMessage: 4096, Rate: 20, Burst: 20, Queue: 256, History: 100, PingInterval: 5 * time.Second, WriteTimeout: 5 * time.Second},
		DataDir:         data,
		ShutdownTimeout: 20 * time.Second, // above the 5 s close timeout, so a slow browser tab on a loaded machine is not a failure
	}
}

func TestBrowser(t *testing.T) { eachBackend(t, testBrowser) }

func testBrowser(t *testing.T, backend string) {
	bctx := browser(t)
	data := t.TempDir()
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	stop := serveAt(t, chatConfigOn(backend, data), ln, nil)
	url := "http://" + addr + "/"

	// Two tabs chat and both see the messages.
	a, _ := tab(t, bctx, url)
	nickA := waitOpen(t, a)
	b, closeB := tab(t, bctx, url)
	nickB := waitOpen(t, b)
	if nickA == nickB || !strings.HasPrefix(nickA, "user-") || !strings.HasPrefix(nickB, "user-") {
		t.Fatalf("nicknames %q and %q", nickA, nickB)
	}
	waitNotice(t, a, nickB+" has joined.")
	if !evalJS[bool](t, a, `[...document.querySelectorAll("input, textarea")].every(e => e.labels && e.labels.length > 0)`) {
		t.Error("a form field has no label")
	}
	waitJS(t, a, "user list", `[...document.querySelectorAll("#users li")].length === 2`)
	say(t, a, "hello from A")
	waitMessage(t, a, nickA, "hello from A")
	waitMessage(t, b, nickA, "hello from A")
	if !evalJS[bool](t, a, `document.querySelector("#messages li.msg").classList.contains("own")`) {
		t.Error("A's own message is not marked as its own in A")
	}
	if evalJS[bool](t, b, `document.querySelector("#messages li.msg").classList.contains("own")`) {
		t.Error("A's message is marked as own in B")
	}
	// Text only: markup arrives as text, never as elements.
	evil := `<img src=x onerror="document.title='pwned'"><b>bold</b>`
	say(t, b, evil)
	waitMessage(t, a, nickB, evil)
	if n := evalJS[int](t, a, `document.querySelectorAll("#messages img, #messages b").length`); n != 0 {
		t.Errorf("message markup was rendered as %d elements", n)
	}
	say(t, b, "/me waves")
	waitMessage(t, a, nickB, "* "+nickB+" waves")

	// A tab closes; the other sees the leave notice.
	closeB()
	waitNotice(t, a, nickB+" has left.")
	waitJS(t, a, "user list after leave", `[...document.querySelectorAll("#users li")].length === 1`)

	// The server restarts; the page reconnects and shows history, with no
	// message twice.
	stop()
	waitJS(t, a, "disconnected status", `document.getElementById("status").dataset.state === "closed"`)
	serveAt(t, chatConfigOn(backend, data), listen(t, addr), nil)
	waitJS(t, a, "reconnected", `document.getElementById("status").dataset.state === "open"`)
	say(t, a, "after restart")
	waitMessage(t, a, nickA, "after restart")
	if n := countMessages(t, a, "hello from A"); n != 1 {
		t.Errorf("after the reconnect 'hello from A' is shown %d times", n)
	}
	c, _ := tab(t, bctx, url)
	waitOpen(t, c)
	waitMessage(t, c, nickA, "hello from A") // from the history file
	waitMessage(t, c, nickB, evil)
	waitMessage(t, c, nickA, "after restart")

	// Rooms: switching shows the other room's (empty) history and back.
	if err := chromedp.Do(c, chromedp.SendKeys(chromedp.CSS("#room-input"), "dev"+kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, c, "room dev", `location.hash === "#dev" && document.getElementById("status").dataset.state === "open" && document.querySelectorAll("#messages li.msg").length === 0`)
	say(t, c, "in dev")
	waitMessage(t, c, "", "in dev")
	if countMessages(t, a, "in dev") != 0 {
		t.Error("a message in #dev reached #lobby")
	}
	if err := chromedp.Do(c, chromedp.Click(chromedp.CSS(`#rooms button[data-room="lobby"]`))); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, c, nickA, "after restart")

}

func rename(t *testing.T, ctx context.Context, nick string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("nick-input").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#nick-input"), nick+kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "rename to "+nick, `document.getElementById("nick-input").value === `+q(nick)+` && [...document.querySelectorAll("#users li")].some(li => li.textContent.startsWith(`+q(nick)+`))`)
}

// TestScreenshot stages a conversation and saves docs/chat.png; it runs
// only when -screenshot names the file.
func TestScreenshot(t *testing.T) {
	if *screenshot == "" {
		t.Skip("no -screenshot file given")
	}
	bctx := browser(t)
	ln := listen(t, "127.0.0.1:0")
	serveAt(t, chatConfig(""), ln, nil)
	url := "http://" + ln.Addr().String() + "/"
	// Some rooms with history, for the room list, from a plain client.
	for _, room := range []string{"dev", "design", "random"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/chat/"+room, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(ctx, websocket.TextMessage, []byte("hello "+room))
		c.Read(ctx)
		c.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	sam, _ := tab(t, bctx, url)
	waitOpen(t, sam)
	rename(t, sam, "sam")
	maria, _ := tab(t, bctx, url)
	waitOpen(t, maria)
	rename(t, maria, "maria")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lee, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/chat?nick=lee", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lee.CloseNow()
	say(t, maria, "Morning! Is the deploy still on for 3pm?")
	waitMessage(t, sam, "maria", "Morning! Is the deploy still on for 3pm?")
	say(t, sam, "Yes — migrations ran clean on staging.")
	waitMessage(t, sam, "sam", "Yes — migrations ran clean on staging.")
	lee.Write(ctx, websocket.TextMessage, []byte("I'll keep an eye on the dashboards."))
	waitMessage(t, sam, "lee", "I'll keep an eye on the dashboards.")
	say(t, maria, "/me brings coffee")
	waitMessage(t, sam, "maria", "* maria brings coffee")
	say(t, sam, "Perfect. Ping me in #dev if anything looks off.")
	waitMessage(t, sam, "sam", "Perfect. Ping me in #dev if anything looks off.")
	waitJS(t, sam, "room list", `document.querySelectorAll("#rooms li").length === 4`)
	// Synthesised Enter keys leave a stray newline behind (a real keyboard
	// does not); clear it before typing the draft.
	if err := chromedp.Do(sam, chromedp.Evaluate[chromedp.Void](`document.getElementById("input").value = ""`),
		chromedp.Focus(chromedp.CSS("#input")), chromedp.SendKeys(chromedp.CSS("#input"), "Ship it")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	png, err := chromedp.Run(sam, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(*screenshot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot written to %s", *screenshot)
}

// TestSeedPage runs the tutorial's own page, unchanged, against the seed's
// two-port layout: the page on one port, the WebSocket on 12345.
func TestSeedPage(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	pagePort := ln.Addr().(*net.TCPAddr).Port
	// The page hard-codes ws://localhost:12345. If that port is free the
	// test uses it; if another process holds it (shared CI machines),
	// Chromium's resolver maps localhost:12345 to the port we got, which
	// leaves the page and what it sends (Host, Origin) untouched.
	var extra []chromedp.ExecAllocatorOption
	wsLn, err := net.Listen("tcp", "127.0.0.1:12345")
	if err != nil {
		wsLn = listen(t, "127.0.0.1:0")
		rule := fmt.Sprintf("MAP localhost:12345 127.0.0.1:%d", wsLn.Addr().(*net.TCPAddr).Port)
		t.Logf("port 12345 is busy (%v); using --host-resolver-rules=%q", err, rule)
		extra = append(extra, chromedp.Flag("host-resolver-rules", rule))
	}
	cfg := chatConfig("")
	cfg.Hub.History = 0 // the seed had none; keeps this tab's list exactly the seed's
	// A second copy of the page, whose script connects to /chat, is served
	// by a separate web server: it is not the chat server's own page, so it
	// needs -allow-origin.
	other := listen(t, "127.0.0.1:0")
	otherPage, err := os.ReadFile("testdata/seed-chat-path.html")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(other, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(otherPage)
	}))
	t.Cleanup(func() { other.Close() })
	cfg.AllowOrigins = []string{fmt.Sprintf("localhost:%d", other.Addr().(*net.TCPAddr).Port)}
	serveAt(t, cfg, ln, wsLn)

	bctx := browser(t, extra...)
	items := func(ctx context.Context) []string {
		return evalJS[[]string](t, ctx, `[...document.querySelectorAll("#chat-echo-area li")].map(li => li.textContent)`)
	}
	waitItem := func(ctx context.Context, what, pred string) {
		t.Helper()
		waitJS(t, ctx, what, `[...document.querySelectorAll("#chat-echo-area li")].some(li => `+pred+`)`)
	}
	seedSay := func(ctx context.Context, text string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#chat-input"), text+kb.Enter)); err != nil {
			t.Fatal(err)
		}
	}
	// The page opens its WebSocket on load; give it a moment to connect
	// before the other tab talks (the seed page has no status to poll).
	s1, _ := tab(t, bctx, fmt.Sprintf("http://localhost:%d/seed", pagePort))
	waitJS(t, s1, "seed page script", `document.getElementById("chat-input") !== null`)
	waitConnections(t, ln.Addr().String(), 1) // s1 is in the room before s2 comes
	s2, close2 := tab(t, bctx, fmt.Sprintf("http://localhost:%d/", other.Addr().(*net.TCPAddr).Port))
	waitItem(s1, "join notice", `/^ \.\.\.\. user-\d+ has joined\.$/.test(li.textContent)`)
	seedSay(s1, "hello seed")
	waitItem(s1, "own echo", `/^user-\d+: hello seed$/.test(li.textContent)`)
	waitItem(s2, "broadcast", `/^user-\d+: hello seed$/.test(li.textContent)`)
	seedSay(s2, "hi back")
	waitItem(s1, "reply", `/^user-\d+: hi back$/.test(li.textContent)`)
	waitItem(s2, "own reply", `/^user-\d+: hi back$/.test(li.textContent)`)
	got2 := items(s2)
	nick2 := strings.TrimSuffix(got2[len(got2)-1], ": hi back")
	close2()
	waitItem(s1, "leave notice", `li.textContent === " .... `+nick2+` has left."`)
	got := items(s1)
	if len(got) != 4 {
		t.Fatalf("seed page shows %q, want join, two messages and the leave notice", got)
	}
}
