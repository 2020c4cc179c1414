package wsnet_test

import (
	"context"
	"io"
	"testing"

	"github.com/wsdriver/websocket"
)

// BenchmarkRoundTrip measures a 1 KiB request and its echo through
// NetConn on both ends, for comparison with BenchmarkRoundTripWebSocket.
func BenchmarkRoundTrip(b *testing.B) {
	server, client, _, _ := netPair(b)
	go io.Copy(server, server)
	msg := make([]byte, 1024)
	reply := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, reply); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTripWebSocket is BenchmarkRoundTrip with the WebSocket
// API on both ends: the cost NetConn adds is the difference.
func BenchmarkRoundTripWebSocket(b *testing.B) {
	server, client := wsPair(b)
	go func() {
		var buf []byte
		for {
			typ, msg, err := server.ReadMessage(context.Background(), buf)
			if err != nil {
				return
			}
			buf = msg
			if server.Write(context.Background(), typ, msg) != nil {
				return
			}
		}
	}()
	ctx := context.Background()
	msg := make([]byte, 1024)
	var reply []byte
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Write(ctx, websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
		var err error
		if _, reply, err = client.ReadMessage(ctx, reply); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream measures one-way throughput of io.Copy's 32 KiB writes
// through NetConn.
func BenchmarkStream(b *testing.B) {
	server, client, _, _ := netPair(b)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, server)
		close(done)
	}()
	chunk := make([]byte, 32<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	client.Close()
	<-done
}
