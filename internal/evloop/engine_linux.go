//go:build linux && !evloop_portable

package evloop

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server is a listener and its event loops.
type Server struct {
	cfg    Config
	addr   net.Addr
	lfile  *os.File // owns the listening socket
	loops  []*loop
	next   int // round-robin position, used by the acceptor only
	conns  atomic.Int64
	wg     sync.WaitGroup // the loops
	acc    chan struct{}  // closed when the acceptor has returned
	once   sync.Once
	lnOnce sync.Once
}

// Listen starts a server on addr ("host:port"; port 0 picks one) that
// runs its connections on cfg.Loops event loops.
func Listen(addr string, cfg Config) (*Server, error) {
	lfd, laddr, err := listenTCP(addr)
	if err != nil {
		return nil, err
	}
	return serveFD(lfd, laddr, cfg)
}

// ServeListener starts a server on an open TCP listener, which it takes
// over (a systemd socket, a listener made by the caller to know the port
// before serving): its socket is duplicated and ln is closed.
func ServeListener(ln net.Listener, cfg Config) (*Server, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("evloop: cannot serve on a %T: a *net.TCPListener is needed", ln)
	}
	lfd, err := dupListener(tl)
	if err != nil {
		return nil, err
	}
	laddr := tl.Addr()
	tl.Close() // the duplicate keeps the socket listening
	return serveFD(lfd, laddr, cfg)
}

// serveFD runs a server on the listening socket lfd.
func serveFD(lfd int, laddr net.Addr, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	s := &Server{cfg: cfg, addr: laddr}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(s)
		if err != nil {
			for _, l := range s.loops {
				l.closeFds()
			}
			syscall.Close(lfd)
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	// The listening socket joins the runtime's poller: the acceptor
	// goroutine parks there rather than holding a thread.
	s.lfile = os.NewFile(uintptr(lfd), "evloop-listener")
	raw, err := s.lfile.SyscallConn()
	if err != nil {
		s.lfile.Close()
		for _, l := range s.loops {
			l.closeFds()
		}
		return nil, err
	}
	for _, l := range s.loops {
		s.wg.Add(1)
		go l.run()
	}
	s.acc = make(chan struct{})
	go s.acceptLoop(raw)
	return s, nil
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.addr }

// NumConns returns the number of open connections.
func (s *Server) NumConns() int { return int(s.conns.Load()) }

// Close stops accepting, closes every open connection (OnClose gets
// ErrServerClosed) and returns when the loops have ended. It must not be
// called from a callback, which runs on a loop it would wait for.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.CloseListener()
		for _, l := range s.loops {
			l.mu.Lock()
			l.stopping = true
			l.mu.Unlock()
			signal(l.wakefd)
		}
	})
	s.wg.Wait()
	return err
}

// CloseListener stops accepting connections; those open stay open. Close
// calls it too.
func (s *Server) CloseListener() error {
	var err error
	s.lnOnce.Do(func() {
		err = s.lfile.Close()
		<-s.acc // no more sockets are handed to the loops
	})
	return err
}

