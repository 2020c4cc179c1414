package servers

import (
	"context"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

func init() {
	register(Server{
		Name:      "floor",
		Doc:       "net/http handshake, then a goroutine per connection that waits for readability without a buffer, reads into a pooled buffer, unmasks every complete frame in place and writes them all back in one writev; no validation at all",
		Broadcast: true,
		Run:       runFloor,
	})
}

func runFloor(ctx context.Context, addr string, mode Mode) error {
	h := newHub[net.Conn]()
	return serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := wire.ServerHandshake(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		// Bytes the client sent right after its request are already in
		// net/http's reader.
		initial := make([]byte, rw.Reader.Buffered())
		rw.Reader.Read(initial)
		if mode == Broadcast {
			h.add(conn)
		}
		if _, err := conn.Write([]byte(resp)); err != nil {
			h.remove(conn)
			conn.Close()
			return
		}
		// A fresh goroutine lets net/http's serving goroutine, and the stack
		// it grew while parsing the request, go away.
		go func() {
			defer conn.Close()
			defer h.remove(conn)
			floorLoop(conn, initial, mode, h)
		}()
	}))
}

// floorLoop is the least work an echo can do: no UTF-8, no limits, no
// fragmentation or close rules. An idle connection holds no buffer: the
// goroutine waits for readability through the raw connection and takes a
// buffer from a pool only when bytes are there; one buffer serves reading and
// writing, and every complete frame of a read goes back in one writev.
func floorLoop(conn net.Conn, initial []byte, mode Mode, h *hub[net.Conn]) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var bp *[]byte
	r := 0
	// hint is the buffer size this connection needed last, so a stream of
	// large frames is read in one system call each instead of starting from
	// the smallest buffer every time.
	hint := minBuf
	var vec [][]byte
	if len(initial) > 0 {
		bp = getBuf(len(initial))
		r = copy(*bp, initial)
	}
	defer func() {
		if bp != nil {
			putBuf(bp)
		}
	}()
	for {
		if r > 0 {
			var closing bool
			var err error
			r, closing, err = floorFrames(conn, &bp, &vec, r, mode, h)
			if err != nil || closing {
				return
			}
			hint = len(*bp)
			if r == 0 {
				putBuf(bp)
				bp = nil
			}
		}
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = getBuf(hint)
			}
			for {
				n, rerr = syscall.Read(int(fd), (*bp)[r:])
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				if r == 0 {
					putBuf(bp)
					bp = nil
				}
				return false
			}
			return true
		})
		if err != nil || rerr != nil || n <= 0 {
			return
		}
		r += n
	}
}

// floorFrames echoes every complete frame in the first r bytes of *bp and
// returns how many bytes of a partial frame are left at its start. Each
// payload is unmasked in place and its (4 bytes shorter) server header is
// written just before it, over the end of the client header, so no payload
// byte moves; all the frames of one read leave in one writev.
func floorFrames(conn net.Conn, bp **[]byte, vec *[][]byte, r int, mode Mode, h *hub[net.Conn]) (int, bool, error) {
	buf := **bp
	in := 0
	closing := false
	out := (*vec)[:0]
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		bufs := net.Buffers(out)
		_, err := bufs.WriteTo(conn)
		out = out[:0]
		return err
	}
	for !closing {
		hd, hl, err := wire.ParseHeader(buf[in:r])
		if err != nil {
			if err != wire.ErrShort {
				return 0, false, err
			}
			break
		}
		total := hl + int(hd.Len)
		if r-in < total {
			if total > len(buf) {
				// Send what is complete, then make room for the whole frame.
				if err := flush(); err != nil {
					return 0, false, err
				}
				nb := getBuf(total)
				r = copy(*nb, buf[in:r])
				putBuf(*bp)
				*bp = nb
				*vec = out
				return r, false, nil
			}
			break
		}
		payload := buf[in+hl : in+total]
		if hd.Masked {
			wire.Mask(payload, hd.Key)
		}
		op := hd.Op
		if op == wire.OpPing {
			op = wire.OpPong
		}
		if mode == Broadcast && (op == wire.OpText || op == wire.OpBinary) {
			frame := wire.AppendHeader(nil, true, op, len(payload), nil)
			frame = append(frame, payload...)
			h.each(func(c net.Conn) { c.Write(frame) })
			in += total
			continue
		}
		shl := hl
		if hd.Masked {
			shl -= 4
		}
		start := in + hl - shl
		b0, b1 := buf[in]&0xf0|op, buf[in+1]&0x7f
		copy(buf[start+2:start+shl], buf[in+2:in+shl])
		buf[start], buf[start+1] = b0, b1
		out = append(out, buf[start:in+total])
		in += total
		closing = hd.Op == wire.OpClose
	}
	err := flush()
	*vec = out
	if err != nil {
		return 0, false, err
	}
	return copy(buf, buf[in:r]), closing, nil
}

// Buffers come in power-of-two size classes from minBuf up, each with its
// own pool, so a connection that sees 64 KiB frames reuses 64 KiB buffers.
const minBuf = 4096

var bufPools [20]sync.Pool

func bufClass(n int) int {
	c := 0
	for size := minBuf; size < n && c < len(bufPools)-1; size <<= 1 {
		c++
	}
	return c
}

func getBuf(n int) *[]byte {
	c := bufClass(n)
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return b
	}
	size := minBuf << c
	if size < n {
		size = n
	}
	b := make([]byte, size)
	return &b
}

func putBuf(b *[]byte) {
	c := bufClass(len(*b))
	if minBuf<<c != len(*b) {
		return // an odd size from beyond the last class
	}
	bufPools[c].Put(b)
}
