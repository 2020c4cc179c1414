package evloop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

const wait = 20 * time.Second // generous: the machine is busy

// closed records OnClose calls.
type closed struct {
	ch chan error
}

func newClosed(n int) *closed { return &closed{ch: make(chan error, n)} }

func (r *closed) onClose(_ *Conn, err error) { r.ch <- err }

func (r *closed) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.ch:
		return err
	case <-time.After(wait):
		t.Fatal("no OnClose")
		return nil
	}
}

// blockingWait makes listen set Config.BlockingWait (TestBlockingWait).
var blockingWait bool

func listen(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.BlockingWait = blockingWait
	if cfg.OnData == nil {
		cfg.OnData = func(c *Conn, b []byte) {}
	}
	s, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return c
}

func echo(c *Conn, b []byte) {
	c.Write(b)
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

func TestEchoManyConnections(t *testing.T) {
	const conns, rounds = 1000, 3
	rec := newClosed(conns)
	s := listen(t, Config{Loops: 2, OnData: echo, OnClose: rec.onClose})
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", s.Addr().String(), wait)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * wait))
			for r := 0; r < rounds; r++ {
				msg := pattern((i*37+r*1001)%5000+1, i+r)
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- errors.New("echo differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < conns; i++ {
		if err := rec.next(t); err != io.EOF {
			t.Fatalf("OnClose(%v), want io.EOF", err)
		}
	}
	if n := s.NumConns(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

// TestSlowReader writes more than the socket buffers hold to a client that
// reads slowly: the rest waits in the write queue and arrives complete and
// in order.
func TestSlowReader(t *testing.T) {
	const size = 16 << 20
	msg := pattern(size, 3)
	queued := make(chan int, 1)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 2 * size,
		OnOpen: func(c *Conn) {
			if err := c.Write(msg); err != nil {
				t.Error(err)
			}
			queued <- c.queued()
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s)
	got := make([]byte, 0, size)
	buf := make([]byte, 4096)
	for len(got) < size {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("bytes differ")
	}
	// The fallback's Write returns only once the client has read.
	if q := <-queued; hasWriteQueue && q == 0 {
		t.Fatal("the write did not hit EAGAIN")
	}
	c.Close()
	if err := rec.next(t); err != io.EOF {
		t.Fatalf("OnClose(%v)", err)
	}
}

func TestWriteQueueFull(t *testing.T) {
	if !hasWriteQueue {
		t.Skip("the portable fallback has no write queue")
	}
	result := make(chan error, 1)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 256 << 10,
		OnOpen: func(c *Conn) {
			chunk := make([]byte, 64<<10)
			for i := 0; i < 1<<14; i++ { // 1 GiB at most
				if err := c.Write(chunk); err != nil {
					result <- err
					return
				}
			}
			result <- nil
		},
		OnClose: rec.onClose,
	})
	dial(t, s) // never reads
	if err := <-result; err != ErrWriteQueueFull {
		t.Fatalf("Write: %v, want ErrWriteQueueFull", err)
	}
	if err := rec.next(t); err != ErrWriteQueueFull {
		t.Fatalf("OnClose(%v), want ErrWriteQueueFull", err)
	}
}

func TestCloseFromServer(t *testing.T) {
	rec := newClosed(1)
	s := listen(t, Config{
		OnData: func(c *Conn, b []byte) {
			c.Write([]byte("bye"))
			c.Close()
			if err := c.Write([]byte("late")); err != ErrClosed {
				t.Errorf("Write after Close: %v", err)
			}
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s)
	c.Write([]byte("x"))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := rec.next(t); err != nil {
		t.Fatalf("OnClose(%v), want nil", err)
	}
}

func TestCloseFromClient(t *testing.T) {
	rec := newClosed(1)
	opened := make(chan struct{})
	s := listen(t, Config{OnOpen: func(*Conn) { close(opened) }, OnClose: rec.onClose})
	c := dial(t, s)
	<-opened
	c.Close()
	if err := rec.next(t); err != io.EOF {
		t.Fatalf("OnClose(%v), want io.EOF", err)
	}
}

// TestCloseFromOtherGoroutine closes a connection from outside its loop
// while a large write is queued: the queue is sent first.
func TestCloseFromOtherGoroutine(t *testing.T) {
	msg := pattern(8<<20, 5)
	rec := newClosed(1)
	s := listen(t, Config{
		MaxWriteQueue: 16 << 20,
		OnOpen: func(c *Conn) {
			go func() {
				c.Write(msg)
				c.Close()
			}()
		},
		OnClose: rec.onClose,
	})
	c := dial(t, s)
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes (want %d), %v", len(got), len(msg), err)
	}
	if err := rec.next(t); err != nil {
		t.Fatalf("OnClose(%v), want nil", err)
	}
}

// TestWritesFromManyGoroutines writes to one connection from several
// goroutines at once: every record arrives whole.
func TestWritesFromManyGoroutines(t *testing.T) {
	const writers, records = 4, 2000
	record := pattern(100, 0)
	s := listen(t, Config{
		OnOpen: func(c *Conn) {
			for w := 0; w < writers; w++ {
				go func() {
					for i := 0; i < records; i++ {
						if err := c.Write(record); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
		},
	})
	c := dial(t, s)
	got := make([]byte, len(record))
	for i := 0; i < writers*records; i++ {
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, record) {
			t.Fatalf("record %d is torn", i)
		}
	}
}

// TestTimeout drops a silent connection (a handshake that never comes),
// keeps one whose timeout was cancelled, and drops one whose timeout was
// moved later.
func TestTimeout(t *testing.T) {
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	s := listen(t, Config{
		TimerResolution: 20 * time.Millisecond,
		OnOpen:          func(c *Conn) { c.SetTimeout(300 * time.Millisecond) },
		OnData: func(c *Conn, b []byte) {
			switch string(b) {
			case "cancel":
				c.SetTimeout(0)
				c.SetContext("cancel")
			case "later":
				c.SetTimeout(600 * time.Millisecond)
				c.SetContext("later")
			default:
				c.Write(b)
			}
			c.Write([]byte("ok"))
		},
		OnClose: func(c *Conn, err error) {
			name, _ := c.Context().(string)
			results <- result{name, err}
		},
	})
	kept := dial(t, s)
	kept.Write([]byte("cancel"))
	ok := make([]byte, 2)
	if _, err := io.ReadFull(kept, ok); err != nil {
		t.Fatal(err)
	}
	later := dial(t, s)
	later.Write([]byte("later"))
	if _, err := io.ReadFull(later, ok); err != nil {
		t.Fatal(err)
	}
	silent := dial(t, s)
	for _, c := range []net.Conn{silent, later} {
		if n, err := c.Read(ok); err != io.EOF {
			t.Fatalf("read %d, %v: want io.EOF", n, err)
		}
	}
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err != ErrTimeout || r.name == "cancel" {
			t.Fatalf("OnClose(%v) for %q", r.err, r.name)
		}
	}
	// The cancelled connection's deadline was before the silent one's,
	// which has passed: it is still open.
	kept.Write([]byte("ping"))
	got := make([]byte, 6)
	if _, err := io.ReadFull(kept, got); err != nil || string(got) != "pingok" {
		t.Fatalf("after the others timed out: %q, %v", got, err)
	}
}

func TestServerClose(t *testing.T) {
	const conns = 10
	rec := newClosed(conns)
	opened := make(chan struct{}, conns)
	s := listen(t, Config{OnOpen: func(*Conn) { opened <- struct{}{} }, OnClose: rec.onClose})
	var cs []net.Conn
	for i := 0; i < conns; i++ {
		cs = append(cs, dial(t, s))
		<-opened
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < conns; i++ {
		if err := rec.next(t); err != ErrServerClosed {
			t.Fatalf("OnClose(%v), want ErrServerClosed", err)
		}
	}
	for _, c := range cs {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("client still connected")
		}
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), wait); err == nil {
		t.Fatal("still accepting")
	}
}

// TestBlockingWait runs the tests again with loops that block in
// epoll_wait instead of parking in the runtime's poller.
func TestBlockingWait(t *testing.T) {
	if !hasWriteQueue {
		t.Skip("the portable fallback has no loops")
	}
	blockingWait = true
	defer func() { blockingWait = false }()
	for name, f := range map[string]func(*testing.T){
		"Echo":            TestEchoManyConnections,
		"SlowReader":      TestSlowReader,
		"WriteQueueFull":  TestWriteQueueFull,
		"CloseFromServer": TestCloseFromServer,
		"CloseFromClient": TestCloseFromClient,
		"CloseFromOther":  TestCloseFromOtherGoroutine,
		"ManyWriters":     TestWritesFromManyGoroutines,
		"Timeout":         TestTimeout,
		"ServerClose":     TestServerClose,
	} {
		t.Run(name, f)
	}
}