func (s *Server) acceptLoop(raw syscall.RawConn) {
	defer close(s.acc)
	// accept never returns true: RawConn.Read calls it again whenever the
	// listener is readable, until the listener is closed.
	accept := func(fd uintptr) bool {
		for {
			nfd, err := accept4(int(fd))
			switch err {
			case nil:
				syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
				l := s.loops[s.next]
				s.next = (s.next + 1) % len(s.loops)
				l.add(nfd)
			case syscall.EAGAIN:
				return false // RawConn.Read parks until the next connection
			case syscall.ECONNABORTED:
			case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
				// Out of descriptors or memory: the pending connection
				// stays in the backlog; try again when some are freed.
				slog.Warn("evloop: cannot accept", "err", os.NewSyscallError("accept4", err))
				time.Sleep(10 * time.Millisecond)
			default:
				slog.Error("evloop: accept failed", "err", os.NewSyscallError("accept4", err))
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	if err := raw.Read(accept); err != nil {
		return // the listener was closed
	}
}

// Conn flags.
const (
	flagClosing  = 1 << iota // Close was called or the connection failed; no more writes
	flagOutArmed             // EPOLLOUT is in the connection's event mask
	flagNotified             // the connection is on its loop's task list
	flagPaused               // PauseReading: EPOLLIN is out of the event mask
	flagLinger               // our end of the stream is shut: reads are drained and dropped until the peer's end
	flagGathered             // bytes of the connection are in its loop's batch (batch_linux.go)
)

// Close reasons, kept as a byte to keep Conn small.
const (
	reasonNone = iota
	reasonLocal
	reasonQueueFull
	reasonTimeout
	reasonServer
	reasonWrite
	reasonAbort
)

// Conn is a connection of a Server. Its methods may be called from any
// goroutine, except SetTimeout (the loop's only).
type Conn struct {
	mu     sync.Mutex // guards fd, flags, reason, errno and out against Write
	fd     int32      // -1 once closed
	slot   int32      // index in loop.conns, and the epoll data
	gen    uint32     // distinguishes the slot's successive owners
	flags  uint8
	reason uint8
	errno  uint16 // the write error that ended the connection, with reasonWrite

	// Used by the loop only: in ticks of its wheel.
	deadline int32 // 0: none
	wheelAt  int32 // the tick of the wheel slot the connection is in; 0: none

	loop *loop
	out  *outQueue // nil unless bytes wait
	ctx  any
}

// outQueue holds the bytes the kernel has not taken yet.
type outQueue struct {
	buf     []byte
	off     int
	flushed chan struct{} // made by WaitFlushed; closed when the queue is sent or dropped
}

// release ends the queue's life: whoever waits for it to be sent is told.
func (q *outQueue) release() {
	if q != nil && q.flushed != nil {
		close(q.flushed)
	}
}

// SetContext attaches a value to the connection (the backend's session).
func (c *Conn) SetContext(v any) { c.ctx = v }

// Context returns the value given to SetContext.
func (c *Conn) Context() any { return c.ctx }

// RemoteAddr returns the peer's address, asked of the kernel (the
// connection keeps none), or nil once closed.
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	sa, err := syscall.Getpeername(int(c.fd))
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

// LocalAddr returns the local address, asked of the kernel, or nil once
// closed.
func (c *Conn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	sa, err := syscall.Getsockname(int(c.fd))
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

// maskLocked is the connection's epoll event mask for its flags. A paused
// connection asks for nothing but EPOLLOUT (when bytes are queued): the
// kernel still reports a hang-up or an error, and serve reads then, so
// that a paused connection that went away is not reported for ever.
func (c *Conn) maskLocked() uint32 {
	var m uint32
	if c.flags&flagPaused == 0 || c.flags&flagLinger != 0 {
		m = syscall.EPOLLIN | syscall.EPOLLRDHUP
	}
	if c.flags&flagOutArmed != 0 {
		m |= syscall.EPOLLOUT
	}
	return m
}

// PauseReading stops reading the connection until ResumeReading: the
// kernel's receive buffer fills and TCP flow control slows the peer down.
// It is how a consumer that cannot keep up pushes back. An OnData call may
// still follow with bytes read before the pause took effect, and a peer
// that hangs up is still noticed. Any goroutine may call it.
func (c *Conn) PauseReading() { c.setPaused(true) }

// ResumeReading undoes PauseReading. Any goroutine may call it.
func (c *Conn) ResumeReading() { c.setPaused(false) }

func (c *Conn) setPaused(paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || (c.flags&flagPaused != 0) == paused {
		return
	}
	c.flags ^= flagPaused
	if c.flags&flagClosing == 0 {
		c.loop.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
	}
}

// Write sends b, or queues what the socket does not take at once (b is
// not kept). It fails with ErrClosed on a closing connection, with
// ErrWriteQueueFull when the queue would pass Config.MaxWriteQueue (and
// then closes the connection), or with the system call's error (likewise).
func (c *Conn) Write(b []byte) error {
	c.mu.Lock()
	if c.fd < 0 || c.flags&flagClosing != 0 {
		c.mu.Unlock()
		return ErrClosed
	}
	if gathered, err := c.loop.gatherLocked(c, b); gathered {
		c.mu.Unlock()
		return err
	}
	if c.out == nil && c.flags&flagGathered == 0 {
		n, err := write(int(c.fd), b)
		if err != nil {
			c.failLocked(reasonWrite, err)
			c.mu.Unlock()
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
		if len(b) == 0 {
			c.mu.Unlock()
			return nil
		}
	}
	err := c.enqueueLocked(b, nil)
	c.mu.Unlock()
	return err
}

// enqueueLocked queues first and then rest, the bytes the socket did not
// take, to be sent when it becomes writable; past Config.MaxWriteQueue the
// connection fails instead. c.mu is held.
func (c *Conn) enqueueLocked(first []byte, rest [][]byte) error {
	if c.out == nil {
		c.out = &outQueue{}
	}
	q := c.out
	size := len(first)
	for _, b := range rest {
		size += len(b)
	}
	// One write may be larger than the bound when nothing waits before
	// it: a message the peer reads promptly is never refused for its
	// size. What the bound stops is a backlog that keeps growing.
	if queued := len(q.buf) - q.off; queued > 0 && queued+size > c.loop.s.cfg.MaxWriteQueue {
		c.failLocked(reasonQueueFull, nil)
		return ErrWriteQueueFull
	}
	if q.off > 0 && q.off >= len(q.buf)/2 {
		q.buf = q.buf[:copy(q.buf, q.buf[q.off:])]
		q.off = 0
	}
	q.buf = append(q.buf, first...)
	for _, b := range rest {
		q.buf = append(q.buf, b...)
	}
	if c.flags&flagOutArmed == 0 {
		c.flags |= flagOutArmed
		c.loop.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
	}
	return nil
}

// WaitFlushed waits until what is queued has been handed to the kernel
// (or the connection has ended), at most until deadline (zero: none), when
// it returns os.ErrDeadlineExceeded. It gives a writer that may block (the
// blocking API, off the loop) the backpressure of a blocking socket. The
// loop must not call it.
func (c *Conn) WaitFlushed(deadline time.Time) error {
	c.mu.Lock()
	q := c.out
	if q == nil {
		c.mu.Unlock()
		return nil
	}
	if q.flushed == nil {
		q.flushed = make(chan struct{})
	}
	ch := q.flushed
	c.mu.Unlock()
	if deadline.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// failLocked marks c closing for reason and has its loop close it.
func (c *Conn) failLocked(reason uint8, err error) {
	if c.flags&flagClosing != 0 {
		return
	}
	c.flags |= flagClosing
	c.reason = reason
	if errno, ok := err.(syscall.Errno); ok {
		c.errno = uint16(errno)
	}
	c.notifyLocked()
}

// notifyLocked puts c on its loop's task list.
func (c *Conn) notifyLocked() {
	if c.flags&flagNotified != 0 {
		return
	}
	c.flags |= flagNotified
	c.loop.notify(c)
}

// Close closes the connection gracefully: the bytes already queued are
// sent, then our end of the stream is shut (FIN) and what the peer still
// sends is read and dropped until it ends its side too, so that the kernel
// does not answer unread bytes with a reset that could destroy, at the
// peer, the last bytes we sent (a WebSocket close frame, an HTTP error).
// Config.CloseTimeout bounds the whole: a peer that stops reading, or
// never ends its side, is then cut off. OnClose follows with a nil error.
// No OnData call starts after Close has returned. Writes fail with
// ErrClosed from then on. It may be called more than once, from any
// goroutine.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || c.flags&flagClosing != 0 {
		return nil
	}
	c.flags |= flagClosing
	c.reason = reasonLocal
	c.notifyLocked()
	return nil
}

// Abort closes the connection at once: what is queued is dropped and the
// peer's bytes are not waited for. OnClose follows with a nil error. It is
// for a connection that is failing anyway (the peer vanished, a timeout),
// where a graceful Close would only hold it longer. Any goroutine may call
// it, after Close too.
func (c *Conn) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || c.reason == reasonAbort {
		return
	}
	if c.flags&flagClosing != 0 && c.reason != reasonLocal {
		return // failing already: it closes at once
	}
	c.flags |= flagClosing
	c.reason = reasonAbort
	c.notifyLocked()
}

// SetTimeout closes the connection with ErrTimeout if it is still open d
// from now (rounded up to Config.TimerResolution); d <= 0 cancels. Only
// the connection's loop may call it, that is from OnOpen, OnData or
// OnClose.
func (c *Conn) SetTimeout(d time.Duration) {
	c.loop.setTimeout(c, d)
}

func (c *Conn) closeError() error {
	switch c.reason {
	case reasonLocal:
		return nil
	case reasonQueueFull:
		return ErrWriteQueueFull
	case reasonTimeout:
		return ErrTimeout
	case reasonServer:
		return ErrServerClosed
	case reasonWrite:
		return os.NewSyscallError("write", syscall.Errno(c.errno))
	case reasonAbort:
		return nil
	}
	return nil
}

// loop is one event loop: an epoll set and the connections in it.
type loop struct {
	s      *Server
	epfd   int
	wakefd int

	mu       sync.Mutex
	pending  []int   // accepted sockets to register
	tasks    []*Conn // connections to look at: closing
	stopping bool
	woken    bool // wakefd was signalled and not yet drained

	// Used by the loop goroutine only.
	conns  []*Conn
	free   []int32
	buf    []byte
	events []syscall.EpollEvent
	wheel  wheel
	gen    uint32

	// When the loop parks in the runtime's poller (Config.BlockingWait
	// off): the epoll set as a file, and the deadline set on it.
	file     *os.File
	raw      syscall.RawConn
	deadline time.Time
	got      int // events harvested by the last wait
	harvest  func(fd uintptr) bool
	taken    []int
	todo     []*Conn

	batch batch // writes gathered while the loop is awake (batch_linux.go)
}

const wakeSlot = -1 // the epoll data of the wake-up eventfd

func newLoop(s *Server) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := eventfd()
	if err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeSlot}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(wfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &loop{s: s, epfd: epfd, wakefd: wfd, events: make([]syscall.EpollEvent, 256)}
	l.wheel.init(s.cfg.TimerResolution)
	l.initBatch()
	return l, nil
}

func (l *loop) closeFds() {
	l.closeBatch()
	if l.file != nil {
		l.file.Close() // owns epfd
	} else {
		syscall.Close(l.epfd)
	}
	syscall.Close(l.wakefd)
}

// add hands an accepted socket to the loop (any goroutine).
func (l *loop) add(fd int) {
	l.mu.Lock()
	l.pending = append(l.pending, fd)
	l.wakeLocked()
	l.mu.Unlock()
}

// notify puts c on the task list (any goroutine, c.mu held).
func (l *loop) notify(c *Conn) {
	l.mu.Lock()
	l.tasks = append(l.tasks, c)
	l.wakeLocked()
	l.mu.Unlock()
}

func (l *loop) wakeLocked() {
	if !l.woken {
		l.woken = true
		signal(l.wakefd)
	}
}

func (l *loop) ctl(c *Conn, op int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: c.slot, Pad: int32(c.gen)}
	return syscall.EpollCtl(l.epfd, op, int(c.fd), &ev)
}

func (l *loop) run() {
	defer l.s.wg.Done()
	if l.s.cfg.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	l.buf = make([]byte, l.s.cfg.ReadBufferSize)
	wait := l.waitBlocking
	if !l.s.cfg.BlockingWait {
		if err := l.joinRuntimePoller(); err != nil {
			slog.Warn("evloop: blocking in epoll_wait instead", "err", err)
		} else {
			wait = l.waitParked
		}
	}
	for {
		n := wait()
		l.openBatch()
		wake := false
		for _, ev := range l.events[:n] {
			if ev.Fd == wakeSlot {
				wake = true
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil || c.gen != uint32(ev.Pad) || c.fd < 0 {
				continue // closed earlier in this batch
			}
			l.serve(c, ev.Events)
		}
		if wake && l.wakeup() {
			l.shutdown()
			return
		}
		l.wheel.advance(l)
		l.flushBatch()
	}
}

// waitBlocking blocks the loop's thread in epoll_wait (Config.BlockingWait).
func (l *loop) waitBlocking() int {
	n, err := syscall.EpollWait(l.epfd, l.events, l.wheel.waitMillis())
	if err != nil {
		if err != syscall.EINTR {
			slog.Error("evloop: epoll_wait failed", "err", os.NewSyscallError("epoll_wait", err))
		}
		return 0
	}
	return n
}

// joinRuntimePoller registers the epoll set with the runtime's poller (an
// epoll set is readable when it has events), so that an idle loop parks
// like any goroutine waiting for a socket instead of holding a thread in
// a system call, which the runtime would hand its P away from.
func (l *loop) joinRuntimePoller() error {
	if err := syscall.SetNonblock(l.epfd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(l.epfd), "evloop-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		return err // f is not pollable and does not own epfd for closing
	}
	l.file, l.raw = f, raw
	l.harvest = func(fd uintptr) bool {
		l.got = epollWaitNow(int(fd), l.events)
		return l.got > 0 // false: drained, park until the set is readable
	}
	return nil
}

// waitParked collects the ready events, parking in the runtime's poller
// until there are some or the wheel's next tick.
func (l *loop) waitParked() int {
	var d time.Time
	if l.wheel.count > 0 {
		d = l.wheel.nextTick()
	}
	if !d.Equal(l.deadline) {
		l.file.SetReadDeadline(d)
		l.deadline = d
	}
	l.got = 0
	if err := l.raw.Read(l.harvest); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		slog.Error("evloop: waiting for events failed", "err", err)
		time.Sleep(10 * time.Millisecond) // do not spin
	}
	return l.got
}

// serve handles the events of c.
func (l *loop) serve(c *Conn, events uint32) {
	if events&syscall.EPOLLOUT != 0 {
		l.flush(c)
		if c.fd < 0 {
			return
		}
	}
	if events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
		return
	}
	c.mu.Lock()
	flags := c.flags
	c.mu.Unlock()
	if flags&flagClosing != 0 {
		l.drain(c)
		return
	}
	if flags&flagPaused != 0 && events&(syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
		return // reported before the pause took effect
	}
	for {
		n, err := read(int(c.fd), l.buf)
		switch {
		case n > 0:
			l.s.cfg.OnData(c, l.buf[:n])
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
		case err != nil:
			l.closeConn(c, os.NewSyscallError("read", err))
		default:
			l.closeConn(c, io.EOF)
		}
		return
	}
}

