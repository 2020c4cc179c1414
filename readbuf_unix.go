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
	if c.rbufp == nil {
		c.takeReadBuf()
	}
	for {
		n, err := syscall.Read(int(fd), c.rbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.releaseReadBuf()
			return false
		case err != nil:
			c.idle.err = os.NewSyscallError("read", err)
		case n == 0:
			c.idle.err = io.EOF
		default:
			c.idle.n = n
		}
		return true
	}
}
