package websocket

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A bigMessage does not fit in the socket buffers of a loopback
// connection, so sending it to a peer that does not read blocks.
const bigMessage = 32 << 20

// deafServer completes the handshake as a server and then never reads,
// until the test ends.
func deafServer(t *testing.T) string {
	stop := make(chan struct{})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		brw.Flush()
		<-stop
	})
	t.Cleanup(func() { close(stop) })
	return url
}

// deafEventServer starts an event-API server with opts whose client is a
// raw connection that never reads. It returns the server connection and
// a channel of its OnClose calls, counted in closes.
func deafEventServer(t *testing.T, opts *ServerOptions, closes *atomic.Int32) (*Conn, <-chan closeSeen) {
	t.Helper()
	conns := make(chan *Conn, 1)
	seen := make(chan closeSeen, 2)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, opts)
		ws.OnClose(func(code StatusCode, reason string) {
			closes.Add(1)
			seen <- closeSeen{code, reason}
		})
		if err := ws.Start(); err != nil {
			t.Error(err)
			return
		}
		conns <- ws
	})
	rawClient(t, url) // never reads; closed when the test ends
	return wait(t, conns, "server conn"), seen
}

// checkCleanErr fails the test if err is a raw network error rather than
// one of the library's.
func checkCleanErr(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "writev") {
		t.Fatalf("%s returned a raw network error: %v", what, err)
	}
}

// returnsWithin runs fn on a goroutine and returns its error, failing the
// test if it takes more than a generous bound.
func returnsWithin(t *testing.T, bound time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s did not return within %v", what, bound)
		return nil
	}
}

// With the event API, a send to a peer that never reads ends with
// ErrWriteTimeout; the connection is dropped: Close returns a clean error
// at once and OnClose reports 1006 once.
func TestSendToDeafPeerTimesOut(t *testing.T) {
	var closes atomic.Int32
	ws, seen := deafEventServer(t, &ServerOptions{WriteTimeout: 200 * time.Millisecond, CloseTimeout: time.Minute}, &closes)

	msg := make([]byte, 1<<20)
	err := returnsWithin(t, 30*time.Second, "SendBinary", func() error {
		for {
			if err := ws.SendBinary(msg); err != nil {
				return err
			}
		}
	})
	if !errors.Is(err, ErrWriteTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendBinary = %v, want ErrWriteTimeout", err)
	}
	err = returnsWithin(t, 10*time.Second, "Close", func() error { return ws.Close(StatusNormalClosure, "") })
	checkCleanErr(t, "Close", err)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Close = %v, want ErrClosed", err)
	}
	if err := ws.SendText("more"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendText after the timeout = %v, want ErrClosed", err)
	}
	if err := ws.SendPing(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendPing after the timeout = %v, want ErrClosed", err)
	}
	cs := wait(t, seen, "OnClose")
	if cs.code != StatusAbnormalClosure || !strings.Contains(cs.reason, "write timed out") {
		t.Fatalf("OnClose(%v, %q), want 1006 naming the write timeout", cs.code, cs.reason)
	}
	if !errors.Is(ws.Err(), ErrWriteTimeout) || CloseStatus(ws.Err()) != StatusAbnormalClosure {
		t.Fatalf("Err = %v, want a 1006 *CloseError wrapping ErrWriteTimeout", ws.Err())
	}
	if n := closes.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
}

