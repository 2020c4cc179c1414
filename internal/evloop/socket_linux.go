//go:build linux && !evloop_portable

package evloop

import (
	"net"
	"os"
	"syscall"
	"unsafe"
)

// listenTCP makes a non-blocking, close-on-exec listening socket for
// addr ("host:port").
func listenTCP(addr string) (int, net.Addr, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, err
	}
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if ip4 := ta.IP.To4(); ip4 != nil || ta.IP == nil {
		s := &syscall.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		family = syscall.AF_INET6
		s := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		sa = s
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, net.Addr, error) {
		syscall.Close(fd)
		return -1, nil, os.NewSyscallError(call, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// syscall.SOMAXCONN is 128, too few for a burst of connections; the
	// kernel caps the backlog at net.core.somaxconn.
	if err := syscall.Listen(fd, 65535); err != nil {
		return fail("listen", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, sockaddrToTCP(got), nil
}

// dupListener duplicates ln's socket as a non-blocking, close-on-exec
// descriptor of our own.
func dupListener(ln *net.TCPListener) (int, error) {
	raw, err := ln.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = raw.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl", e)
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, err
	}
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return nfd, nil
}

func sockaddrToTCP(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	}
	return nil
}

// accept4 accepts a connection without asking for its address (which the
// syscall package would allocate for).
func accept4(fd int) (int, error) {
	for {
		nfd, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(fd), 0, 0, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(nfd), nil
	}
}

// eventfd makes a non-blocking, close-on-exec eventfd (the syscall
// package has no wrapper).
func eventfd() (int, error) {
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return -1, os.NewSyscallError("eventfd2", errno)
	}
	return int(fd), nil
}

var one = [8]byte{1}

// signal adds one to the eventfd's counter, which makes it readable.
func signal(fd int) {
	syscall.Write(fd, one[:])
}

// drainEventfd resets the counter.
func drainEventfd(fd int) {
	var b [8]byte
	syscall.Read(fd, b[:])
}

// The sockets are non-blocking, so their reads and writes are made as
// raw system calls: the runtime need not prepare for the thread to block.

// write writes b to fd, retrying on EINTR; EAGAIN is (0, nil).
func write(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return writeCall(syscall.SYS_WRITE, fd, unsafe.Pointer(&b[0]), len(b))
}

// writeCall makes a write system call (write, or writev with p an iovec
// array) on a non-blocking socket: retried after EINTR, and EAGAIN (the
// socket takes nothing now) is 0 bytes, not an error. p stays an
// unsafe.Pointer up to the call, so that memory on a moving stack (an
// iovec array on writev's) is followed.
func writeCall(trap uintptr, fd int, p unsafe.Pointer, n int) (int, error) {
	for {
		r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(n))
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		}
		return 0, errno
	}
}

// read reads into b from fd; errors as syscall.Read's.
func read(fd int, b []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// epollWaitNow collects the ready events of the epoll set epfd without
// waiting (epoll_pwait, which every architecture has).
func epollWaitNow(epfd int, events []syscall.EpollEvent) int {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}
