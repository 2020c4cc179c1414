//go:build linux && !evloop_portable

package evloop

import (
	"math"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// An io_uring instance used for one thing: sending many small buffers to
// many sockets with one system call (see batch_linux.go). The layouts and
// constants below are the kernel's UAPI (include/uapi/linux/io_uring.h);
// the syscall package has none of them.

const (
	sysIOURingSetup    = 425
	sysIOURingEnter    = 426
	sysIOURingRegister = 427

	ioringOffSQRing = 0
	ioringOffCQRing = 0x8000000
	ioringOffSQEs   = 0x10000000

	ioringFeatSingleMmap = 1 << 0
	ioringSetupSubmitAll = 1 << 7 // keep submitting past an SQE that fails
	ioringSetupCoopTask  = 1 << 8 // no interrupt to run completion work: we wait for it anyway
	ioringEnterGetEvents = 1 << 0
	ioringRegisterProbe  = 8
	ioringOpSend         = 26
	ioringOpSupported    = 1 << 0

	msgDontwait = 0x40   // MSG_DONTWAIT: fail with EAGAIN rather than wait for room
	msgNosignal = 0x4000 // MSG_NOSIGNAL: no SIGPIPE from a reset peer
)

type ioSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad         uint64
}

type ioCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

type ioSQRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type ioCQRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type ioURingParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  ioSQRingOffsets
	cqOff                                                                  ioCQRingOffsets
}

// ringEntries is the submission queue's size: the most sends per
// io_uring_enter. 1024 SQEs (64 KiB) and 2048 CQEs (32 KiB) per loop.
const ringEntries = 1024

// uring is one loop's ring; only its loop uses it.
type uring struct {
	fd                int
	sqMem, cqMem      []byte // cqMem aliases sqMem with IORING_FEAT_SINGLE_MMAP
	sqeMem            []byte
	sqHead, sqTail    *uint32
	cqHead, cqTail    *uint32
	sqMask, cqMask    uint32
	sqes              *[ringEntries]ioSQE
	cqes              unsafe.Pointer // cqMask+1 ioCQE
	enters, submitted uint64         // io_uring_enter calls and SQEs, for the benchmarks
}

// newURing sets up a ring that can send, or fails: the kernel is older
// than 5.6 (no IORING_OP_SEND), io_uring is disabled
// (kernel.io_uring_disabled, a seccomp filter), or memory is short.
func newURing() (*uring, error) {
	var p ioURingParams
	p.flags = ioringSetupSubmitAll | ioringSetupCoopTask
	fd, _, errno := syscall.Syscall(sysIOURingSetup, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno == syscall.EINVAL { // a kernel without those flags (before 5.18/5.19)
		p = ioURingParams{}
		fd, _, errno = syscall.Syscall(sysIOURingSetup, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	}
	if errno != 0 {
		return nil, os.NewSyscallError("io_uring_setup", errno)
	}
	r := &uring{fd: int(fd)}
	syscall.CloseOnExec(r.fd) // io_uring fds are O_CLOEXEC since 5.4; older ones are not
	if err := r.mapRings(&p); err != nil {
		r.close()
		return nil, err
	}
	if !r.canSend() {
		r.close()
		return nil, os.NewSyscallError("io_uring_register", syscall.ENOSYS)
	}
	return r, nil
}

func (r *uring) mapRings(p *ioURingParams) error {
	const prot, flags = syscall.PROT_READ | syscall.PROT_WRITE, syscall.MAP_SHARED | syscall.MAP_POPULATE
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(ioCQE{})))
	single := p.features&ioringFeatSingleMmap != 0
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	if r.sqMem, err = syscall.Mmap(r.fd, ioringOffSQRing, sqSize, prot, flags); err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.cqMem = r.sqMem
	if !single {
		if r.cqMem, err = syscall.Mmap(r.fd, ioringOffCQRing, cqSize, prot, flags); err != nil {
			r.cqMem = nil
			return os.NewSyscallError("mmap", err)
		}
	}
	if r.sqeMem, err = syscall.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(ioSQE{})), prot, flags); err != nil {
		return os.NewSyscallError("mmap", err)
	}
	if p.sqEntries != ringEntries {
		return os.NewSyscallError("io_uring_setup", syscall.EINVAL)
	}
	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqHead, r.sqTail = u32(r.sqMem, p.sqOff.head), u32(r.sqMem, p.sqOff.tail)
	r.sqMask = *u32(r.sqMem, p.sqOff.ringMask)
	r.cqHead, r.cqTail = u32(r.cqMem, p.cqOff.head), u32(r.cqMem, p.cqOff.tail)
	r.cqMask = *u32(r.cqMem, p.cqOff.ringMask)
	r.cqes = unsafe.Pointer(&r.cqMem[p.cqOff.cqes])
	r.sqes = (*[ringEntries]ioSQE)(unsafe.Pointer(&r.sqeMem[0]))
	// The index array maps ring positions to SQEs one to one, for good.
	array := unsafe.Slice((*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.array])), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return nil
}

