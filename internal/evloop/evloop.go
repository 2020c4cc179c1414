// Package evloop is the engine of the event-loop server backend: it owns a
// TCP listener and runs every accepted connection on a small fixed set of
// event loops, with no goroutine per connection, calling OnOpen, OnData
// and OnClose as bytes and hang-ups arrive. It knows nothing of HTTP or
// WebSocket: the backend built on it feeds OnData's bytes to the handshake
// parser (internal/upgrade) and then to the protocol session, and sends
// what they produce with Conn.Write.
//
// Why: a goroutine per connection costs a stack (8 KiB when it has grown
// a little, and a read buffer while it waits) and, with one message in
// flight, a goroutine wake-up plus a read and a write system call per
// message. A loop that waits on epoll serves every ready socket of a
// wake-up in one pass, reads them all into one buffer that belongs to the
// loop, and holds an idle connection in a small struct (see
// ConnStructSize) plus the kernel's socket.
//
// How (Linux): Config.Loops goroutines each wait on their own epoll set
// (parked in the runtime's poller, or blocked in epoll_wait with
// Config.BlockingWait); one more goroutine accepts (accept4, non-blocking,
// close-on-exec) and deals the connections to the loops round-robin. The
// sets are level-triggered: a loop reads a socket once per wake-up (into
// the loop's buffer, so one connection cannot starve the others of its
// loop, and the bytes it leaves are reported again at the next wait
// without an extra read that would only return EAGAIN, which edge
// triggering needs to re-arm), and it asks for EPOLLOUT only while a
// connection has bytes queued, which is rare. Conn.Write may be called
// from any goroutine: it writes at once when nothing is queued and copies
// the rest into the connection's queue, bounded by Config.MaxWriteQueue;
// the loop sends the queue when the socket becomes writable and frees it
// when it is empty. Each loop has a timer wheel for Conn.SetTimeout (the
// handshake and idle timeouts).
//
// Writes made while a loop is awake (from its callbacks, handlers run on
// the loop, or any goroutine at that moment) to its connections are
// gathered and sent together when the wake-up's work is done: one
// io_uring_enter with an IORING_OP_SEND per connection, instead of a
// write system call each (batch_linux.go, iouring_linux.go). A broadcast
// of 128 B to 10,000 loopback connections from the loop then makes 10
// system calls instead of 10,000 and costs the server 10 to 25% less CPU
// (BenchmarkFanout, docs/PERFORMANCE.md); not more, because the cost is
// the kernel's TCP path, which on loopback also runs the receiving side,
// not the system call. Without io_uring (a kernel before
// 5.6, io_uring disabled, EVLOOP_IOURING=0) every Write is a write.
//
// Elsewhere, or with the build tag evloop_portable, a fallback with the
// same API runs one goroutine per connection over net.Conn, so the
// backend builds and works on every platform.
//
// The callbacks of a connection are never called concurrently, and those
// of all connections of a loop run on that loop: a callback that blocks
// stalls its loop, so the backend hands blocking work to other goroutines.
package evloop

import (
	"errors"
	"os"
	"strconv"
	"time"
)

// Config configures a Server. OnData is required.
type Config struct {
	// Loops is the number of event loops; 0 means runtime.GOMAXPROCS(0).
	Loops int

	// BlockingWait makes each loop block its thread in epoll_wait. By
	// default an idle loop parks in the runtime's network poller instead
	// (its epoll set is registered there) and collects events with a zero
	// timeout when woken, which costs less CPU per message on few cores
	// (see BenchmarkEchoCPU).
	BlockingWait bool

	// LockOSThread locks each loop goroutine to its thread; it matters
	// only with BlockingWait (see BenchmarkEchoCPU).
	LockOSThread bool

	// ReadBufferSize is the size of each loop's read buffer, the most
	// that one OnData call gets. 0 means 64 KiB.
	ReadBufferSize int

	// MaxWriteQueue bounds the bytes a connection may have queued (written
	// but not yet taken by the kernel). A Write past it fails with
	// ErrWriteQueueFull and closes the connection. 0 means 4 MiB.
	MaxWriteQueue int

	// TimerResolution is the granularity of SetTimeout; 0 means 100ms.
	TimerResolution time.Duration

	// CloseTimeout bounds a graceful Close: sending what is queued, then
	// waiting for the peer's end of the stream after ours (see Conn.Close).
	// 0 means 5s.
	CloseTimeout time.Duration

	// OnOpen, if set, is called on the connection's loop when it is
	// accepted, before any OnData.
	OnOpen func(c *Conn)

	// OnData is called on the connection's loop with bytes read from it.
	// b belongs to the loop and is valid only during the call.
	OnData func(c *Conn, b []byte)

	// OnClose, if set, is called on the connection's loop once, when it
	// has been closed: err is nil after Close, io.EOF when the peer
	// closed, ErrTimeout, ErrWriteQueueFull, ErrServerClosed, or the
	// system call error that ended it.
	OnClose func(c *Conn, err error)
}

// Defaults of Config.
const (
	DefaultReadBufferSize  = 64 << 10
	DefaultMaxWriteQueue   = 4 << 20
	DefaultTimerResolution = 100 * time.Millisecond
	DefaultCloseTimeout    = 5 * time.Second
)

func (c *Config) setDefaults() {
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = DefaultReadBufferSize
	}
	if c.MaxWriteQueue <= 0 {
		c.MaxWriteQueue = DefaultMaxWriteQueue
	}
	if c.TimerResolution <= 0 {
		c.TimerResolution = DefaultTimerResolution
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
}

// Errors given to OnClose and returned by Write.
var (
	// ErrClosed is returned by Write on a connection that is closed or
	// closing.
	ErrClosed = errors.New("evloop: connection closed")
	// ErrWriteQueueFull ends a connection whose queued bytes would pass
	// Config.MaxWriteQueue: its peer does not read fast enough.
	ErrWriteQueueFull = errors.New("evloop: write queue full")
	// ErrTimeout ends a connection whose SetTimeout expired.
	ErrTimeout = errors.New("evloop: timeout")
	// ErrServerClosed ends the connections still open when the Server is
	// closed.
	ErrServerClosed = errors.New("evloop: server closed")
)

// envInt reads a number from the environment, or gives def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
