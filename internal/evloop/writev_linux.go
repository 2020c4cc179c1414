//go:build linux && !evloop_portable

package evloop

import (
	"os"
	"syscall"
	"unsafe"
)

// Writev sends the concatenation of bufs as Write would, with one writev
// system call when nothing is queued: several frames (a header and its
// payload, or a writer's backlog of messages) cost one call, not one each.
// bufs is not kept or changed.
func (c *Conn) Writev(bufs [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || c.flags&flagClosing != 0 {
		return ErrClosed
	}
	var first []byte
	if c.out == nil && c.flags&flagGathered == 0 { // else bytes wait in the loop's batch: these go after them
		n, err := writev(int(c.fd), bufs)
		if err != nil {
			c.failLocked(reasonWrite, err)
			return os.NewSyscallError("writev", err)
		}
		for len(bufs) > 0 && n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil
		}
		first, bufs = bufs[0][n:], bufs[1:]
	}
	return c.enqueueLocked(first, bufs)
}

// maxIovecs is the most buffers one writev takes (the kernel's IOV_MAX);
// the rest are queued.
const maxIovecs = 1024

// writev writes bufs with one system call and returns how many bytes the
// socket took; EAGAIN is not an error (0 bytes).
func writev(fd int, bufs [][]byte) (int, error) {
	var stack [16]syscall.Iovec
	iov := stack[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	return writeCall(syscall.SYS_WRITEV, fd, unsafe.Pointer(&iov[0]), len(iov))
}
