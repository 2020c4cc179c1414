// Command h2bench measures WebSockets over HTTP/2 (RFC 8441) against
// WebSockets over their own TCP connections: N sockets over one HTTP/2
// connection, N over N TLS connections, and N over N plain TCP connections,
// each against a fresh server process. It reports the server's memory per
// socket, its CPU per echoed message and the client's handshake latency, and
// writes the report to docs/HTTP2.md:
//
//	go run ./bench/cmd/h2bench                 # from the repository root
//	go run ./bench/cmd/h2bench -n 1000 -rounds 20 -repeat 5 -out docs/HTTP2.md
//
// The server runs as a child process (this program with -server), with
// GODEBUG=http2xconnect=1 so that net/http advertises extended CONNECT. It
// serves the library's event API echo, as an application would.
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
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsdriver/websocket"
)

func main() {
	serverMode := flag.String("server", "", "run the echo server (internal): tcp or tls")
	n := flag.Int("n", 1000, "WebSockets per transport")
	rounds := flag.Int("rounds", 20, "echo round trips per socket for the CPU measurement")
	size := flag.Int("size", 64, "message size in bytes")
	repeat := flag.Int("repeat", 5, "runs per transport; the report shows the median of each measure")
	out := flag.String("out", "docs/HTTP2.md", "report file (\"-\" for stdout)")
	flag.Parse()
	if *serverMode != "" {
		serve(*serverMode)
		return
	}
	transports := []string{"h2", "tls", "tcp"}
	runs := map[string][]result{}
	for i := range *repeat {
		for _, tr := range transports {
			r, err := measure(tr, *n, *rounds, *size)
			if err != nil {
				log.Fatalf("%s: %v", tr, err)
			}
			log.Printf("run %d %s: %+v", i+1, tr, r)
			runs[tr] = append(runs[tr], r)
		}
	}
	var results []result
	for _, tr := range transports {
		results = append(results, medianOf(runs[tr]))
	}
	report := render(results, *n, *rounds, *size, *repeat)
	if *out == "-" {
		fmt.Print(report)
		return
	}
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
}

// stats is what the server reports on /stats.
type stats struct {
	Open       int64 // WebSockets open
	HeapInuse  uint64
	StackInuse uint64
	Goroutines int
	CPUNanos   int64 // user+system time of the process
	Conns      int64 // TCP connections accepted
}

// serve runs the echo server: the first line on stdout is its address.
func serve(mode string) {
	var open, conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, nil)
		ws.OnOpen(func() { open.Add(1) })
		ws.OnMessage(func(m websocket.Message) { ws.Write(context.Background(), m.Type, m.Data) })
		ws.OnClose(func(websocket.StatusCode, string) { open.Add(-1) })
		ws.Start()
	})
	statsMux := http.NewServeMux()
	statsMux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		json.NewEncoder(w).Encode(stats{
			Open: open.Load(), HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse,
			Goroutines: runtime.NumGoroutine(),
			CPUNanos:   ru.Utime.Nano() + ru.Stime.Nano(), Conns: conns.Load(),
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: mux,
		HTTP2:   &http.HTTP2Config{MaxConcurrentStreams: 100000},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	// Stats have a listener of their own, so that they add no connection.
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(sln, statsMux)
	fmt.Println(ln.Addr().String(), sln.Addr().String())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // the parent went away
	if mode == "tls" {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned()}}
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	log.Fatal(err)
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// server is a running echo server process.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	http  *http.Client
	base  string
}

func startServer(mode string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-server", mode)
	godebug := os.Getenv("GODEBUG")
	if godebug != "" {
		godebug += ","
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug+"http2xconnect=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not start: %v", err)
	}
	addrs := strings.Fields(line)
	if len(addrs) != 2 {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server said %q", line)
	}
	s := &server{cmd: cmd, stdin: stdin, addr: addrs[0], base: "http://" + addrs[1]}
	s.http = &http.Client{Timeout: time.Minute}
	return s, nil
}

