package websocket

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// deflateBenchStreams returns, per message kind, 64 different messages of
// one size: JSON-like chat events of 1 KiB and 64 KiB of text. They differ
// so that context takeover is measured on a realistic stream, not on one
// message repeated.
func deflateBenchStreams() map[string][][]byte {
	r := rand.New(rand.NewPCG(3, 5))
	words := strings.Fields("the of and to in is was that for on with as by at from his her it an were which be this are had not or but have they one their you all socket frame deflate window message")
	out := map[string][][]byte{}
	for i := range 64 {
		var j strings.Builder
		for k := 0; j.Len() < 1024; k++ {
			fmt.Fprintf(&j, `{"id":%d,"type":"chat","user":"user-%02d","room":"lobby-%d","text":"%s %s %s","ts":%d},`,
				i*100+k, r.IntN(50), r.IntN(5), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], 1732170000+r.IntN(100000))
		}
		out["json1KiB"] = append(out["json1KiB"], []byte(j.String()[:1024]))
		var txt strings.Builder
		for txt.Len() < 64<<10 {
			txt.WriteString(words[r.IntN(len(words))])
			txt.WriteByte(' ')
		}
		out["text64KiB"] = append(out["text64KiB"], []byte(txt.String()[:64<<10]))
	}
	return out
}

// deflateBenchConn is benchConn with compression agreed as params say.
func deflateBenchConn(client bool, stream []byte, params deflateParams) *Conn {
	c := benchConn(client, stream)
	c.enableDeflate(params, &CompressionOptions{})
	return c
}

// BenchmarkCompressedWrite writes compressed messages from a server, with
// and without context takeover; ratio is wire bytes over message bytes.
func BenchmarkCompressedWrite(b *testing.B) {
	for _, kind := range []string{"json1KiB", "text64KiB"} {
		msgs := deflateBenchStreams()[kind]
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/takeover=%v", kind, takeover), func(b *testing.B) {
				params := deflateParams{serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover}
				counter := &countingConn{replayConn: replayConn{stream: []byte{0}}}
				c := newConn(false, -1, 0)
				c.opened(counter, nil)
				c.flushed.Store(true)
				c.enableDeflate(params, &CompressionOptions{})
				ctx := context.Background()
				b.SetBytes(int64(len(msgs[0])))
				b.ReportAllocs()
				i, in := 0, 0
				for b.Loop() {
					m := msgs[i%len(msgs)]
					if err := c.Write(ctx, TextMessage, m); err != nil {
						b.Fatal(err)
					}
					i++
					in += len(m)
				}
				b.ReportMetric(float64(counter.n)/float64(in), "ratio")
			})
		}
	}
}

// countingConn is a replayConn that counts written bytes.
type countingConn struct {
	replayConn
	n int
}

func (c *countingConn) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkCompressedReadMessage reads compressed client messages on a
// server into a reused buffer. The replayed stream holds 64 messages
// compressed in order, so with context takeover each refers to the ones
// before it as a real stream would.
func BenchmarkCompressedReadMessage(b *testing.B) {
	for _, kind := range []string{"json1KiB", "text64KiB"} {
		msgs := deflateBenchStreams()[kind]
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/takeover=%v", kind, takeover), func(b *testing.B) {
				params := deflateParams{serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover}
				comp := params.newCompressor(false, &CompressionOptions{})
				var stream []byte
				for _, m := range msgs {
					wire, err := comp.compress(nil, m)
					if err != nil {
						b.Fatal(err)
					}
					stream = append(stream, clientFrame(true, rsv1, opText, wire)...)
				}
				comp.close()
				// Replaying from the start keeps every reference valid:
				// message k refers only to messages 1..k-1, which sit at
				// the same distances in the window on every pass.
				c := deflateBenchConn(false, stream, params)
				ctx := context.Background()
				buf := make([]byte, 0, len(msgs[0]))
				b.SetBytes(int64(len(msgs[0])))
				b.ReportAllocs()
				for b.Loop() {
					_, msg, err := c.ReadMessage(ctx, buf)
					if err != nil || len(msg) != len(msgs[0]) {
						b.Fatal(len(msg), err)
					}
					buf = msg
				}
			})
		}
	}
}

// BenchmarkCompressedConnMemory reports the heap one server connection
// holds between messages (B/conn) after it has sent and received one 1 KiB
// compressed message, next to a connection without compression. Pools are
// emptied before measuring, so pooled objects do not count.
func BenchmarkCompressedConnMemory(b *testing.B) {
	msg := deflateBenchStreams()["json1KiB"][0]
	for _, tc := range []struct {
		name   string
		on     bool
		params deflateParams
		opts   CompressionOptions
	}{
		{name: "off"},
		{name: "takeover/level=1", on: true},
		{name: "takeover/level=6", on: true, opts: CompressionOptions{Level: 6}},
		{name: "no-takeover", on: true, params: deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true}},
		{name: "takeover-receive-only", on: true, params: deflateParams{serverNoContextTakeover: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			wire, _ := tc.params.newCompressor(false, &tc.opts).compress(nil, msg)
			frame := clientFrame(true, rsv1, opText, wire)
			if !tc.on {
				frame = clientFrame(true, 0, opText, msg)
			}
			const conns = 16
			var total uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&before)
				cs := make([]*Conn, conns)
				for i := range cs {
					c := benchConn(false, frame)
					if tc.on {
						opts := tc.opts
						c.enableDeflate(tc.params, &opts)
					}
					if err := c.Write(context.Background(), TextMessage, msg); err != nil {
						b.Fatal(err)
					}
					if _, _, err := c.Read(context.Background()); err != nil {
						b.Fatal(err)
					}
					cs[i] = c
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				total += (after.HeapAlloc - before.HeapAlloc) / conns
				runtime.KeepAlive(cs)
			}
			b.ReportMetric(float64(total)/float64(b.N), "B/conn")
		})
	}
}
