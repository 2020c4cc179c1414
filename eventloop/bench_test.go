//go:build linux

package eventloop_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// The benchmarks below count what the event-loop backend allocates: per
// message on the hot path (echo) and per connection (handshake and
// close). The client is written with raw system calls on fixed buffers so
// that it allocates nothing itself: allocs/op is then the server's alone
// (testing counts the whole process).
//
//	go test -run '^$' -bench 'Loop' -benchmem ./eventloop

// benchServer starts an event-loop echo server written as the benchmark
// module's ours-loop is: the event API, OnMessage writing m.Data back.
func benchServer(b *testing.B, onLoop, borrow bool) *eventloop.Server {
	b.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, &websocket.ServerOptions{BorrowMessageData: borrow})
		c.OnMessage(func(m websocket.Message) { c.Write(context.Background(), m.Type, m.Data) })
		c.Start()
	})
	s := &eventloop.Server{Handler: h, HandlersOnLoop: onLoop}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// rawClient is a blocking client socket driven by system calls, so that it
// allocates nothing per operation.
type rawClient struct {
	fd  int
	buf []byte
}

const benchRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

var benchResponse = []byte("HTTP/1.1 101 ")

// dialSyscall connects to sa and completes the opening handshake. buf must be
// large enough for the response head.
func dialSyscall(sa *syscall.SockaddrInet4, buf []byte) (rawClient, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return rawClient{}, err
	}
	c := rawClient{fd: fd, buf: buf}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := syscall.Connect(fd, sa); err != nil {
		c.close()
		return c, err
	}
	if err := c.write(benchRequestBytes); err != nil {
		c.close()
		return c, err
	}
	// Read the response head; the server sends nothing after it until we
	// send a frame, so reading up to the blank line reads exactly the head.
	n := 0
	for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
		if n == len(buf) {
			c.close()
			return c, fmt.Errorf("response head larger than %d bytes", len(buf))
		}
		m, err := syscall.Read(fd, buf[n:])
		if err != nil || m <= 0 {
			c.close()
			return c, fmt.Errorf("reading the response: %d, %v", m, err)
		}
		n += m
	}
	if !bytes.HasPrefix(buf[:n], benchResponse) {
		c.close()
		return c, fmt.Errorf("response %q", buf[:n])
	}
	return c, nil
}

var benchRequestBytes = []byte(benchRequest)

func (c rawClient) write(p []byte) error {
	for len(p) > 0 {
		n, err := syscall.Write(c.fd, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// readFull reads exactly len(p) bytes.
func (c rawClient) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := syscall.Read(c.fd, p)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("connection ended with %d bytes to go", len(p))
		}
		p = p[n:]
	}
	return nil
}

func (c rawClient) close() { syscall.Close(c.fd) }

func sockaddr(b *testing.B, s *eventloop.Server) *syscall.SockaddrInet4 {
	a := s.Addr().(*net.TCPAddr)
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa
}

// maskedFrame returns a final binary client frame carrying payload, and
// the server frame the echo must be.
func maskedFrame(payload []byte) (frame, echo []byte) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	hdr := func(masked bool) []byte {
		m := byte(0)
		if masked {
			m = 0x80
		}
		switch n := len(payload); {
		case n < 126:
			return []byte{0x82, m | byte(n)}
		case n < 1<<16:
			return []byte{0x82, m | 126, byte(n >> 8), byte(n)}
		default:
			panic("payload too large for the benchmark")
		}
	}
	frame = append(hdr(true), key[:]...)
	for i, p := range payload {
		frame = append(frame, p^key[i%4])
	}
	echo = append(hdr(false), payload...)
	return frame, echo
}

// BenchmarkLoopEcho is one message's round trip through a real
// eventloop.Server over loopback: read, unmask, validate, deliver to
// OnMessage, write back. allocs/op is the hot path's allocations per
// message (the target is 0 with BorrowMessageData, on the loop or not).
func BenchmarkLoopEcho(b *testing.B) {
	for _, mode := range []struct {
		name           string
		onLoop, borrow bool
	}{{"onloop-borrow", true, true}, {"worker-borrow", false, true}, {"onloop-copy", true, false}} {
		for _, size := range []int{128, 1024, 16 << 10} {
			b.Run(fmt.Sprintf("%s/%d", mode.name, size), func(b *testing.B) {
				s := benchServer(b, mode.onLoop, mode.borrow)
				payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
				frame, echo := maskedFrame(payload)
				got := make([]byte, len(echo))
				c, err := dialSyscall(sockaddr(b, s), make([]byte, 1024))
				if err != nil {
					b.Fatal(err)
				}
				defer c.close()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := c.write(frame); err != nil {
						b.Fatal(err)
					}
					if err := c.readFull(got); err != nil {
						b.Fatal(err)
					}
					if !bytes.Equal(got, echo) {
						b.Fatalf("echo differs: % x", got[:min(len(got), 16)])
					}
				}
			})
		}
	}
}

// BenchmarkLoopHandshake is one connection's life on the event-loop
// backend: TCP accept, the HTTP request parsed, the handler's NewServer
// and Start (101 response), then a close frame from the client, the
// server's reply and the end of the TCP stream. allocs/op is what the
// server allocates per connection over that life.
func BenchmarkLoopHandshake(b *testing.B) {
	for _, onLoop := range []bool{true, false} {
		b.Run(fmt.Sprintf("onloop=%v", onLoop), func(b *testing.B) {
			s := benchServer(b, onLoop, true)
			sa := sockaddr(b, s)
			buf := make([]byte, 1024)
			closeFrame, _ := maskedFrame(nil)
			closeFrame[0] = 0x88 // close, no status
			reply := make([]byte, 2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := dialSyscall(sa, buf)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.write(closeFrame); err != nil {
					b.Fatal(err)
				}
				if err := c.readFull(reply); err != nil || reply[0] != 0x88 {
					b.Fatalf("close reply % x, %v", reply, err)
				}
				// Wait for the server's end of the stream, so that the
				// connection's whole life is inside the measured op.
				for {
					n, err := syscall.Read(c.fd, buf)
					if n <= 0 || err != nil {
						break
					}
				}
				c.close()
			}
		})
	}
}