// canSend asks the kernel whether it knows IORING_OP_SEND.
func (r *uring) canSend() bool {
	// struct io_uring_probe: a 16-byte head (last_op, ops_len, ...) and
	// 8-byte ops (op, resv, flags, resv2).
	const nops = ioringOpSend + 1
	var buf [16 + nops*8]byte
	_, _, errno := syscall.Syscall6(sysIOURingRegister, uintptr(r.fd), ioringRegisterProbe, uintptr(unsafe.Pointer(&buf[0])), nops, 0, 0)
	if errno != 0 || buf[0] < ioringOpSend {
		return false
	}
	op := buf[16+ioringOpSend*8:]
	return op[0] == ioringOpSend && uint16(op[2])|uint16(op[3])<<8&ioringOpSupported != 0
}

func (r *uring) close() {
	for _, m := range [][]byte{r.sqeMem, r.sqMem} {
		if m != nil {
			syscall.Munmap(m)
		}
	}
	if r.cqMem != nil && &r.cqMem[0] != &r.sqMem[0] {
		syscall.Munmap(r.cqMem)
	}
	r.sqMem, r.cqMem, r.sqeMem = nil, nil, nil
	syscall.Close(r.fd)
}

// sendAll sends bufs[i] to fds[i] (at most ringEntries of them) in one
// io_uring_enter, and stores each send's result in res: the bytes sent,
// or a negated errno (-EAGAIN when the socket had no room). The sends are
// non-blocking (MSG_DONTWAIT), so the kernel completes every one of them
// during the call: the buffers need to live only until it returns.
func (r *uring) sendAll(fds []int32, bufs [][]byte, res []int32) {
	n := uint32(len(fds))
	tail := *r.sqTail // only we move the tail
	for i := uint32(0); i < n; i++ {
		b := bufs[i]
		*(&r.sqes[(tail+i)&r.sqMask]) = ioSQE{
			opcode:   ioringOpSend,
			fd:       fds[i],
			addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))),
			len:      uint32(len(b)),
			msgFlags: msgDontwait | msgNosignal,
			userData: uint64(i),
		}
	}
	atomic.StoreUint32(r.sqTail, tail+n) // release: the SQEs are written
	for i := range res[:n] {
		res[i] = sendPending
	}
	toSubmit, reaped := n, uint32(0)
	for reaped < n {
		got, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(toSubmit), uintptr(n-reaped), ioringEnterGetEvents, 0, 0)
		r.enters++
		if errno == 0 {
			toSubmit -= uint32(got)
			r.submitted += uint64(got)
		}
		head, ctail := *r.cqHead, atomic.LoadUint32(r.cqTail) // acquire: the CQEs are written
		for ; head != ctail; head++ {
			cqe := (*ioCQE)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(ioCQE{})))
			if cqe.userData < uint64(n) && res[cqe.userData] == sendPending {
				res[cqe.userData] = cqe.res
				reaped++
			}
		}
		atomic.StoreUint32(r.cqHead, head) // release: the CQEs are consumed
		switch errno {
		case 0, syscall.EINTR, syscall.EAGAIN, syscall.EBUSY:
			continue // try again: EAGAIN and EBUSY are a short-lived lack of memory
		}
		// The ring failed: take back the SQEs it did not consume, and
		// fail the sends that did not complete with its error. (A send
		// that was submitted has completed: they do not wait.)
		atomic.StoreUint32(r.sqTail, atomic.LoadUint32(r.sqHead))
		for i := range res[:n] {
			if res[i] == sendPending {
				res[i] = -int32(errno)
			}
		}
		return
	}
}

// sendPending marks a send whose completion has not been reaped.
const sendPending = math.MinInt32
