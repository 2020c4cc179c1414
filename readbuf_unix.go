//go:build unix

package websocket

import (
	"io"
	"os"
	"syscall"
)

const idleReadSupported = true

// rawRead is called by the runtime's poller with the socket, first at once
// and then each time it becomes readable. Only when a non-blocking read
// finds bytes does it take a buffer; when there is nothing to read it gives
// the buffer back and returns false, and the goroutine parks holding none.
func (c *Conn) rawRead(fd uintptr) bool {
	if c.rd.rbufp == nil {
		c.takeReadBuf()
	}
	for {
		n, err := syscall.Read(int(fd), c.rd.rbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.releaseReadBuf()
			return false
		case err != nil:
			c.rd.idle.err = os.NewSyscallError("read", err)
		case n == 0:
			c.rd.idle.err = io.EOF
		default:
			c.rd.idle.n = n
		}
		return true
	}
}
