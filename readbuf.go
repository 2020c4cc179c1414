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

// pullReader is the reading state of a connection that reads from the
// network itself: every transport but the event-loop backend's event API,
// to which the loop pushes the bytes (loopconn.go), and whose connections
// therefore do not carry it.
type pullReader struct {
	rbuf    []byte
	rbufp   *[]byte     // rbuf's pool slot, when it is borrowed
	idle    *idleReader // set when reads can wait without a buffer
	rpos    int
	rend    int
	inMsg   bool           // a data message was partly returned by NextReader
	msgRead *messageReader // NextReader's, made on first use
}

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
	if loopNetConn(nc) != nil && c.eventing.Load() {
		return // the loop pushes the bytes; the Conn reads nothing itself (loopconn.go)
	}
	c.rd = new(pullReader)
	if tc, ok := nc.(*net.TCPConn); ok && idleReadSupported {
		if raw, err := tc.SyscallConn(); err == nil {
			c.rd.idle = &idleReader{raw: raw}
			c.rd.idle.fn = c.rawRead
		}
	}
	if c.rd.idle == nil || len(buffered) > 0 {
		size := readBufferSize
		if c.rd.idle != nil {
			size = pooledReadBufferSize
		}
		if len(buffered) > size {
			c.rd.rbuf = make([]byte, len(buffered))
		} else {
			c.takeReadBuf()
		}
		c.rd.rend = copy(c.rd.rbuf, buffered)
	}
}

// takeReadBuf gets a read buffer: a pooled one for an idle reader, an owned
// one otherwise.
func (c *Conn) takeReadBuf() {
	if c.rd.idle == nil {
		c.rd.rbuf = make([]byte, readBufferSize)
		return
	}
	c.rd.rbufp = readBufPool.Get().(*[]byte)
	c.rd.rbuf = *c.rd.rbufp
	if h := readBufHook.Load(); h != nil {
		(*h)(+1)
	}
}

// releaseReadBuf gives a pooled read buffer back; the caller has parsed all
// of it and no event refers to it any more.
func (c *Conn) releaseReadBuf() {
	if c.rd != nil && c.rd.rbufp != nil {
		readBufPool.Put(c.rd.rbufp)
		c.rd.rbufp, c.rd.rbuf = nil, nil
		if h := readBufHook.Load(); h != nil {
			(*h)(-1)
		}
	}
}

// readNet reads from the network into the read buffer (which the caller
// has fully consumed).
func (c *Conn) readNet() (int, error) {
	if c.rd.idle == nil {
		return c.netConn.Read(c.rd.rbuf)
	}
	c.releaseReadBuf()
	c.rd.idle.n, c.rd.idle.err = 0, nil
	if err := c.rd.idle.raw.Read(c.rd.idle.fn); err != nil {
		return 0, err
	}
	return c.rd.idle.n, c.rd.idle.err
}
