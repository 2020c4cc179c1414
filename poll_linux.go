//go:build linux

package websocket

import (
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// pollSupported is true: Linux has epoll.
const pollSupported = true

// poller holds the process's polled connections (see poll.go) and the epoll
// set of the parked ones. A parked socket is armed level-triggered and
// one-shot: if bytes are already there when it is armed the event fires at
// once, so none is missed, and after firing it stays quiet until the loop
// parks again, so a running loop gets no events from it.
//
// The poller does not block a thread in epoll_wait. The epoll descriptor is
// itself registered with the Go runtime's network poller (an epoll set is
// readable when it has events), so the poller's goroutine parks like any
// goroutine waiting for a socket and collects events with a zero timeout
// when woken.
type poller struct {
	epfd int
	file *os.File // owns epfd
	raw  syscall.RawConn

	mu    sync.Mutex
	conns map[int32]*Conn // polled connections by socket descriptor

	// Used only by the poller's goroutine.
	events  [128]syscall.EpollEvent
	woken   []*Conn
	harvest func(fd uintptr) bool // p.collect, bound once
}

var (
	pollerOnce sync.Once
	thePoller  *poller
	pollerErr  error
)

// sharedPoller returns the process's poller, starting it on first use.
func sharedPoller() (*poller, error) {
	pollerOnce.Do(func() { thePoller, pollerErr = newPoller() })
	return thePoller, pollerErr
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's
	// poller.
	f := os.NewFile(uintptr(fd), "websocket-poller")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{epfd: fd, file: f, raw: raw, conns: make(map[int32]*Conn)}
	p.harvest = p.collect
	go p.run()
	go p.sweepIdle()
	return p, nil
}

// add registers c, whose socket is fd. The socket joins the epoll set only
// when the loop first parks.
func (p *poller) add(c *Conn, fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[int32(fd)] = c
	c.pollReg().fd = int32(fd)
}

// remove unregisters c; it may be called more than once.
func (p *poller) remove(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd := c.pollReg().fd
	if p.conns[fd] != c {
		return
	}
	delete(p.conns, fd)
	if c.pollReg().inSet {
		var ev syscall.EpollEvent // ignored, but kernels before 2.6.9 want one
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), &ev)
		c.pollReg().inSet = false
	}
}

// arm asks for one event when c's socket is readable (or hung up). It
// reports false if c is no longer registered.
func (p *poller) arm(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd := c.pollReg().fd
	if p.conns[fd] != c {
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
	op := syscall.EPOLL_CTL_MOD
	if !c.pollReg().inSet {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(p.epfd, op, int(fd), &ev); err != nil {
		slog.Warn("websocket: cannot park an idle connection", "err", os.NewSyscallError("epoll_ctl", err))
		return false
	}
	c.pollReg().inSet = true
	return true
}

// run is the poller's goroutine: it lives as long as the process.
func (p *poller) run() {
	for {
		if err := p.raw.Read(p.harvest); err != nil {
			// Only closing the descriptor can cause this, and nothing does.
			slog.Error("websocket: poller stopped", "err", err)
			return
		}
	}
}

// collect is called with the epoll descriptor when the runtime's poller
// says it has events. It wakes the loop of every socket that fired and
// reports whether events may be left (the caller then collects again at
// once) or, false, that the set is drained and the goroutine can wait.
func (p *poller) collect(fd uintptr) bool {
	n, err := syscall.EpollWait(int(fd), p.events[:], 0)
	if err == syscall.EINTR {
		return true
	}
	if n <= 0 {
		return false
	}
	p.mu.Lock()
	for _, ev := range p.events[:n] {
		if c := p.conns[ev.Fd]; c != nil {
			p.woken = append(p.woken, c)
		}
	}
	p.mu.Unlock()
	for i, c := range p.woken {
		c.wakeLoop()
		p.woken[i] = nil
	}
	p.woken = p.woken[:0]
	return n == len(p.events)
}

// sweepIdle is the idle sweep's goroutine (see poll.go): it lives as long
// as the process, and costs one pass over the polled connections per sweep.
func (p *poller) sweepIdle() {
	var batch []*Conn
	for {
		time.Sleep(time.Duration(idleSweep.Load()))
		p.mu.Lock()
		for _, c := range p.conns {
			// A parked loop has no wait to interrupt: skipping it keeps a
			// sweep over mostly idle connections cheap.
			if c.pollReg().state.Load() == loopRunning {
				batch = append(batch, c)
			}
		}
		p.mu.Unlock()
		// Outside the lock: moving a deadline takes the runtime's locks.
		for i, c := range batch {
			c.sweep()
			batch[i] = nil
		}
		batch = batch[:0]
	}
}

// polledConns reports how many connections the poller holds, so that tests
// can check that every connection left it.
func polledConns() int {
	p, err := sharedPoller()
	if err != nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
