package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBad runs the chat program with args (and env added to a clean
// environment with no HOME, XDG_DATA_HOME or STATE_DIRECTORY) and returns
// what it printed on stderr; it must exit with status 1 on its own.
func runBad(t *testing.T, args string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(cleanEnv(), "CHAT_TEST_RUN_MAIN="+args)
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	err = cmd.Run()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("chat %s: exit %v, want status 1; stderr:\n%s", args, err, stderr.String())
	}
	return stderr.String()
}

func errorsAs(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "XDG_DATA_HOME", k == "STATE_DIRECTORY", strings.HasPrefix(k, "CHAT_"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// mustSay checks that msg contains every one of wants and none of nots.
func mustSay(t *testing.T, what, msg string, wants []string, nots ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: the message does not say %q:\n%s", what, w, msg)
		}
	}
	for _, n := range nots {
		if strings.Contains(msg, n) {
			t.Errorf("%s: the message says %q:\n%s", what, n, msg)
		}
	}
}

func TestErrorSecondServerOnSameData(t *testing.T) {
	data := t.TempDir()
	startChild(t, "-log-level warn -addr 127.0.0.1:0 -data "+data)
	msg := runBad(t, "-addr 127.0.0.1:0 -data "+data)
	mustSay(t, "second server", msg, []string{"in use by another chat server", data, "-data DIR"}, "timeout")
	if n := strings.Count(msg, data); n != 1 {
		t.Errorf("the path is printed %d times:\n%s", n, msg)
	}
}

func TestErrorPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The data directory is also busy: the address is checked first, so the
	// port is what the message is about, at once.
	data := t.TempDir()
	startChild(t, "-log-level warn -addr 127.0.0.1:0 -data "+data)
	msg := runBad(t, "-addr "+ln.Addr().String()+" -data "+data)
	mustSay(t, "port in use", msg, []string{"-addr " + ln.Addr().String(), "already in use", "choose another port with -addr"}, "history")
}

func TestErrorAddrWithoutPort(t *testing.T) {
	msg := runBad(t, "-addr localhost -data "+t.TempDir())
	mustSay(t, "-addr localhost", msg, []string{`-addr "localhost"`, "missing port", "host:port", "localhost:8080"})
}

func TestErrorUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	msg := runBad(t, "-addr 127.0.0.1:0 -data "+file+"/sub")
	mustSay(t, "data under a file", msg, []string{"cannot use the data directory " + file + "/sub", "not a directory", "-data DIR"})
	if n := strings.Count(msg, file); n != 1 {
		t.Errorf("the path is printed %d times:\n%s", n, msg)
	}
}

