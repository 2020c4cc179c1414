package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's Chromium; CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browserPeer is headless Chromium running browser/page.html, served by our
// server: a client only, and its API can neither fragment nor ping.
type browserPeer struct{ version, userAgent string }

var errNoBrowser = errors.New("chromium not found")

func (*browserPeer) Name() string    { return "chromium" }
func (*browserPeer) Title() string   { return "Chromium" }
func (*browserPeer) HasServer() bool { return false }

// Can: a page's WebSocket always offers permessage-deflate with context
// takeover and client_max_window_bits, and nothing in its API configures it.
func (*browserPeer) Can(c Capability) bool { return c == CanContextTakeover || c == CanWindowBits }

func (b *browserPeer) Version() string {
	if strings.Contains(b.userAgent, "Headless") {
		return b.version + ", headless"
	}
	return b.version
}

func (b *browserPeer) Setup(*testing.T) error {
	if _, err := os.Stat(chromiumPath()); err != nil {
		return fmt.Errorf("%w: %v", errNoBrowser, err)
	}
	// Debian's wrapper script may complain on stderr; the version is on stdout.
	out, err := exec.Command(chromiumPath(), "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %v", chromiumPath(), err)
	}
	b.version = strings.TrimSpace(string(out))
	return nil
}

func (b *browserPeer) RunClient(ctx context.Context, t *testing.T, srv *ourServer, cases []Case, report func(peerResult)) error {
	cmd := exec.Command(chromiumPath(),
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		// Containers often give /dev/shm 64 MiB, too little for the 16 MiB cases.
		"--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(),
		"http://"+srv.addr()+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &limitedBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// Chromium runs until killed; its helpers share its process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("chromium did not exit after SIGKILL")
		}
	}()
	select {
	case ua := <-srv.userAgent:
		b.userAgent = ua
	case err := <-exited:
		return fmt.Errorf("chromium exited before the page ran: %v; stderr: %s", err, stderr)
	case <-ctx.Done():
		return errors.New("the page never loaded")
	}
	select {
	case <-srv.done:
		return nil
	case err := <-exited:
		return fmt.Errorf("chromium exited early: %v; stderr: %s", err, stderr)
	case <-ctx.Done():
		return fmt.Errorf("the page did not finish: %w", ctx.Err())
	}
}

func (*browserPeer) StartServer(context.Context, *testing.T, func(peerResult)) (map[PeerDeflate]string, func(), error) {
	return nil, nil, errors.New("a browser has no WebSocket server")
}
