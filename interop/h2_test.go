package interop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// WebSockets over HTTP/2 (RFC 8441) against other implementations: Node's
// http2 module (with ws framing over its streams, node/h2peer.js) as client
// and as server, and Chromium loading a page over HTTP/2. The test binary
// runs with GODEBUG=http2xconnect=1 (see TestMain), which net/http needs to
// advertise extended CONNECT.

// h2Echo is our HTTP/2 server: an echo over the blocking API, recording how
// each WebSocket request arrived.
type h2Echo struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []string // "proto method :protocol remote"
	conns int
}

func newH2Echo(t *testing.T, extra http.Handler) *h2Echo {
	s := &h2Echo{}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		s.note(r)
		c, err := websocket.Accept(w, r, &websocket.ServerOptions{Protocols: []string{"chat"}, InsecureSkipOriginCheck: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		var buf []byte
		for {
			typ, msg, err := c.ReadMessage(ctx, buf)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
			buf = msg
		}
	})
	if extra != nil {
		mux.Handle("/", extra)
	}
	s.Server = httptest.NewUnstartedServer(mux)
	s.EnableHTTP2 = true
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *h2Echo) note(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, fmt.Sprintf("%s %s %s %s", r.Proto, r.Method, r.Header.Get(":protocol"), r.RemoteAddr))
}

func (s *h2Echo) requests() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...), s.conns
}

// needNode skips (or, in CI, fails) when Node or ws is missing.
func needNode(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("node/node_modules/ws/package.json")
	}
	if err != nil {
		if inCI() {
			t.Fatalf("Node with ws (scripts/install-deps.sh): %v", err)
		}
		t.Skipf("Node with ws (scripts/install-deps.sh): %v", err)
	}
}

// nodeH2 runs node/h2peer.js with args; lines carries its JSON lines.
type nodeH2 struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan map[string]any
	stderr *limitedBuffer
}

