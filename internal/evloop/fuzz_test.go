package evloop

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzEcho sends data through the engine's echo in pieces whose sizes come
// from cuts: whatever the pieces, the same bytes come back in order. The
// small read buffer makes a piece span several OnData calls.
func FuzzEcho(f *testing.F) {
	f.Add([]byte("hello"), []byte{1, 2})
	s, err := Listen("127.0.0.1:0", Config{Loops: 2, ReadBufferSize: 7, OnData: echo})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) == 0 {
			return
		}
		c, err := net.DialTimeout("tcp", s.Addr().String(), wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(data))
			n, _ := io.ReadFull(c, b)
			got <- b[:n]
		}()
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) && int(cuts[i])+1 < n {
				n = int(cuts[i]) + 1
			}
			if _, err := c.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("echo %q, want %q", b, data)
		}
	})
}
