package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestCloseDuringStart closes a client while Start waits for the server's
// handshake response. Start must fail, the connection must end Closed, and
// the socket that the late 101 response arrives on must be closed, not
// leaked as an open connection nobody reads.
func TestCloseDuringStart(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testCloseDuringStart(t, nil) })
	t.Run("compressed", func(t *testing.T) { testCloseDuringStart(t, &CompressionOptions{}) })
}

func testCloseDuringStart(t *testing.T, compression *CompressionOptions) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	gotRequest := make(chan struct{})
	respond := make(chan struct{})
	serverSawClose := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			serverSawClose <- err
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			serverSawClose <- err
			return
		}
		close(gotRequest)
		<-respond
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if req.Header.Get("Sec-WebSocket-Extensions") != "" {
			resp += "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		}
		resp += "\r\n"
		if _, err := nc.Write([]byte(resp)); err != nil {
			serverSawClose <- err
			return
		}
		// The client must close the TCP connection: a read sees EOF (or a
		// reset), never a WebSocket frame or a hang.
		_, err = io.Copy(io.Discard, br)
		serverSawClose <- err
	}()

	c := NewClient("ws://"+ln.Addr().String()+"/", &ClientOptions{Compression: compression})
	started := make(chan error, 1)
	go func() { started <- c.Start() }()
	wait(t, gotRequest, "the handshake request")
	if err := c.Close(StatusNormalClosure, "changed my mind"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(respond)

	err = wait(t, started, "Start to return")
	if err == nil {
		t.Fatal("Start returned nil after Close")
	}
	if !errors.Is(err, ErrClosed) || CloseStatus(err) != StatusNormalClosure {
		t.Errorf("Start error = %v, want ErrClosed wrapping the close", err)
	}
	wait(t, c.Done(), "Done")
	if s := c.ReadyState(); s != Closed {
		t.Errorf("ReadyState = %v, want closed", s)
	}
	if a := c.RemoteAddr(); a != nil {
		t.Errorf("RemoteAddr = %v, want nil for a connection that never opened", a)
	}
	// io.Copy returns at EOF or a reset: either way the socket is closed.
	wait(t, serverSawClose, "the server to see the TCP connection closed")
	if err := c.Close(StatusNormalClosure, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}
