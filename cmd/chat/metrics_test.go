package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMetricsAddr: -metrics-addr serves the Prometheus metrics (the
// chat's, the Go runtime's and the process's) on its own listener, and
// the chat's port no longer shows them.
func TestMetricsAddr(t *testing.T) {
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(cleanEnv(), "CHAT_TEST_RUN_MAIN=-log-level warn -addr 127.0.0.1:0 -metrics-addr 127.0.0.1:0 -data "+t.TempDir())
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var page, metrics string
	sc := bufio.NewScanner(out)
	for (page == "" || metrics == "") && sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "chat: open "); ok {
			page = strings.Replace(strings.TrimSuffix(u, " in a browser"), "localhost", "127.0.0.1", 1)
		}
		if u, ok := strings.CutPrefix(sc.Text(), "chat: metrics at "); ok {
			metrics = u
		}
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(metrics)
	if code != 200 {
		t.Fatalf("%s: %d", metrics, code)
	}
	for _, want := range []string{"\nchat_connections 0\n", `chat_drops_total{reason="slow_consumer"} 0`, "\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "# TYPE chat_messages_in_total counter"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _ := get(page + "metrics"); code != http.StatusNotFound {
		t.Errorf("the chat's port serves /metrics (%d) although -metrics-addr is set", code)
	}
}