func (s *server) stats() (stats, error) {
	var st stats
	resp, err := s.http.Get(s.base + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *server) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// result is one transport's measurements.
type result struct {
	Transport         string
	Conns             int64   // TCP connections the server accepted for the WebSockets
	BytesPerSocket    float64 // heap + stacks in use, after GC
	GoroutinesPerSock float64
	CPUPerMessage     time.Duration // server user+system time per echoed message
	FirstHandshake    time.Duration
	HandshakeP50      time.Duration
	HandshakeP99      time.Duration
}

func measure(transport string, n, rounds, size int) (result, error) {
	mode := "tls"
	if transport == "tcp" {
		mode = "tcp"
	}
	srv, err := startServer(mode)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	res := result{Transport: transport}
	before, err := srv.stats()
	if err != nil {
		return res, err
	}
	url := "wss://" + srv.addr + "/ws"
	opts := &websocket.ClientOptions{TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	switch transport {
	case "h2":
		opts.HTTP2 = &websocket.HTTP2Client{}
		defer opts.HTTP2.CloseIdleConnections()
	case "tcp":
		url = "ws://" + srv.addr + "/ws"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		c, resp, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			return res, fmt.Errorf("dial %d: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
		if transport == "h2" && resp.ProtoMajor != 2 {
			return res, fmt.Errorf("dial %d went over %s, not HTTP/2", i, resp.Proto)
		}
		conns = append(conns, c)
	}
	res.FirstHandshake = lat[0]
	sorted := slices.Clone(lat[1:])
	slices.Sort(sorted)
	res.HandshakeP50 = sorted[len(sorted)/2]
	res.HandshakeP99 = sorted[len(sorted)*99/100]

	// Every socket open on the server, then idle for a moment.
	var after stats
	for deadline := time.Now().Add(time.Minute); ; {
		if after, err = srv.stats(); err != nil {
			return res, err
		}
		if after.Open == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("server has %d sockets open, want %d", after.Open, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // idle event loops park (plain TCP)
	if after, err = srv.stats(); err != nil {
		return res, err
	}
	res.Conns = after.Conns - before.Conns
	res.BytesPerSocket = float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / float64(n)
	res.GoroutinesPerSock = float64(after.Goroutines-before.Goroutines) / float64(n)

	// CPU per message: every socket does rounds round trips, 64 sockets
	// at a time.
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	cpu0, err := srv.stats()
	if err != nil {
		return res, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var buf []byte
			for range rounds {
				if err := c.Write(ctx, websocket.TextMessage, msg); err != nil {
					errs <- err
					return
				}
				_, got, err := c.ReadMessage(ctx, buf)
				if err != nil {
					errs <- err
					return
				}
				buf = got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return res, err
	}
	cpu1, err := srv.stats()
	if err != nil {
		return res, err
	}
	res.CPUPerMessage = time.Duration((cpu1.CPUNanos - cpu0.CPUNanos) / int64(n*rounds))
	return res, nil
}

// medianOf returns the median of each measure over runs.
func medianOf(runs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	d := func(f func(result) time.Duration) time.Duration {
		return time.Duration(med(func(r result) float64 { return float64(f(r)) }))
	}
	return result{
		Transport:         runs[0].Transport,
		Conns:             int64(med(func(r result) float64 { return float64(r.Conns) })),
		BytesPerSocket:    med(func(r result) float64 { return r.BytesPerSocket }),
		GoroutinesPerSock: med(func(r result) float64 { return r.GoroutinesPerSock }),
		CPUPerMessage:     d(func(r result) time.Duration { return r.CPUPerMessage }),
		FirstHandshake:    d(func(r result) time.Duration { return r.FirstHandshake }),
		HandshakeP50:      d(func(r result) time.Duration { return r.HandshakeP50 }),
		HandshakeP99:      d(func(r result) time.Duration { return r.HandshakeP99 }),
	}
}

func render(rs []result, n, rounds, size, repeat int) string {
	var b strings.Builder
	names := map[string]string{
		"h2":  "HTTP/2: all on one TLS connection (RFC 8441)",
		"tls": "HTTP/1.1: one TLS connection each",
		"tcp": "HTTP/1.1: one plain TCP connection each",
	}
	fmt.Fprintf(&b, "# WebSockets over HTTP/2: measurements\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./bench/cmd/h2bench` (bench/cmd/h2bench); do not edit by hand.\n\n")
	fmt.Fprintf(&b, "%d WebSockets per transport against a fresh server process (the library's event API echo, "+
		"GODEBUG=http2xconnect=1), client and server on one machine: %s, %d CPUs, %s. Each measure is the "+
		"median of %d runs per transport (the transports take turns).\n\n",
		n, runtime.Version(), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, repeat)
	b.WriteString("| transport | TCP connections | server memory per socket | server goroutines per socket | server CPU per message | first handshake | handshake p50 | handshake p99 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d | %.1f KiB | %.2f | %.1f µs | %s | %s | %s |\n", names[r.Transport], r.Conns,
			r.BytesPerSocket/1024, r.GoroutinesPerSock, float64(r.CPUPerMessage)/1e3,
			r.FirstHandshake.Round(10*time.Microsecond), r.HandshakeP50.Round(10*time.Microsecond), r.HandshakeP99.Round(10*time.Microsecond))
	}
	fmt.Fprintf(&b, "\n- Memory is the growth of the server's heap and goroutine stacks in use (after a GC) "+
		"with all sockets open and idle for 3 s, divided by the number of sockets; it includes net/http's "+
		"per-connection or per-stream state and the TLS state.\n")
	fmt.Fprintf(&b, "- CPU is the server process's user+system time while every socket did %d round trips of a "+
		"%d-byte text message (64 sockets at a time), divided by the number of messages echoed.\n", rounds, size)
	fmt.Fprintf(&b, "- Handshakes are dialled one after another; the first is shown apart (for HTTP/2 it "+
		"opens the TCP and TLS connection that the others reuse), p50 and p99 are over the rest.\n")
	fmt.Fprintf(&b, "- Over plain TCP an idle event loop parks (no goroutine); over TLS and HTTP/2 each socket "+
		"keeps its loop's goroutine (over HTTP/2 it is the handler's, which must run as long as the stream); "+
		"and a stream read with a context that can end also gets a read-ahead goroutine (not here).\n")
	fmt.Fprintf(&b, "- What HTTP/2 adds per message is net/http's HTTP/2 machinery: each DATA frame a handler "+
		"writes is handed to the connection's serving goroutine, and received data is acknowledged with "+
		"WINDOW_UPDATE frames; the WebSocket protocol work is the same code as over TLS.\n")
	return b.String()
}