// drain reads and drops what a closing connection's peer sends, and
// closes the connection when the peer has ended its side (or failed).
func (l *loop) drain(c *Conn) {
	for i := 0; i < 4; i++ { // bounded, so that a flood cannot hold the loop
		n, err := read(int(c.fd), l.buf)
		switch {
		case n > 0:
			continue
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		}
		c.mu.Lock()
		flushing := err == nil && c.flags&flagLinger == 0 && c.out != nil
		if flushing {
			// The peer ended its side but may still read: send the queue
			// first, and stop asking for input until then (the end of
			// stream would be reported for ever).
			c.flags |= flagPaused
			l.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
		}
		c.mu.Unlock()
		if !flushing {
			l.closeConn(c, nil)
		}
		return
	}
}

// startClose begins the end of a closing connection whose queue is
// empty: our FIN goes out, and the loop drains the peer's bytes until its
// FIN (drain) or the close timeout.
func (l *loop) startClose(c *Conn) {
	c.mu.Lock()
	if c.fd < 0 || c.flags&flagLinger != 0 {
		c.mu.Unlock()
		return
	}
	if err := syscall.Shutdown(int(c.fd), syscall.SHUT_WR); err != nil {
		c.mu.Unlock()
		l.closeConn(c, nil) // the peer is gone already
		return
	}
	c.flags |= flagLinger
	l.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
	c.mu.Unlock()
	l.setTimeout(c, l.s.cfg.CloseTimeout)
}