// Close while another goroutine's write is stuck returns within the write
// timeout, not the close timeout, with a clean error; the stuck write
// reports ErrWriteTimeout.
func TestCloseWhileWriteStuck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      ServerOptions
		writerErr error
	}{
		// The write timeout frees the stuck writer, then Close.
		{"write timeout", ServerOptions{WriteTimeout: 300 * time.Millisecond, CloseTimeout: time.Minute}, ErrWriteTimeout},
		// Without one, the close timeout drops the connection.
		{"close timeout", ServerOptions{WriteTimeout: -1, CloseTimeout: 300 * time.Millisecond}, ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var closes atomic.Int32
			ws, seen := deafEventServer(t, &tc.opts, &closes)
			writeErr := make(chan error, 1)
			go func() { writeErr <- ws.SendBinary(make([]byte, bigMessage)) }()
			// The writer holds frameMu for as long as its frame is
			// going out, which is until the bound: the frame cannot fit.
			for deadline := time.Now().Add(10 * time.Second); ws.frameMu.TryLock(); {
				ws.frameMu.Unlock()
				if time.Now().After(deadline) {
					t.Fatal("the writer never started")
				}
				time.Sleep(time.Millisecond)
			}
			err := returnsWithin(t, 10*time.Second, "Close", func() error { return ws.Close(StatusNormalClosure, "") })
			checkCleanErr(t, "Close", err)
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Close = %v, want ErrClosed", err)
			}
			if err := wait(t, writeErr, "the stuck write"); !errors.Is(err, tc.writerErr) {
				t.Fatalf("stuck SendBinary = %v, want %v", err, tc.writerErr)
			}
			cs := wait(t, seen, "OnClose")
			if cs.code != StatusAbnormalClosure {
				t.Fatalf("OnClose(%v, %q), want 1006", cs.code, cs.reason)
			}
			<-ws.Done()
			if n := closes.Load(); n != 1 {
				t.Fatalf("OnClose ran %d times", n)
			}
		})
	}
}

// With the blocking API, a Write to a server that never reads ends with
// ErrWriteTimeout; later calls get clean errors, and reads report 1006
// with the cause.
func TestWriteToDeafPeerTimesOut(t *testing.T) {
	c := dialTest(t, deafServer(t), &ClientOptions{WriteTimeout: 200 * time.Millisecond, CloseTimeout: time.Minute})
	ctx := testContext(t)
	msg := make([]byte, 1<<20)
	err := returnsWithin(t, 30*time.Second, "Write", func() error {
		for {
			if err := c.Write(ctx, BinaryMessage, msg); err != nil {
				return err
			}
		}
	})
	if !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Write = %v, want ErrWriteTimeout", err)
	}
	if err := c.Write(ctx, TextMessage, []byte("more")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after the timeout = %v, want ErrClosed", err)
	}
	err = returnsWithin(t, 10*time.Second, "Close", func() error { return c.Close(StatusNormalClosure, "") })
	checkCleanErr(t, "Close", err)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Close = %v, want ErrClosed", err)
	}
	_, _, err = c.Read(ctx)
	if CloseStatus(err) != StatusAbnormalClosure || !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Read = %v, want 1006 caused by ErrWriteTimeout", err)
	}
}

// A context deadline earlier than the write timeout wins, and is reported
// as the context's error; the write timeout still bounds a write whose
// context has a later deadline, and the streaming writer's fragments.
func TestWriteBoundsCombine(t *testing.T) {
	t.Run("context first", func(t *testing.T) {
		c := dialTest(t, deafServer(t), &ClientOptions{WriteTimeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := returnsWithin(t, 30*time.Second, "Write", func() error { return c.Write(ctx, BinaryMessage, make([]byte, bigMessage)) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("timeout first", func(t *testing.T) {
		c := dialTest(t, deafServer(t), &ClientOptions{WriteTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := returnsWithin(t, 30*time.Second, "Write", func() error { return c.Write(ctx, BinaryMessage, make([]byte, bigMessage)) })
		if !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("Write = %v, want ErrWriteTimeout", err)
		}
	})
	t.Run("streaming", func(t *testing.T) {
		c := dialTest(t, deafServer(t), &ClientOptions{WriteTimeout: 200 * time.Millisecond})
		w, err := c.NextWriter(context.Background(), BinaryMessage)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		err = returnsWithin(t, 30*time.Second, "MessageWriter.Write", func() error {
			for {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
		})
		if !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("MessageWriter.Write = %v, want ErrWriteTimeout", err)
		}
		if err := w.Close(); !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("MessageWriter.Close = %v, want the write's error", err)
		}
	})
}
