package websocket

import (
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkWriteTCP writes small messages from a server over a real
// loopback TCP connection to a peer that reads and discards them: unlike
// BenchmarkWrite's replayed connection, it pays for the write deadline
// that bounds every write.
func BenchmarkWriteTCP(b *testing.B) {
	for _, n := range []int{32, 1 << 10} {
		b.Run(sizeName(n), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, nc)
				nc.Close()
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c := newConn(false, -1, 0)
			c.opened(nc, nil)
			c.flushed.Store(true)
			payload := make([]byte, n)
			ctx := context.Background()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Write(ctx, BinaryMessage, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.CloseNow()
			<-drained
		})
	}
}
