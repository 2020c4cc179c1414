package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// The client through real proxies from Debian: tinyproxy (HTTP CONNECT with
// Basic authentication) and microsocks (SOCKS5 with user/password), each
// run on 127.0.0.1 for the test. http.ProxyFromEnvironment never proxies
// loopback addresses, so the proxy is given with the Proxy option; the
// environment's rules are checked in the library's own tests.

const (
	proxyUser = "wsuser"
	proxyPass = "s3cret-pw"
)

// realProxy is a proxy program started for one test.
type realProxy struct {
	name string
	addr string // 127.0.0.1:port
}

// url returns the proxy's URL with the given userinfo (nil: none).
func (p *realProxy) url(scheme string, user *url.Userinfo) *url.URL {
	return &url.URL{Scheme: scheme, Host: p.addr, User: user}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago, for a
// program that cannot be given a listener.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// needProgram finds a program that scripts/install-deps.sh installs; in CI
// its absence fails the test, elsewhere it skips it.
func needProgram(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if inCI() {
			t.Fatalf("%s is missing (Debian package %s; run scripts/install-deps.sh): %v", path, pkg, err)
		}
		t.Skipf("%s is missing (Debian package %s): %v", path, pkg, err)
	}
}

// startProxy runs argv until the test ends and returns once the program
// accepts connections on addr.
func startProxy(t *testing.T, name, addr string, argv ...string) *realProxy {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &limitedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Wait until it listens: each attempt is bounded, the whole by 30s, and
	// an early exit ends the wait.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &realProxy{name: name, addr: addr}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening on %s: %s", name, addr, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v; output: %s", name, addr, err, out)
		}
	}
}

// startTinyproxy runs tinyproxy in the foreground with Basic authentication
// and CONNECT allowed to any port (no ConnectPort line).
func startTinyproxy(t *testing.T) *realProxy {
	const bin = "/usr/bin/tinyproxy"
	needProgram(t, bin, "tinyproxy-bin")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, port, _ := net.SplitHostPort(addr)
	conf := strings.Join([]string{
		"Port " + port,
		"Listen 127.0.0.1",
		"Timeout 60",
		"MaxClients 50",
		"Allow 127.0.0.1",
		"BasicAuth " + proxyUser + " " + proxyPass,
		"LogFile \"" + filepath.Join(dir, "tinyproxy.log") + "\"",
		"LogLevel Info",
		"",
	}, "\n")
	cfg := filepath.Join(dir, "tinyproxy.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "tinyproxy", addr, bin, "-d", "-c", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "tinyproxy.log"))
			t.Logf("tinyproxy log:\n%s", log)
		}
	})
	return p
}

// startMicrosocks runs microsocks with user/password authentication.
func startMicrosocks(t *testing.T) *realProxy {
	const bin = "/usr/bin/microsocks"
	needProgram(t, bin, "microsocks")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return startProxy(t, "microsocks", addr, bin, "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-u", proxyUser, "-P", proxyPass)
}

// echoServers starts a ws:// and a wss:// server that echo one message in
// upper case, and returns their URLs and a TLS config that trusts the
// second.
func echoServers(t *testing.T) (wsURL, wssURL string, trust *tls.Config) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		typ, msg, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return
		}
		c.Write(ctx, typ, bytes.ToUpper(msg))
		c.Read(ctx) // until the client's close
		c.CloseNow()
	})
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(h)
	t.Cleanup(secure.Close)
	trust = &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	return "ws" + strings.TrimPrefix(plain.URL, "http"), "wss" + strings.TrimPrefix(secure.URL, "https"), trust
}

// roundTrip dials target through proxy, checks that the connection's peer
// is the proxy, and exchanges one message.
func roundTrip(t *testing.T, target string, proxy *url.URL, trust *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, target, &websocket.ClientOptions{TLSConfig: trust, Proxy: http.ProxyURL(proxy)})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if got := c.RemoteAddr().String(); got != proxy.Host {
		t.Errorf("connection's peer is %s, not the proxy %s", got, proxy.Host)
	}
	if err := c.Write(ctx, websocket.TextMessage, []byte("through "+proxy.Scheme)); err != nil {
		return err
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if want := "THROUGH " + strings.ToUpper(proxy.Scheme); string(msg) != want {
		t.Errorf("echo %q, want %q", msg, want)
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

func TestProxies(t *testing.T) {
	wsURL, wssURL, trust := echoServers(t)
	type proxyKind struct {
		name    string
		start   func(*testing.T) *realProxy
		schemes []string
		// Words the refusal must use without and with wrong credentials.
		noAuth, badAuth string
		// HTTP statuses of the refusals, without and with wrong
		// credentials; 0 for SOCKS. tinyproxy answers wrong ones with 401.
		noAuthStatus, badAuthStatus int
	}
	kinds := []proxyKind{
		{"tinyproxy", startTinyproxy, []string{"http"}, "proxy authentication is required; put user:password@", "refused the user and password", http.StatusProxyAuthRequired, http.StatusUnauthorized},
		{"microsocks", startMicrosocks, []string{"socks5", "socks5h"}, "proxy authentication is required; put user:password@", "refused the user and password", 0, 0},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			p := k.start(t)
			for _, scheme := range k.schemes {
				for _, target := range []string{wsURL, wssURL} {
					name := scheme + "-" + strings.SplitN(target, ":", 2)[0]
					t.Run(name, func(t *testing.T) {
						if err := roundTrip(t, target, p.url(scheme, url.UserPassword(proxyUser, proxyPass)), trust); err != nil {
							t.Fatalf("with the right credentials: %v", err)
						}
						for _, c := range []struct {
							user   *url.Userinfo
							says   string
							status int
						}{{nil, k.noAuth, k.noAuthStatus}, {url.UserPassword(proxyUser, "wrong-pw"), k.badAuth, k.badAuthStatus}} {
							err := roundTrip(t, target, p.url(scheme, c.user), trust)
							var pe *websocket.ProxyError
							if !errors.As(err, &pe) || pe.StatusCode != c.status || !strings.Contains(err.Error(), c.says) {
								t.Errorf("credentials %v: error %v, want a ProxyError with status %d saying %q", c.user, err, c.status, c.says)
							} else if strings.Contains(err.Error(), "wrong-pw") {
								t.Errorf("the error shows the password: %v", err)
							}
						}
					})
				}
			}
		})
	}
}

// wscat -v -proxy goes through tinyproxy and says so.
func TestWscatThroughProxy(t *testing.T) {
	p := startTinyproxy(t)
	wsURL, _, _ := echoServers(t)
	bin := filepath.Join(t.TempDir(), "wscat")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/wsdriver/websocket/cmd/wscat").CombinedOutput(); err != nil {
		t.Fatalf("building wscat: %v\n%s", err, out)
	}
	proxy := p.url("http", url.UserPassword(proxyUser, proxyPass)).String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-v", "-proxy", proxy, wsURL)
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wscat: %v; stderr:\n%s", err, &stderr)
	}
	if stdout.String() != "HELLO\n" {
		t.Errorf("stdout %q, want %q; stderr:\n%s", &stdout, "HELLO\n", &stderr)
	}
	if want := "proxy: http://" + proxyUser + ":xxxxx@" + p.addr; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, &stderr)
	}
	if strings.Contains(stderr.String(), proxyPass) {
		t.Errorf("stderr shows the proxy's password:\n%s", &stderr)
	}
}
