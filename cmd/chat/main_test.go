package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/internal/xconnect"
)

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"CHAT_RATE": "2", "CHAT_ALLOW_ORIGIN": "a.example, *.b.example", "CHAT_HISTORY": "7", "CHAT_QUEUE": "0"}
	o, err := parseFlags([]string{"-rate", "3", "-allow-origin", "c.example"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.rate != 3 {
		t.Errorf("rate = %v: the command line must win over CHAT_RATE", o.rate)
	}
	if o.history != 7 || o.queue != 0 || o.maxMessage != 4096 || o.addr != "localhost:8080" {
		t.Errorf("history %d queue %d max-message %d addr %q", o.history, o.queue, o.maxMessage, o.addr)
	}
	if got := strings.Join(o.origins, " "); got != "a.example *.b.example c.example" {
		t.Errorf("origins %q", got)
	}
	if _, err := parseFlags(nil, func(k string) string {
		if k == "CHAT_QUEUE" {
			return "lots"
		}
		return ""
	}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "CHAT_QUEUE") {
		t.Errorf("bad environment value: %v", err)
	}
	if _, err := parseFlags([]string{"-rate", "-1"}, func(string) string { return "" }, &bytes.Buffer{}); err == nil {
		t.Error("negative -rate accepted")
	}
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-help"}, func(string) string { return "" }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-help: %v", err)
	}
	for _, want := range []string{"-max-message", "CHAT_MAX_MESSAGE", "-rate", "CHAT_RATE", "-queue", "CHAT_QUEUE", "-history", "CHAT_HISTORY",
		"-addr", "CHAT_ADDR", "-ws-addr", "CHAT_WS_ADDR", "-data", "CHAT_DATA", "-allow-origin", "CHAT_ALLOW_ORIGIN", "0 means"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-help does not mention %s", want)
		}
	}
}

// TestMain lets the test binary act as the chat program for the process
// tests below.
func TestMain(m *testing.M) {
	// The server serves WebSockets over HTTP/2 only in a process started
	// with GODEBUG=http2xconnect=1, as main makes sure of (h2.go).
	if code, ran := xconnect.Reexec(); ran {
		os.Exit(code)
	}
	if args := os.Getenv("CHAT_TEST_RUN_MAIN"); args != "" {
		os.Args = append([]string{"chat"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type child struct {
	cmd    *exec.Cmd
	url    string      // ws://127.0.0.1:port, or wss:// with TLS
	stderr chan string // the program's log lines, when startChildLogs asked for them
}

func startChild(t *testing.T, args string) *child { return startChildEnv(t, args, nil, false) }

// startChildEnv runs the program with args and env added to the test's
// environment; with logs, its stderr lines arrive on child.stderr (and are
// also copied to the test's stderr).
func startChildEnv(t *testing.T, args string, env []string, logs bool) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "CHAT_TEST_RUN_MAIN="+args)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	var lines chan string
	if logs {
		lines = make(chan string, 1000)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = pw
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				fmt.Fprintln(os.Stderr, sc.Text())
				select {
				case lines <- sc.Text():
				default: // nobody is reading: drop rather than block the child
				}
			}
		}()
		t.Cleanup(func() { pr.Close() })
		defer pw.Close()
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "chat: open "); ok {
				u = strings.TrimSuffix(u, "/ in a browser")
				u = strings.Replace(strings.Replace(u, "https://", "wss://", 1), "http://", "ws://", 1)
				// The printed URL says localhost; tests use 127.0.0.1 only.
				line <- strings.Replace(u, "://localhost:", "://127.0.0.1:", 1)
			}
		}
	}()
	select {
	case u := <-line:
		return &child{cmd: cmd, url: u, stderr: lines}
	case <-time.After(20 * time.Second):
		t.Fatal("chat did not start")
		return nil
	}
}

func dialT(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readT(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// postAcked sends n messages and waits for each one's echo: the echo is the
// server's acknowledgement that the message is stored.
func postAcked(t *testing.T, c *websocket.Conn, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		msg := fmt.Sprintf("%s %d", prefix, i)
		if err := c.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for !strings.HasSuffix(readT(t, c), ": "+msg) {
		}
	}
}

func historyOf(t *testing.T, url string, n int) []string {
	t.Helper()
	c := dialT(t, url)
	if m := readT(t, c); m != fmt.Sprintf(" .... earlier messages (%d):", n) {
		t.Fatalf("history starts with %q", m)
	}
	var got []string
	for range n {
		got = append(got, readT(t, c))
	}
	if m := readT(t, c); m != " .... end of earlier messages." {
		t.Fatalf("history ends with %q", m)
	}
	return got
}

func TestKill9KeepsAcknowledgedMessages(t *testing.T) {
	eachBackend(t, testKill9KeepsAcknowledgedMessages)
}

func testKill9KeepsAcknowledgedMessages(t *testing.T, backend string) {
	data := t.TempDir()
	args := "-backend " + backend + " -log-level warn -addr 127.0.0.1:0 -rate 0 -data " + data
	ch := startChild(t, args)
	c := dialT(t, ch.url+"/chat")
	postAcked(t, c, "acked", 30)
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ch.cmd.Wait()
	ch = startChild(t, args)
	got := historyOf(t, ch.url+"/chat", 30)
	for i, m := range got {
		if !strings.HasSuffix(m, fmt.Sprintf(": acked %d", i)) {
			t.Fatalf("history after kill -9, line %d: %q", i, m)
		}
	}
}

func TestSIGTERMClosesWith1001AndKeepsHistory(t *testing.T) {
	eachBackend(t, testSIGTERMClosesWith1001AndKeepsHistory)
}

func testSIGTERMClosesWith1001AndKeepsHistory(t *testing.T, backend string) {
	data := t.TempDir()
	args := "-backend " + backend + " -log-level warn -addr 127.0.0.1:0 -ws-addr 127.0.0.1:0 -data " + data
	ch := startChild(t, args)
	c := dialT(t, ch.url+"/chat")
	postAcked(t, c, "before term", 3)
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("after SIGTERM the client got %v, want close 1001", err)
	}
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("chat exited with %v after SIGTERM", err)
	}
	ch = startChild(t, args)
	if got := historyOf(t, ch.url+"/chat", 3); !strings.HasSuffix(got[2], ": before term 2") {
		t.Fatalf("history after SIGTERM: %q", got)
	}
}