// flush sends c's queue.
func (l *loop) flush(c *Conn) {
	c.mu.Lock()
	q := c.out
	if q != nil {
		n, err := write(int(c.fd), q.buf[q.off:])
		if err != nil {
			c.failLocked(reasonWrite, err)
			c.mu.Unlock()
			return
		}
		q.off += n
		if q.off < len(q.buf) {
			c.mu.Unlock()
			return
		}
		c.out = nil // free the queue: an idle connection holds none
		q.release()
	}
	if c.flags&flagOutArmed != 0 {
		c.flags &^= flagOutArmed
		l.ctl(c, syscall.EPOLL_CTL_MOD, c.maskLocked())
	}
	closing := c.flags&flagClosing != 0
	failed := c.reason != reasonLocal
	c.mu.Unlock()
	if closing {
		if failed {
			l.closeConn(c, nil)
		} else {
			l.startClose(c)
		}
	}
}

// wakeup takes the new sockets and the tasks, and reports whether the
// server is stopping.
func (l *loop) wakeup() bool {
	drainEventfd(l.wakefd)
	l.mu.Lock()
	l.woken = false
	l.taken, l.pending = l.pending, l.taken[:0]
	l.todo, l.tasks = l.tasks, l.todo[:0]
	stopping := l.stopping
	l.mu.Unlock()
	for _, fd := range l.taken {
		l.register(fd)
	}
	for i, c := range l.todo {
		l.todo[i] = nil
		c.mu.Lock()
		c.flags &^= flagNotified
		queued := c.out != nil || c.flags&flagGathered != 0
		failed := c.reason != reasonLocal
		c.mu.Unlock()
		if c.fd < 0 {
			continue
		}
		switch {
		case failed:
			l.closeConn(c, nil)
		case !queued:
			l.startClose(c)
		default:
			// flush begins the end once the queue is sent; a peer that
			// does not take it has the close timeout to do so.
			l.setTimeout(c, l.s.cfg.CloseTimeout)
		}
	}
	return stopping
}

