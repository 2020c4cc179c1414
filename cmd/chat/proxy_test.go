package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

const nginxBin = "/usr/sbin/nginx"

// startNginx runs a real nginx (Debian's, from scripts/install-deps.sh)
// with the shipped example deploy/nginx.conf, pointed at the chat on
// chatAddr and listening with TLS on 127.0.0.1. It returns nginx's address.
// extra are further replacements in the example, for a test's needs.
func startNginx(t *testing.T, chatAddr, certFile, keyFile string, extra ...[2]string) string {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; run scripts/install-deps.sh", nginxBin)
		}
		t.Skipf("%s not installed (scripts/install-deps.sh)", nginxBin)
	}
	example, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A port that was free a moment ago; another process may take it
	// before nginx binds it, so a failed start tries another.
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		site := string(example)
		for _, r := range append([][2]string{
			{"server 127.0.0.1:8080;", "server " + chatAddr + ";"},
			{"listen 443 ssl;", "listen " + addr + " ssl;"},
			{"listen [::]:443 ssl;", ""},
			{"/etc/letsencrypt/live/chat.example.com/fullchain.pem", certFile},
			{"/etc/letsencrypt/live/chat.example.com/privkey.pem", keyFile},
		}, extra...) {
			if !strings.Contains(site, r[0]) {
				t.Fatalf("deploy/nginx.conf no longer has %q; update this test with it", r[0])
			}
			site = strings.Replace(site, r[0], r[1], 1)
		}
		os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644)
		// The test's own main configuration: one foreground process,
		// everything in the temporary directory.
		main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, dir)
		os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644)
		cmd := exec.Command(nginxBin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		up := false
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			select {
			case err := <-exited:
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				if attempt < 5 && strings.Contains(string(log), "Address already in use") {
					goto retry
				}
				t.Fatalf("nginx exited: %v\n%s", err, log)
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !up {
			cmd.Process.Kill()
			<-exited
			t.Fatal("nginx did not start listening within 20s")
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Logf("nginx error.log:\n%s", log)
			}
		})
		return addr
	retry:
	}
}

// dialFrom connects from the loopback address src (Linux answers on all of
// 127.0.0.0/8), so that the test has clients with different addresses.
func dialFrom(ctx context.Context, src, url string, opts websocket.ClientOptions) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	opts.NetDialContext = d.DialContext
	return websocket.Dial(ctx, url, &opts)
}

