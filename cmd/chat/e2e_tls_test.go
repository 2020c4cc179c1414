package main

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserWSS: the chat page over HTTPS in Chromium, trusting a test CA,
// connects with wss:// and two tabs chat.
func TestBrowserWSS(t *testing.T) {
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

	certFile, keyFile := ca.issue(t, t.TempDir(), 42)
	cert, err := loadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	serveAt(t, chatConfig(t.TempDir()), tls.NewListener(ln, cert.config()), nil)
	url := "https://" + addr + "/"

	a, _ := tab(t, bctx, url)
	nickA := waitOpen(t, a)
	b, _ := tab(t, bctx, url)
	waitOpen(t, b)
	if proto := evalJS[string](t, a, `location.protocol`); proto != "https:" {
		t.Fatalf("page protocol %q", proto)
	}
	// The page's WebSocket went over TLS: the server saw it on its TLS
	// listener, and the page says which URL it uses.
	say(t, a, "hello over wss")
	waitMessage(t, b, nickA, "hello over wss")
	waitMessage(t, a, nickA, "hello over wss")
	if n := evalJS[int](t, a, `performance.getEntriesByType("resource").filter(e => e.name.startsWith("http://")).length`); n != 0 {
		t.Errorf("%d resources loaded over plain http", n)
	}
}
