package websocket

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Read buffers. A connection waiting for its peer should hold as little
// memory as possible: most connections of a busy server are idle at any
// moment. Where the platform lets the library wait for readability without
// a buffer (a TCP connection on Unix, see readbuf_unix.go), the read buffer
// comes from a pool when bytes arrive and goes back once they are parsed.
// Elsewhere (TLS, pipes, other platforms) each connection keeps its own.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, pooledReadBufferSize); return &b }}

// readBufHook, when set (by tests), is told of every pooled read buffer
// taken (+1) and given back (-1).
var readBufHook atomic.Pointer[func(delta int)]

// idleReader reads a connection without holding a buffer while it waits.
type idleReader struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // c.rawRead, bound once so that reads do not allocate
	n   int
	err error
}

// setupReadBuffer prepares reading on nc, starting with the bytes that
// arrived behind the handshake.
func (c *Conn) setupReadBuffer(nc net.Conn, buffered []byte) {
	if tc, ok := nc.(*net.TCPConn); ok && idleReadSupported {
		if raw, err := tc.SyscallConn(); err == nil {
			c.idle = &idleReader{raw: raw}
			c.idle.fn = c.rawRead
		}
	}
	if loopNetConn(nc) != nil && c.eventing.Load() {
		return // the loop pushes the bytes; the Conn reads nothing itself (loopconn.go)
	}
	if c.idle == nil || len(buffered) > 0 {
		size := readBufferSize
		if c.idle != nil {
			size = pooledReadBufferSize
		}
		if len(buffered) > size {
			c.rbuf = make([]byte, len(buffered))
		} else {
			c.takeReadBuf()
		}
		c.rend = copy(c.rbuf, buffered)
	}
}

// takeReadBuf gets a read buffer: a pooled one for an idle reader, an owned
// one otherwise.
func (c *Conn) takeReadBuf() {
	if c.idle == nil {
		c.rbuf = make([]byte, readBufferSize)
		return
	}
	c.rbufp = readBufPool.Get().(*[]byte)
	c.rbuf = *c.rbufp
	if h := readBufHook.Load(); h != nil {
		(*h)(+1)
	}
}

// releaseReadBuf gives a pooled read buffer back; the caller has parsed all
// of it and no event refers to it any more.
func (c *Conn) releaseReadBuf() {
	if c.rbufp != nil {
		readBufPool.Put(c.rbufp)
		c.rbufp, c.rbuf = nil, nil
		if h := readBufHook.Load(); h != nil {
			(*h)(-1)
		}
	}
}

// readNet reads from the network into the read buffer (which the caller
// has fully consumed).
func (c *Conn) readNet() (int, error) {
	if c.idle == nil {
		return c.netConn.Read(c.rbuf)
	}
	c.releaseReadBuf()
	c.idle.n, c.idle.err = 0, nil
	if err := c.idle.raw.Read(c.idle.fn); err != nil {
		return 0, err
	}
	return c.idle.n, c.idle.err
}