// TestBehindNginx: the chat behind a real nginx with the shipped example
// configuration: the WebSocket upgrade goes through and messages flow both
// ways; the chat logs and counts the real client's address from a trusted
// proxy (and ignores a client's own X-Forwarded-For); -max-conns-per-ip
// applies per real client, not to the proxy's one address; the browser's
// origin is the chat's own through the proxy and a foreign one is refused
// with the flag to use.
func TestBehindNginx(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), 9)
	ch := startChildEnv(t, "-log-level debug -addr 127.0.0.1:0 -history 0 -rate 0 -trusted-proxy 127.0.0.1 -max-conns-per-ip 1 -data "+t.TempDir(), nil, true)
	chatAddr := strings.TrimPrefix(ch.url, "ws://")
	proxy := startNginx(t, chatAddr, certFile, keyFile)
	url := "wss://" + proxy + "/chat"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := func(origin, xff string) websocket.ClientOptions {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		return websocket.ClientOptions{Header: h, TLSConfig: &tls.Config{RootCAs: ca.pool}}
	}

	// A browser-like client at 127.0.0.2, which also tries to pass itself
	// off as someone else.
	a, _, err := dialFrom(ctx, "127.0.0.2", url+"?nick=ann", opts("https://"+proxy, "203.0.113.9"))
	if err != nil {
		t.Fatalf("through nginx: %v", err)
	}
	defer a.CloseNow()
	waitLog(t, ch, "remote=127.0.0.2")
	postAcked(t, a, "through the proxy", 3)

	// The cap counts 127.0.0.2, not nginx's 127.0.0.1.
	_, resp, err := dialFrom(ctx, "127.0.0.2", url, opts("", ""))
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection from 127.0.0.2: %v, want 429", err)
	}
	b, _, err := dialFrom(ctx, "127.0.0.3", url+"?nick=bob", opts("", ""))
	if err != nil {
		t.Fatalf("a connection from another client through the same proxy: %v", err)
	}
	defer b.CloseNow()
	waitLog(t, ch, "remote=127.0.0.3")
	for !strings.HasSuffix(readT(t, a), "bob has joined.") {
	}
	write := func(c *websocket.Conn, s string) {
		if err := c.Write(ctx, websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write(b, "hi ann")
	for readT(t, a) != "bob: hi ann" {
	}

	// Straight to the chat, not through the proxy: X-Forwarded-For is
	// the client's own claim and is ignored.
	d, _, err := dialFrom(ctx, "127.0.0.4", "ws://"+chatAddr+"/chat", opts("", "198.51.100.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.CloseNow()
	waitLog(t, ch, "remote=127.0.0.4:")

	// A foreign origin through the proxy is refused, naming the flag.
	_, resp, err = dialFrom(ctx, "127.0.0.5", url, opts("https://other.example", ""))
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin through nginx: %v, want 403", err)
	}
	// The library's HandshakeError carries the response body.
	if !strings.Contains(err.Error(), "-allow-origin other.example") {
		t.Errorf("403 %q does not name -allow-origin", err)
	}
}

// TestNginxIdleTimeoutVersusHeartbeat: nginx closes a proxied connection
// that carried nothing for proxy_read_timeout; the chat's -ping heartbeat
// keeps a quiet user's connection alive through it, and without the
// heartbeat nginx cuts it. (The example's timeout is 1h; here 1s, with
// pings every 300ms.)
func TestNginxIdleTimeoutVersusHeartbeat(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), 10)
	short := [][2]string{{"proxy_read_timeout 1h;", "proxy_read_timeout 1s;"}, {"proxy_send_timeout 1h;", "proxy_send_timeout 1s;"}}
	opts := &websocket.ClientOptions{TLSConfig: &tls.Config{RootCAs: ca.pool}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type quiet struct {
		c     *websocket.Conn
		pings chan struct{}
		msgs  chan string
		ended chan error
	}
	connect := func(pingArg string) *quiet {
		ch := startChild(t, "-log-level warn -addr 127.0.0.1:0 -history 0 -trusted-proxy 127.0.0.1 -ping "+pingArg+" -data "+t.TempDir())
		proxy := startNginx(t, strings.TrimPrefix(ch.url, "ws://"), certFile, keyFile, short...)
		c, _, err := websocket.Dial(ctx, "wss://"+proxy+"/chat", opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		q := &quiet{c: c, pings: make(chan struct{}, 1000), msgs: make(chan string, 100), ended: make(chan error, 1)}
		c.OnPing(func([]byte) { q.pings <- struct{}{} })
		// The user reads (so pings are answered) and says nothing.
		go func() {
			for {
				_, b, err := c.Read(context.Background())
				if err != nil {
					q.ended <- err
					return
				}
				q.msgs <- string(b)
			}
		}()
		return q
	}

	// With the heartbeat: eight pings are 2.4s, more than twice nginx's
	// timeout; the connection must still carry a message.
	alive := connect("300ms")
	for range 8 {
		select {
		case <-alive.pings:
		case err := <-alive.ended:
			t.Fatalf("a quiet user with -ping 300ms was cut: %v", err)
		case <-ctx.Done():
			t.Fatal("no pings")
		}
	}
	if err := alive.c.Write(ctx, websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatalf("after 2.4s of quiet: %v", err)
	}
	for echoed := false; !echoed; {
		select {
		case m := <-alive.msgs:
			echoed = strings.HasSuffix(m, ": still here")
		case err := <-alive.ended:
			t.Fatalf("a quiet user with -ping 300ms was cut: %v", err)
		case <-ctx.Done():
			t.Fatal("no echo")
		}
	}

	// Without it, nginx cuts the quiet user.
	cut := connect("0")
	select {
	case <-cut.ended:
	case <-ctx.Done():
		t.Fatal("nginx did not cut a quiet connection without heartbeat")
	}
}
