package websocket

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// replayConn is a net.Conn whose reads replay one byte stream forever and
// whose writes are dropped, so benchmarks measure the library, not a
// network.
type replayConn struct {
	stream []byte
	pos    int
}

func (c *replayConn) Read(p []byte) (int, error) {
	n := copy(p, c.stream[c.pos:])
	c.pos = (c.pos + n) % len(c.stream)
	return n, nil
}
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// benchConn returns an open connection over a replayConn.
func benchConn(client bool, stream []byte) *Conn {
	c := newConn(client, -1, 0)
	c.opened(&replayConn{stream: stream}, nil)
	c.flushed.Store(true)
	return c
}

var benchSizes = []int{32, 1 << 10, 64 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkReadMessage reads masked client messages on the server side into
// a reused buffer: UTF-8 validation for text, unmasking, limits.
func BenchmarkReadMessage(b *testing.B) {
	for _, typ := range []MessageType{TextMessage, BinaryMessage} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%s", typ, sizeName(n)), func(b *testing.B) {
				payload := make([]byte, n)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				frame := clientFrame(true, 0, opcode(typ), payload)
				c := benchConn(false, frame)
				ctx := context.Background()
				buf := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					_, msg, err := c.ReadMessage(ctx, buf)
					if err != nil || len(msg) != n {
						b.Fatal(len(msg), err)
					}
					buf = msg
				}
			})
		}
	}
}

// BenchmarkWrite writes messages from a server (no masking) and a client
// (masking a copy).
func BenchmarkWrite(b *testing.B) {
	for _, side := range []string{"server", "client"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", side, sizeName(n)), func(b *testing.B) {
				payload := make([]byte, n)
				c := benchConn(side == "client", []byte{0})
				ctx := context.Background()
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := c.Write(ctx, BinaryMessage, payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecoder runs the sans-I/O core alone over a buffer of frames.
func BenchmarkDecoder(b *testing.B) {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'x'
	}
	frame := clientFrame(true, 0, opText, payload)
	work := make([]byte, len(frame))
	d := &decoder{expectMasked: true}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(work, frame)
		for p := work; len(p) > 0; {
			n, _, err := d.parse(p)
			if err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
}

// BenchmarkEventRead reads 1 KiB masked client messages as the event loop
// does and hands each to a handler: by default the handler owns Data (one
// allocation and copy per message), with BorrowMessageData it borrows the
// read buffer.
func BenchmarkEventRead(b *testing.B) {
	for _, mode := range []string{"owned", "borrowed"} {
		b.Run(mode+"/1KiB", func(b *testing.B) {
			const n = 1 << 10
			payload := make([]byte, n)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			c := benchConn(false, clientFrame(true, 0, opBinary, payload))
			c.borrow = mode == "borrowed"
			var got int
			c.OnMessage(func(m Message) { got += len(m.Data) })
			handler := c.events.get().message
			var buf []byte
			b.SetBytes(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				typ, msg, kept, err := c.readEventMessage(buf)
				if err != nil || len(msg) != n {
					b.Fatal(len(msg), err)
				}
				buf = kept
				c.deliverMessage(handler, Message{Type: typ, Data: msg})
			}
		})
	}
}
