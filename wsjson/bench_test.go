package wsjson_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsjson"
)

// benchValue is a small struct, the usual content of a JSON message.
type benchValue struct {
	ID    int     `json:"id"`
	Kind  string  `json:"kind"`
	Price float64 `json:"price"`
	OK    bool    `json:"ok"`
}

var sample = benchValue{ID: 42, Kind: "trade", Price: 101.25, OK: true}

// drain reads and drops messages until the connection ends.
func drain(c *websocket.Conn) {
	var buf []byte
	for {
		_, msg, err := c.ReadMessage(context.Background(), buf)
		if err != nil {
			return
		}
		buf = msg
	}
}

// BenchmarkWrite measures wsjson.Write of a small struct from a client
// (whose frames are masked) to a server that drains them. The struct is
// passed by pointer: a struct passed by value is boxed into the interface,
// an allocation of the caller's.
func BenchmarkWrite(b *testing.B) {
	server, client := pair(b)
	go drain(server)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := wsjson.Write(ctx, client, &sample); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteMarshal is the naive alternative, for comparison:
// json.Marshal then Write.
func BenchmarkWriteMarshal(b *testing.B) {
	server, client := pair(b)
	go drain(server)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := json.Marshal(&sample)
		if err != nil {
			b.Fatal(err)
		}
		if err := client.Write(ctx, websocket.TextMessage, p); err != nil {
			b.Fatal(err)
		}
	}
}

// feed writes msg to c until the connection ends.
func feed(c *websocket.Conn, msg []byte) {
	for c.Write(context.Background(), websocket.TextMessage, msg) == nil {
	}
}

// BenchmarkRead measures wsjson.Read of a small struct sent by a server.
func BenchmarkRead(b *testing.B) {
	server, client := pair(b)
	msg, _ := json.Marshal(&sample)
	go feed(server, msg)
	ctx := context.Background()
	var v benchValue
	b.ReportAllocs()
	for b.Loop() {
		if err := wsjson.Read(ctx, client, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadNewSlice is the naive alternative, for comparison: Read
// (a new slice per message) then json.Unmarshal.
func BenchmarkReadNewSlice(b *testing.B) {
	server, client := pair(b)
	msg, _ := json.Marshal(&sample)
	go feed(server, msg)
	ctx := context.Background()
	var v benchValue
	b.ReportAllocs()
	for b.Loop() {
		_, p, err := client.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(p, &v); err != nil {
			b.Fatal(err)
		}
	}
}
