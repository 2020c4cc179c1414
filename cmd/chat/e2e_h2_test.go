package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// records keeps the server's log records, as "message key=value ...".
type records struct {
	mu    sync.Mutex
	lines []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the records starting with prefix.
func (r *records) find(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestBrowserHTTP2: over TLS the chat serves its page and its WebSocket on
// one HTTP/2 connection. Chromium loads the page over HTTP/2 and opens the
// WebSocket as an extended CONNECT stream of that connection (RFC 8441),
// which the server's log proves; messages flow both ways, and closing the
// tab closes the WebSocket on the server.
func TestBrowserHTTP2(t *testing.T) {
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("certutil is missing (Debian libnss3-tools); run scripts/install-deps.sh")
		}
		t.Skip("certutil not installed (libnss3-tools)")
	}
	ca := newTestCA(t)
	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	for _, args := range [][]string{
		{"-d", nssdb, "-N", "--empty-password"},
		{"-d", nssdb, "-A", "-n", "chat test CA", "-t", "C,,", "-i", ca.pemFile},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %q: %v\n%s", args, err, out)
		}
	}
	bctx := browser(t, chromedp.Env("HOME="+home))

	certFile, keyFile := ca.issue(t, t.TempDir(), 43)
	cert, err := loadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "127.0.0.1:0")
	log := &records{}
	cfg := chatConfig(t.TempDir())
	cfg.Logger = slog.New(log)
	serveAt(t, cfg, tls.NewListener(ln, cert.config()), nil)
	url := "https://" + ln.Addr().String() + "/"

	a, closeA := tab(t, bctx, url)
	nick := waitOpen(t, a)
	if proto := evalJS[string](t, a, `performance.getEntriesByType("navigation")[0].nextHopProtocol`); proto != "h2" {
		t.Fatalf("page loaded over %q, want h2", proto)
	}
	reqs := log.find("websocket request")
	if len(reqs) != 1 || !strings.Contains(reqs[0], "proto=HTTP/2.0") || !strings.Contains(reqs[0], "method=CONNECT") {
		t.Fatalf("the server saw the WebSocket as %q, want one extended CONNECT over HTTP/2", reqs)
	}
	// Both ways: the page sends, the server broadcasts it back.
	say(t, a, "hello over HTTP/2")
	waitMessage(t, a, nick, "hello over HTTP/2")

	closeA()
	deadline := time.Now().Add(30 * time.Second)
	for len(log.find("disconnected")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not see the WebSocket close; log:\n%s", strings.Join(log.find(""), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
