package wsnet_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// A deadline in the past fails Read and Write at once with a timeout, and
// leaves the connection usable once it is lifted.
func TestPastDeadline(t *testing.T) {
	server, client, _, _ := netPair(t)
	client.SetDeadline(time.Unix(1, 0))
	if n, err := client.Write([]byte("x")); n != 0 || !isTimeout(err) {
		t.Fatalf("Write = %d, %v; want 0 and a timeout", n, err)
	}
	if n, err := client.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("Read = %d, %v; want 0 and a timeout", n, err)
	}
	client.SetDeadline(time.Time{})
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server got %q, %v", buf, err)
	}
	if _, err := server.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client got %q, %v", buf, err)
	}
}

// Moving the deadline while a Read waits takes effect for that Read; the
// message that arrives afterwards is not lost.
func TestDeadlineInterruptsRead(t *testing.T) {
	server, client, _, _ := netPair(t)
	client.SetReadDeadline(time.Now().Add(time.Hour))
	readErr := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 1))
		readErr <- err
	}()
	client.SetReadDeadline(time.Unix(1, 0)) // before or during the Read: either way it times out
	if err := wait(t, readErr, "the Read"); !isTimeout(err) {
		t.Fatalf("Read: %v, want a timeout", err)
	}
	// The ReadMessage the timed-out Read started is still pending; the
	// message it receives is delivered to the next Read.
	if _, err := server.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Time{})
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "later" {
		t.Fatalf("got %q, %v", buf, err)
	}
}

// A deadline that passes while a Write is stuck (the peer does not read)
// returns a timeout without breaking the connection: what Writes reported
// as written, the timed-out one included, reaches the peer in order,
// followed by what is written after the deadline is lifted.
func TestDeadlineInterruptsWrite(t *testing.T) {
	server, client, _, _ := netPair(t)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	var sent int64
	for {
		n, err := client.Write(chunk)
		sent += int64(n)
		if err != nil {
			if !isTimeout(err) {
				t.Fatalf("Write: %v, want a timeout", err)
			}
			break
		}
	}
	client.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := client.Write([]byte("END"))
		done <- err
	}()
	got, err := io.ReadAll(io.LimitReader(server, sent+3))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != sent+3 || string(got[sent:]) != "END" {
		t.Fatalf("peer got %d bytes ending %q, want %d bytes ending END", len(got), got[max(0, len(got)-3):], sent+3)
	}
	for i := int64(0); i < sent; i += int64(len(chunk)) {
		if !bytes.Equal(got[i:i+int64(len(chunk))], chunk) {
			t.Fatalf("chunk at %d differs", i)
		}
	}
	if err := wait(t, done, "the last Write"); err != nil {
		t.Fatalf("Write after lifting the deadline: %v", err)
	}
}

// A deadline far ahead, moved earlier while nothing arrives, ends the
// wait; one moved later again before it passes does not.
func TestDeadlineMovedLater(t *testing.T) {
	_, client, _, wsClient := netPair(t)
	_ = wsClient
	client.SetReadDeadline(time.Now().Add(time.Hour))
	client.SetReadDeadline(time.Now().Add(2 * time.Hour))
	readErr := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 1))
		readErr <- err
	}()
	select {
	case err := <-readErr:
		t.Fatalf("Read returned %v with the deadline two hours ahead", err)
	default:
	}
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := wait(t, readErr, "the Read"); !isTimeout(err) {
		t.Fatalf("Read: %v, want a timeout", err)
	}
}

var _ = context.Background
var _ = websocket.BinaryMessage
