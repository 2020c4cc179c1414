package wsnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"testing"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsnet"
)

// isTimeout checks what net.Conn promises of a deadline error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// io.Copy both ways: the client streams 1 MiB in writes of random sizes
// while the server copies everything back; the client reads it back while
// still writing, then closes, and the server's copy ends cleanly at io.EOF.
func TestCopyBothWays(t *testing.T) {
	server, client, _, _ := netPair(t)
	want := make([]byte, 1<<20)
	rnd := rand.New(rand.NewSource(1))
	rnd.Read(want)

	echoed := make(chan error, 1)
	go func() {
		_, err := io.Copy(server, server) // ends with nil at io.EOF
		echoed <- err
	}()
	wrote := make(chan error, 1)
	go func() {
		p := want
		for len(p) > 0 {
			n := min(len(p), 1+rnd.Intn(40000))
			if _, err := client.Write(p[:n]); err != nil {
				wrote <- err
				return
			}
			p = p[n:]
		}
		wrote <- nil
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("data differs after the round trip")
	}
	if err := wait(t, wrote, "the writes"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := wait(t, echoed, "the server's copy"); err != nil {
		t.Fatalf("server io.Copy: %v", err)
	}
}

// A peer's normal close reads as a bare io.EOF, so that io.ReadFull and
// friends see a clean end; Close then returns nil.
func TestPeerCloseIsEOF(t *testing.T) {
	for _, code := range []websocket.StatusCode{websocket.StatusNormalClosure, websocket.StatusGoingAway} {
		t.Run(code.String(), func(t *testing.T) {
			server, _, _, wsClient := netPair(t)
			closed := make(chan error, 1)
			go func() { closed <- wsClient.Close(code, "") }()
			if n, err := server.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Fatalf("Read = %d, %v; want 0, io.EOF", n, err)
			}
			if err := wait(t, closed, "the client's Close"); err != nil {
				t.Fatalf("client Close: %v", err)
			}
			if err := server.Close(); err != nil {
				t.Fatalf("Close after the peer closed: %v", err)
			}
		})
	}
}

// Any other close is an error carrying the peer's code.
func TestPeerCloseWithError(t *testing.T) {
	server, _, _, wsClient := netPair(t)
	go wsClient.Close(websocket.StatusInternalError, "oops")
	_, err := server.Read(make([]byte, 10))
	if websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Fatalf("Read: %v, want a close with 1011", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read: %v, want a *net.OpError", err)
	}
}

// Close sends 1000 to the peer, unblocks a pending Read with
// net.ErrClosed, and makes later calls fail with net.ErrClosed.
func TestClose(t *testing.T) {
	server, client, wsServer, _ := netPair(t)
	blocked := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		blocked <- err
	}()
	// The server reads the close frame with the WebSocket API, to see its
	// code.
	peer := make(chan error, 1)
	go func() {
		_, _, err := wsServer.Read(context.Background())
		peer <- err
	}()
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := wait(t, blocked, "the pending Read"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("pending Read: %v, want net.ErrClosed", err)
	}
	if err := wait(t, peer, "the peer's read"); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("peer read %v, want a close with 1000", err)
	}
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := server.Close(); err != nil {
		t.Fatalf("server Close after the handshake: %v", err)
	}
}

// A Write after the peer closed fails.
func TestWriteAfterPeerClose(t *testing.T) {
	server, client, _, _ := netPair(t)
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read: %v, want io.EOF", err)
	}
	if _, err := server.Write([]byte("late")); err == nil {
		t.Fatal("Write after the peer closed succeeded")
	}
}

// A message of the other type is not part of the stream: Read fails with
// ErrMessageType, and the peer is told 1003.
func TestWrongMessageType(t *testing.T) {
	server, _, _, wsClient := netPair(t)
	ctx := testContext(t)
	if err := wsClient.Write(ctx, websocket.BinaryMessage, []byte("ok ")); err != nil {
		t.Fatal(err)
	}
	if err := wsClient.Write(ctx, websocket.TextMessage, []byte("text")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, err := server.Read(buf); err != nil || string(buf[:n]) != "ok " {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	_, err := server.Read(buf)
	if !errors.Is(err, wsnet.ErrMessageType) {
		t.Fatalf("Read: %v, want ErrMessageType", err)
	}
	if _, err2 := server.Read(buf); !errors.Is(err2, wsnet.ErrMessageType) {
		t.Fatalf("second Read: %v, want the same error", err2)
	}
	if _, _, err := wsClient.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("peer read %v, want a close with 1003", err)
	}
}

// Empty messages add nothing to the stream, and text messages work when
// the conn is made for text.
func TestEmptyMessagesAndText(t *testing.T) {
	wsServer, wsClient := wsPair(t)
	server := wsnet.NetConn(context.Background(), wsServer, websocket.TextMessage)
	defer server.Close()
	ctx := testContext(t)
	for _, m := range []string{"", "héllo", "", " wörld"} {
		if err := wsClient.Write(ctx, websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len("héllo wörld"))
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "héllo wörld" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := server.Write(nil); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
	if _, err := server.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	// The empty Write sent nothing: the next message is "back".
	if typ, msg, err := wsClient.Read(ctx); err != nil || typ != websocket.TextMessage || string(msg) != "back" {
		t.Fatalf("peer got %v %q, %v", typ, msg, err)
	}
}

// Addresses are those of the WebSocket's TCP connection.
func TestAddrs(t *testing.T) {
	server, client, wsServer, wsClient := netPair(t)
	if client.LocalAddr().String() != wsClient.LocalAddr().String() || client.RemoteAddr().String() != wsClient.RemoteAddr().String() {
		t.Fatalf("client addrs %v %v, ws %v %v", client.LocalAddr(), client.RemoteAddr(), wsClient.LocalAddr(), wsClient.RemoteAddr())
	}
	if server.LocalAddr().String() != client.RemoteAddr().String() || server.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("server addrs %v %v do not mirror the client's", server.LocalAddr(), server.RemoteAddr())
	}
	_ = wsServer
}

// The context given to NetConn bounds the connection: when it ends, the
// WebSocket is dropped and a pending Read fails.
func TestContextEndsConn(t *testing.T) {
	wsServer, wsClient := wsPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc := wsnet.NetConn(ctx, wsClient, websocket.BinaryMessage)
	defer nc.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := nc.Read(make([]byte, 1))
		readErr <- err
	}()
	cancel()
	if err := wait(t, readErr, "the Read"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v, want context.Canceled", err)
	}
	if _, _, err := wsServer.Read(testContext(t)); websocket.CloseStatus(err) != websocket.StatusAbnormalClosure {
		t.Fatalf("peer read %v, want the connection dropped", err)
	}
}