func TestErrorUnreadableDataDir(t *testing.T) {
	// Not under t.TempDir, whose parent only its owner may enter.
	base, err := os.MkdirTemp("", "chat-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	data := filepath.Join(base, "locked")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	var env []string
	args := "-addr 127.0.0.1:0 -data " + data + "/chat"
	if os.Geteuid() == 0 {
		// root reads everything: run the program as nobody, as a service
		// account would, from a copy of this binary nobody may run.
		exe, _ := os.Executable()
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "chat.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		msg := runAs(t, bin, args, 65534)
		mustSay(t, "unreadable data", msg, []string{"cannot use the data directory " + data + "/chat", "permission denied", "-data DIR"})
		if n := strings.Count(msg, data); n != 1 {
			t.Errorf("the path is printed %d times:\n%s", n, msg)
		}
		return
	}
	os.Chmod(data, 0)
	defer os.Chmod(data, 0o700)
	msg := runBad(t, args, env...)
	mustSay(t, "unreadable data", msg, []string{"cannot use the data directory " + data + "/chat", "permission denied", "-data DIR"})
}

func runAs(t *testing.T, bin, args string, uid uint32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(cleanEnv(), "CHAT_TEST_RUN_MAIN="+args, "HOME=/nonexistent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("chat %s as uid %d: exit %v, want status 1; stderr:\n%s", args, uid, err, stderr.String())
	}
	return stderr.String()
}

func TestErrorNoHome(t *testing.T) {
	msg := runBad(t, "-addr 127.0.0.1:0")
	mustSay(t, "HOME unset", msg, []string{"$HOME is not set", "-data DIR", "CHAT_DATA"})
	msg = runBad(t, "-addr 127.0.0.1:0", "HOME=/nonexistent")
	mustSay(t, "service account", msg, []string{`home directory "/nonexistent"`, "-data DIR", "StateDirectory"}, "mkdir")
}

func TestErrorFlags(t *testing.T) {
	msg := runBad(t, "-ping 30")
	mustSay(t, "-ping 30", msg, []string{"-ping", "30s"}, "parse error", "Usage")
	msg = runBad(t, "-history -5")
	mustSay(t, "-history -5", msg, []string{"-history", "must not be negative", "0 turns history off"}, "-max-message", "-queue", "Usage")
	msg = runBad(t, "-nosuch")
	mustSay(t, "unknown flag", msg, []string{"unknown flag -nosuch", "chat -help"}, "Usage", "-max-message")
	if n := strings.Count(msg, "nosuch"); n != 1 {
		t.Errorf("the unknown flag is reported %d times:\n%s", n, msg)
	}
	msg = runBad(t, "-allow-origin [x")
	mustSay(t, "-allow-origin [x", msg, []string{`-allow-origin "[x"`, "not a valid pattern"})
	msg = runBad(t, "-rate", "CHAT_PING=2")
	mustSay(t, "CHAT_PING=2", msg, []string{"CHAT_PING", "2s"})
}

// TestErrorBackend: an unknown -backend, and TLS on the event-loop
// backend (which serves plain HTTP/1.1 only), are refused with what to do.
func TestErrorBackend(t *testing.T) {
	msg := runBad(t, "-backend epoll")
	mustSay(t, "-backend epoll", msg, []string{`-backend "epoll"`, "http or eventloop"})
	msg = runBad(t, "-backend eventloop -tls-cert a.pem -tls-key a.key")
	mustSay(t, "-backend eventloop -tls-cert", msg, []string{"-tls-cert", "-backend http", "reverse proxy", "deploy/nginx.conf"})
	msg = runBad(t, "-tls-cert a.pem -tls-key a.key", "CHAT_BACKEND=eventloop")
	mustSay(t, "CHAT_BACKEND=eventloop -tls-cert", msg, []string{"-tls-cert", "-backend http"})
}

func TestErrorForeignOriginNamesFlag(t *testing.T) {
	ch := startChild(t, "-log-level warn -addr 127.0.0.1:0 -data "+t.TempDir())
	req, _ := http.NewRequest("GET", strings.Replace(ch.url, "ws://", "http://", 1)+"/chat", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Origin", "https://other.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mustSay(t, "foreign origin", string(body), []string{"-allow-origin other.example"}, "OriginPatterns")
}

func TestLoopbackSaysHowToExpose(t *testing.T) {
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(cleanEnv(), "CHAT_TEST_RUN_MAIN=-log-level warn -addr 127.0.0.1:0 -data "+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 0, 512)
	for !bytes.Contains(buf, []byte("-addr :")) {
		var b [256]byte
		n, err := out.Read(b[:])
		if err != nil {
			t.Fatalf("stdout %q: %v", buf, err)
		}
		buf = append(buf, b[:n]...)
	}
	mustSay(t, "loopback", string(buf), []string{"chat: open http://localhost:", "only this machine can connect", "-addr :"})
}

func TestReachableURLs(t *testing.T) {
	got := reachableURLs("http", &net.TCPAddr{IP: net.IPv4zero, Port: 8080})
	if got[0] != "http://localhost:8080/" {
		t.Fatalf("first URL %q", got[0])
	}
	for _, u := range got[1:] {
		if strings.Contains(u, "127.0.0.1") || strings.Contains(u, "0.0.0.0") {
			t.Errorf("URL %q is not a way in from elsewhere", u)
		}
	}
	if got := reachableURLs("https", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}); len(got) != 1 || got[0] != "https://192.0.2.7:443/" {
		t.Fatalf("%q", got)
	}
}
