package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// testCA is a certificate authority made for one test: it signs server
// certificates for 127.0.0.1 and localhost, and clients trust only it.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string // the CA certificate, for clients (wscat --ca, Chromium's NSS database)
	pool    *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chat test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pemFile: filepath.Join(t.TempDir(), "ca.pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	writePEM(t, ca.pemFile, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate with the given serial number and its
// key into dir, as cert.pem and key.pem, and returns their paths.
func (ca *testCA) issue(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "chat test server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written beside and renamed over, as certificate tools do, so that a
	// reload never reads half a file.
	writePEM(t, certFile+".new", "CERTIFICATE", der)
	writePEM(t, keyFile+".new", "PRIVATE KEY", kder)
	os.Rename(keyFile+".new", keyFile)
	os.Rename(certFile+".new", certFile)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial makes a TLS connection to addr, trusting only ca, and
// returns the serial number of the certificate the server presented.
func servedSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// waitLog reads the child's log lines until one contains want.
func waitLog(t *testing.T, ch *child, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch.stderr:
			if !ok {
				t.Fatalf("the program ended before logging %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line with %q", want)
		}
	}
}

// TestTLSWithReload: wss:// works with -tls-cert/-tls-key; SIGHUP reloads
// the pair for new connections while an open connection keeps working; a
// broken pair on SIGHUP is logged and the previous certificate stays.
func TestTLSWithReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, dir, 100)
	ch := startChildEnv(t, "-log-level info -addr 127.0.0.1:0 -rate 0 -data "+t.TempDir()+" -tls-cert "+certFile+" -tls-key "+keyFile, nil, true)
	if !strings.HasPrefix(ch.url, "wss://") {
		t.Fatalf("the program printed %s, want an https URL", ch.url)
	}
	addr := strings.TrimPrefix(ch.url, "wss://")
	opts := &websocket.ClientOptions{TLSConfig: &tls.Config{RootCAs: ca.pool}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ch.url+"/chat?nick=ann", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	postAcked(t, c, "over tls", 2)
	if got := servedSerial(t, ca, addr); got != 100 {
		t.Fatalf("serial %d", got)
	}

	// Renewal: new files, SIGHUP.
	ca.issue(t, dir, 101)
	ch.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, ch, "TLS certificate reloaded")
	if got := servedSerial(t, ca, addr); got != 101 {
		t.Fatalf("after SIGHUP the server presents serial %d, want 101", got)
	}
	postAcked(t, c, "same connection after reload", 2)

	// A broken pair is refused; the last good certificate stays.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	ch.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, ch, "TLS certificate reload failed")
	if got := servedSerial(t, ca, addr); got != 101 {
		t.Fatalf("after a failed reload the server presents serial %d, want 101", got)
	}
	postAcked(t, c, "still here", 1)
}

func TestErrorTLS(t *testing.T) {
	msg := runBad(t, "-addr 127.0.0.1:0 -data "+t.TempDir()+" -tls-cert /nonexistent/cert.pem")
	mustSay(t, "-tls-cert alone", msg, []string{"-tls-cert and -tls-key go together"})
	msg = runBad(t, "-addr 127.0.0.1:0 -data "+t.TempDir()+" -tls-cert /nonexistent/cert.pem -tls-key /nonexistent/key.pem")
	mustSay(t, "missing files", msg, []string{"-tls-cert /nonexistent/cert.pem", "no such file"})
}

// wscat is the npm package's script, installed by scripts/install-deps.sh.
const wscat = "testdata/wscat/node_modules/wscat/bin/wscat"

// TestWscatOverTLS: a client nobody here wrote, wscat, talks to the chat
// over wss:// trusting only the test CA, and a Go client in the same room
// sees its message.
func TestWscatOverTLS(t *testing.T) {
	if _, err := os.Stat(wscat); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; run scripts/install-deps.sh", wscat)
		}
		t.Skipf("%s not installed (scripts/install-deps.sh)", wscat)
	}
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), 7)
	ch := startChild(t, "-log-level warn -addr 127.0.0.1:0 -history 0 -data "+t.TempDir()+" -tls-cert "+certFile+" -tls-key "+keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watcher, _, err := websocket.Dial(ctx, ch.url+"/chat?nick=watcher", &websocket.ClientOptions{TLSConfig: &tls.Config{RootCAs: ca.pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.CloseNow()

	cmd := exec.CommandContext(ctx, "node", wscat, "--ca", ca.pemFile, "-c", ch.url+"/chat?nick=wscat")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	// wscat's own join is the sign it is connected.
	for !strings.HasSuffix(readT(t, watcher), "wscat has joined.") {
	}
	io.WriteString(stdin, "hello over wss\n")
	for m := readT(t, watcher); m != "wscat: hello over wss"; m = readT(t, watcher) {
	}
	// And wscat got the echo.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "wscat: hello over wss") {
			return
		}
	}
	t.Fatalf("wscat did not print the echo: %v", sc.Err())
}
