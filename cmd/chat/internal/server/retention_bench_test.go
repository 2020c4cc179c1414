package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// BenchmarkHeldHandshakeHeaders measures the server heap held per open
// chat connection whose handshake carried 64 KiB of headers, against one
// with small headers: a connection must not keep its handshake request.
//
//	go test -run '^$' -bench HeldHandshakeHeaders -benchtime 1x ./internal/server/
func BenchmarkHeldHandshakeHeaders(b *testing.B) {
	for _, size := range []int{0, 64 << 10} {
		b.Run(fmt.Sprintf("headers=%dKiB", size>>10), func(b *testing.B) {
			const n = 1000
			srv, err := New(Config{Hub: chat.Config{History: 0, PingInterval: 0}})
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: srv.mainHandler()}
			go hs.Serve(ln)
			defer func() {
				hs.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				srv.Hub().Shutdown(ctx)
			}()
			big := strings.Repeat("x", size)
			var before, after runtime.MemStats
			for range b.N {
				runtime.GC()
				runtime.ReadMemStats(&before)
				conns := make([]net.Conn, 0, n)
				for range n {
					c, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
					req := "GET /chat HTTP/1.1\r\nHost: " + ln.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
						"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
					if size > 0 {
						req += "X-Big: " + big + "\r\n"
					}
					if _, err := c.Write([]byte(req + "\r\n")); err != nil {
						b.Fatal(err)
					}
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil || resp.StatusCode != 101 {
						b.Fatalf("handshake: %v %v", resp, err)
					}
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if c, _ := srv.Hub().Counts(); c == n {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("clients did not all join")
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-bytes/conn")
				for _, c := range conns {
					c.Close()
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if c, _ := srv.Hub().Counts(); c == 0 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("clients did not all leave")
					}
				}
			}
		})
	}
}