func startNodeH2(t *testing.T, args ...string) *nodeH2 {
	t.Helper()
	cmd := exec.Command("node", append([]string{"node/h2peer.js"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	n := &nodeH2{cmd: cmd, lines: make(chan map[string]any, 64), stderr: &limitedBuffer{max: 16 << 10}}
	cmd.Stderr = n.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(n.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("node: not JSON: %q", sc.Text())
				continue
			}
			n.lines <- m
		}
	}()
	t.Cleanup(func() {
		n.stdin.Close()
		exited := make(chan error, 1)
		go func() { <-readDone; exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return n
}

// next returns the next JSON line, failing the test after a bound.
func (n *nodeH2) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-n.lines:
		if !ok {
			t.Fatalf("node ended early; stderr: %s", n.stderr)
		}
		return m
	case <-time.After(60 * time.Second):
		t.Fatalf("no line from node within 60s; stderr: %s", n.stderr)
		return nil
	}
}

// TestHTTP2NodeClient: Node's http2 client opens several WebSockets as
// streams of one HTTP/2 connection to our server (extended CONNECT), and ws
// frames them; every one echoes and closes with 1000.
func TestHTTP2NodeClient(t *testing.T) {
	needNode(t)
	s := newH2Echo(t, nil)
	const n = 5
	node := startNodeH2(t, "client", s.URL+"/echo", fmt.Sprint(n))
	for range n {
		m := node.next(t)
		if m["ok"] != true {
			t.Fatalf("node client case %v: %v; stderr: %s", m["case"], m["detail"], node.stderr)
		}
	}
	if m := node.next(t); m["done"] != true || m["error"] != nil {
		t.Fatalf("node client: %v", m)
	}
	seen, conns := s.requests()
	if len(seen) != n || conns != 1 {
		t.Fatalf("%d WebSocket requests on %d connections, want %d on 1: %q", len(seen), conns, n, seen)
	}
	for _, r := range seen {
		if !strings.HasPrefix(r, "HTTP/2.0 CONNECT websocket ") {
			t.Fatalf("request arrived as %q, want an HTTP/2 extended CONNECT", r)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns a TLS configuration that trusts it.
func writeCert(t *testing.T) (certFile, keyFile string, trust *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: pool}
}

// startNodeServer starts node/h2peer.js as a server and returns its
// wss:// base URL.
func startNodeServer(t *testing.T, args ...string) (*nodeH2, string, *tls.Config) {
	t.Helper()
	cert, key, trust := writeCert(t)
	node := startNodeH2(t, append([]string{"server", cert, key}, args...)...)
	m := node.next(t)
	if m["ready"] != true {
		t.Fatalf("node server: %v", m)
	}
	return node, fmt.Sprintf("wss://127.0.0.1:%v", m["port"]), trust
}

// TestHTTP2NodeServer: our client opens several WebSockets through one
// HTTP2Client to Node's http2 server, which advertises extended CONNECT:
// they are streams of one connection, and each echoes and closes cleanly.
func TestHTTP2NodeServer(t *testing.T) {
	needNode(t)
	node, base, trust := startNodeServer(t)
	h2 := &websocket.HTTP2Client{}
	defer h2.CloseIdleConnections()
	opts := &websocket.ClientOptions{HTTP2: h2, TLSConfig: trust, Protocols: []string{"chat"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 5
	for i := range n {
		c, resp, err := websocket.Dial(ctx, base+"/echo", opts)
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || c.Protocol() != "chat" {
			t.Fatalf("Dial %d: %s %s, subprotocol %q; want HTTP/2 200 chat", i, resp.Proto, resp.Status, c.Protocol())
		}
		for _, msg := range []string{"hello node", strings.Repeat("ü", 70000)} {
			if err := c.Write(ctx, websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.ReadMessage(ctx, nil); err != nil || string(got) != msg {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, "bye node"); err != nil {
			t.Fatal(err)
		}
		if code := websocket.CloseStatus(c.Err()); code != websocket.StatusNormalClosure {
			t.Fatalf("closed with %v", c.Err())
		}
	}
	connections, closed := 0, 0
	for closed < n {
		m := node.next(t)
		switch m["event"] {
		case "connection":
			connections++
		case "closed":
			if m["proto"] != "h2" || m["code"] != float64(1000) || m["reason"] != "bye node" {
				t.Fatalf("node saw %v", m)
			}
			closed++
		default:
			t.Fatalf("node: %v", m)
		}
	}
	if connections != 1 {
		t.Fatalf("%d TLS connections for %d WebSockets, want 1", connections, n)
	}
}

// TestHTTP2NodeServerFallback: a Node server that speaks HTTP/2 but does
// not advertise extended CONNECT gets our client over HTTP/1.1.
func TestHTTP2NodeServerFallback(t *testing.T) {
	needNode(t)
	node, base, trust := startNodeServer(t, "no-xconnect")
	h2 := &websocket.HTTP2Client{}
	defer h2.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 { // the second dial goes straight to HTTP/1.1
		c, resp, err := websocket.Dial(ctx, base+"/echo", &websocket.ClientOptions{HTTP2: h2, TLSConfig: trust})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %s %s, want HTTP/1.1 101", resp.Proto, resp.Status)
		}
		c.Write(ctx, websocket.TextMessage, []byte("over HTTP/1.1"))
		if _, got, err := c.ReadMessage(ctx, nil); err != nil || string(got) != "over HTTP/1.1" {
			t.Fatalf("echo: %q %v", got, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	for closed := 0; closed < 2; {
		m := node.next(t)
		if m["event"] == "closed" {
			if m["proto"] != "h1" {
				t.Fatalf("node saw %v", m)
			}
			closed++
		}
	}
}

// h2Page is the page Chromium loads over HTTP/2: it opens a WebSocket to
// the same origin, which Chromium sends as a stream of the page's
// connection when the server advertises extended CONNECT; messages go both
// ways, the page closes with 1000, and reports on /done.
const h2Page = `<!doctype html><meta charset="utf-8"><title>h2</title><script>
const log = [];
const ws = new WebSocket("wss://" + location.host + "/chat", ["chat"]);
ws.onopen = () => ws.send("hello from the page");
ws.onmessage = (e) => {
	log.push(e.data);
	if (e.data === "welcome") return;
	if (e.data === "echo: hello from the page") ws.close(1000, "page done");
};
ws.onerror = () => log.push("error");
ws.onclose = (e) => fetch("/done?code=" + e.code + "&log=" + encodeURIComponent(log.join("|")));
</script>`

// TestHTTP2Chromium: headless Chromium loads a page over HTTP/2 from our
// server and opens a WebSocket to it. The server proves that it came as an
// extended CONNECT on the page's own HTTP/2 connection; the event API
// serves it, messages flow both ways, and the page's close completes.
func TestHTTP2Chromium(t *testing.T) {
	b := &browserPeer{}
	if err := b.Setup(t); err != nil {
		if inCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	type wsInfo struct{ request, remote string }
	var (
		mu         sync.Mutex
		pageRemote string
	)
	wsSeen := make(chan wsInfo, 1)
	serverClose := make(chan string, 1)
	done := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/chat", func(w http.ResponseWriter, r *http.Request) {
		wsSeen <- wsInfo{fmt.Sprintf("%s %s %s", r.Proto, r.Method, r.Header.Get(":protocol")), r.RemoteAddr}
		ws := websocket.NewServer(w, r, &websocket.ServerOptions{Protocols: []string{"chat"}})
		ws.OnOpen(func() { ws.SendText("welcome") })
		ws.OnMessage(func(m websocket.Message) { ws.SendText("echo: " + m.Text()) })
		ws.OnClose(func(code websocket.StatusCode, reason string) { serverClose <- fmt.Sprintf("%d %s", code, reason) })
		if err := ws.Start(); err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		done <- r.URL.Query().Get("code") + " " + r.URL.Query().Get("log")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		pageRemote = r.RemoteAddr + " " + r.Proto
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, h2Page)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	cmd := exec.Command(chromiumPath(),
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--ignore-certificate-errors",
		"--user-data-dir="+t.TempDir(), srv.URL+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &limitedBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	timeout := time.After(90 * time.Second)
	var report, closedWith string
	var info wsInfo
	for report == "" || closedWith == "" || info.request == "" {
		select {
		case info = <-wsSeen:
		case closedWith = <-serverClose:
		case report = <-done:
		case err := <-exited:
			t.Fatalf("chromium exited: %v; stderr: %s", err, stderr)
		case <-timeout:
			t.Fatalf("page did not finish (WebSocket request %q, server close %q, report %q); stderr: %s", info.request, closedWith, report, stderr)
		}
	}
	mu.Lock()
	page := pageRemote
	mu.Unlock()
	if info.request != "HTTP/2.0 CONNECT websocket" {
		t.Fatalf("the WebSocket arrived as %q, want an HTTP/2 extended CONNECT", info.request)
	}
	if page != info.remote+" HTTP/2.0" {
		t.Fatalf("page loaded from %q, WebSocket from %q: want one HTTP/2 connection", page, info.remote)
	}
	if report != "1000 welcome|echo: hello from the page" {
		t.Fatalf("page reported %q", report)
	}
	if closedWith != "1000 page done" {
		t.Fatalf("server's OnClose got %q", closedWith)
	}
}