func (l *loop) register(fd int) {
	var slot int32
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = int32(len(l.conns))
		l.conns = append(l.conns, nil)
	}
	l.gen++ // tells the slot's successive owners apart
	c := &Conn{fd: int32(fd), slot: slot, gen: l.gen, loop: l}
	l.conns[slot] = c
	if err := l.ctl(c, syscall.EPOLL_CTL_ADD, syscall.EPOLLIN|syscall.EPOLLRDHUP); err != nil {
		slog.Warn("evloop: cannot add a connection", "err", os.NewSyscallError("epoll_ctl", err))
		syscall.Close(fd)
		l.conns[slot] = nil
		l.free = append(l.free, slot)
		return
	}
	l.s.conns.Add(1)
	if l.s.cfg.OnOpen != nil {
		l.s.cfg.OnOpen(c)
	}
}

// closeConn closes c's socket and calls OnClose with the error of the
// reason set earlier or else err.
func (l *loop) closeConn(c *Conn, err error) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	fd := c.fd
	c.fd = -1
	c.flags |= flagClosing
	if c.reason != reasonNone {
		err = c.closeError()
	}
	c.out.release()
	c.out = nil
	c.mu.Unlock()
	syscall.Close(int(fd)) // also leaves the epoll set
	l.conns[c.slot] = nil
	l.free = append(l.free, c.slot)
	l.s.conns.Add(-1)
	if l.s.cfg.OnClose != nil {
		l.s.cfg.OnClose(c, err)
	}
}

// shutdown closes every connection and the loop's descriptors.
func (l *loop) shutdown() {
	for _, c := range l.conns {
		if c != nil && c.fd >= 0 {
			c.mu.Lock()
			if c.reason == reasonNone || c.reason == reasonLocal {
				c.reason = reasonServer
			}
			c.mu.Unlock()
			l.closeConn(c, ErrServerClosed)
		}
	}
	l.closeFds()
}

func (l *loop) setTimeout(c *Conn, d time.Duration) {
	if d <= 0 {
		c.deadline = 0
		return
	}
	l.wheel.schedule(c, d)
}

// queued returns the bytes waiting in c's write queue (for tests).
func (c *Conn) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out == nil {
		return 0
	}
	return len(c.out.buf) - c.out.off
}

// setWriteDeadline does nothing: Write never blocks (see the fallback's).
func (c *Conn) setWriteDeadline(time.Time) error { return nil }

// hasWriteQueue is true when Write queues instead of blocking.
const hasWriteQueue = true
