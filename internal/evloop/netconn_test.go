package evloop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// netConnServer serves NetConns: each accepted connection gets one, made
// with the given first bytes, and is handed to conns.
func netConnServer(t *testing.T, cfg Config, buffered []byte) (*Server, chan *NetConn) {
	t.Helper()
	conns := make(chan *NetConn, 1)
	cfg.OnOpen = func(c *Conn) {
		nc := NewNetConn(c, buffered)
		c.SetContext(nc)
		conns <- nc
	}
	cfg.OnData = func(c *Conn, b []byte) { c.Context().(*NetConn).Deliver(b) }
	cfg.OnClose = func(c *Conn, err error) { c.Context().(*NetConn).Hangup(err) }
	return listen(t, cfg), conns
}

// TestNetConnRead checks that Read returns the buffered bytes first, then
// what the peer sends, then the end of the stream.
func TestNetConnRead(t *testing.T) {
	s, conns := netConnServer(t, Config{}, []byte("early "))
	c := dial(t, s)
	nc := <-conns
	if _, err := c.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 16)
	buf := make([]byte, 4)
	for len(got) < len("early later") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "early later" {
		t.Fatalf("read %q", got)
	}
	c.Close()
	if n, err := nc.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the peer's end: %d %v", n, err)
	}
	nc.Close()
}

// TestNetConnReadDeadline checks that a read deadline ends a blocked Read
// (also one set while it blocks), and that clearing it lets Read wait
// again.
func TestNetConnReadDeadline(t *testing.T) {
	s, conns := netConnServer(t, Config{}, nil)
	c := dial(t, s)
	nc := <-conns
	defer nc.Close()
	buf := make([]byte, 8)
	nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := nc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past the deadline: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := nc.Read(buf)
		done <- err
	}()
	nc.SetDeadline(time.Unix(1, 0)) // in the past: the blocked Read returns
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline moved to the past: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
	go func() {
		_, err := nc.Read(buf)
		done <- err
	}()
	c.Write([]byte("x"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNetConnClose checks that Close ends a blocked Read with
// net.ErrClosed, that writes then fail with it, and that the peer sees
// the end of the stream after the bytes written before Close.
func TestNetConnClose(t *testing.T) {
	s, conns := netConnServer(t, Config{}, nil)
	c := dial(t, s)
	nc := <-conns
	done := make(chan error, 1)
	go func() {
		_, err := nc.Read(make([]byte, 8))
		done <- err
	}()
	if _, err := nc.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read after Close: %v", err)
	}
	if _, err := nc.Write([]byte("more")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("the peer read %q, %v", got, err)
	}
	if nc.RemoteAddr() == nil || nc.LocalAddr() == nil {
		t.Fatal("nil address after Close")
	}
}

// TestNetConnPause checks the push back: a reader that does not read
// makes the connection stop reading once maxBuffered bytes wait, so the
// peer's writes block; reading resumes it and every byte arrives in
// order.
func TestNetConnPause(t *testing.T) {
	s, conns := netConnServer(t, Config{}, nil)
	c := dial(t, s)
	nc := <-conns
	defer nc.Close()
	chunk := make([]byte, 16<<10)
	var sent []byte
	for i := 0; ; i++ {
		if len(sent) > 256<<20 {
			t.Fatal("the server kept reading for a reader that did not")
		}
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(chunk)
		sent = append(sent, chunk[:n]...)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
	}
	nc.mu.Lock()
	buffered, paused := len(nc.r.in)-nc.r.off, nc.r.paused
	nc.mu.Unlock()
	if !paused || buffered > maxBuffered+DefaultReadBufferSize {
		t.Fatalf("paused %v with %d bytes buffered", paused, buffered)
	}
	c.SetWriteDeadline(time.Time{})
	go func() { c.Write([]byte("end")); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(nc)
	if !errors.Is(err, io.EOF) && err != nil {
		t.Fatal(err)
	}
	if want := append(sent, "end"...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, sent %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
	}
}

// TestNetConnTakeOver checks that TakeOver hands the unread bytes to
// onData first, then what arrives, and reports the end to onEnd once;
// and that a paused connection resumes.
func TestNetConnTakeOver(t *testing.T) {
	s, conns := netConnServer(t, Config{}, []byte("first,"))
	c := dial(t, s)
	nc := <-conns
	data := make(chan string, 16)
	ended := make(chan error, 2)
	nc.TakeOver(funcSink{func(b []byte) { data <- string(b) }, func(err error) { ended <- err }})
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after TakeOver succeeded")
	}
	c.Write([]byte("second"))
	var got string
	for got != "first,second" {
		select {
		case s := <-data:
			got += s
		case <-time.After(wait):
			t.Fatalf("got %q", got)
		}
	}
	c.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("onEnd(%v)", err)
		}
	case <-time.After(wait):
		t.Fatal("no onEnd")
	}
	nc.Close()
	if len(ended) != 0 {
		t.Fatal("onEnd called twice")
	}
}

// funcSink is a Sink made of two functions.
type funcSink struct {
	data func([]byte)
	end  func(error)
}

func (s funcSink) Data(b []byte) { s.data(b) }
func (s funcSink) End(err error) { s.end(err) }
