package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDockerfile checks cmd/chat/Dockerfile without docker (not installed
// here; hadolint is not available either): it is multi-stage, the final
// image runs as a non-root user with the history in a volume, and the
// build command it runs makes a static binary that starts.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	stages := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(df, -1)
	if len(stages) < 2 {
		t.Fatal("the Dockerfile is not multi-stage")
	}
	final := df[stages[len(stages)-1][0]:]
	for _, want := range []string{"\nUSER 65532:65532\n", "\nVOLUME /data\n", "CHAT_DATA=/data", "CHAT_ADDR=:8080", `ENTRYPOINT ["/chat"]`, "--chown=65532:65532 /out/data /data"} {
		if !strings.Contains(final, want) {
			t.Errorf("the final stage lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^USER (0|root)\b`).MatchString(final) {
		t.Error("the image runs as root")
	}
	// The build line, run here as the Dockerfile runs it.
	m := regexp.MustCompile(`RUN cd cmd/chat && (CGO_ENABLED=0 GOWORK=off go build [^\\\n]*)`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no go build line in the Dockerfile")
	}
	if testing.Short() {
		t.Skip("-short: not building")
	}
	out := filepath.Join(t.TempDir(), "chat")
	args := strings.Fields(strings.NewReplacer(`-ldflags="-s -w"`, "-ldflags=-s_-w", "/out/chat", out).Replace(m[1]))
	var env []string
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env = append(env, args[0])
		args = args[1:]
	}
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "_", " ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", m[1], err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked (it has an ELF interpreter); scratch has no C library")
		}
	}
	help, err := exec.CommandContext(ctx, out, "-help").CombinedOutput()
	if err != nil || !bytes.Contains(help, []byte("-tls-cert")) {
		t.Fatalf("the built binary's -help: %v\n%s", err, help)
	}
}

// TestSystemdUnit checks deploy/chat.service with systemd-analyze verify
// (any warning fails) and its sandboxing with systemd-analyze security.
// The unit is not started: there is no systemd running here.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing")
		}
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile("deploy/chat.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart exists: point it at this test binary.
	exe, _ := os.Executable()
	unit := strings.Replace(string(b), "ExecStart=/usr/local/bin/chat", "ExecStart="+exe, 1)
	path := filepath.Join(t.TempDir(), "chat.service")
	os.WriteFile(path, []byte(unit), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ = exec.CommandContext(ctx, sa, "security", "--offline=yes", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for chat.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security said:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2 {
		t.Errorf("exposure level %s; the unit's sandboxing should keep it at 2 or below", m[1])
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=chat", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}
