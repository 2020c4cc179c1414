package servers

import (
	"context"
	"net"
	"net/http"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

func init() {
	register(Server{
		Name:      "floor",
		Doc:       "net/http handshake, then a goroutine that unmasks every complete frame in its 4 KiB buffer and writes them back in one write; no validation",
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
		buf := make([]byte, 4096)
		n := rw.Reader.Buffered()
		if n > len(buf) {
			buf = make([]byte, n)
		}
		rw.Reader.Read(buf[:n])
		if _, err := conn.Write([]byte(resp)); err != nil {
			conn.Close()
			return
		}
		if mode == Broadcast {
			h.add(conn)
		}
		// A fresh goroutine lets net/http's serving goroutine, and the stack
		// it grew while parsing the request, go away.
		go func() {
			defer conn.Close()
			defer h.remove(conn)
			floorLoop(conn, buf, n, mode, h)
		}()
	}))
}

// floorLoop is the least work an echo can do: no UTF-8, no limits, no
// fragmentation or close rules. Frames are unmasked and moved down in place
// (a server header is 4 bytes shorter than a client one), so one buffer serves
// reading and writing.
func floorLoop(conn net.Conn, buf []byte, r int, mode Mode, h *hub[net.Conn]) {
	for {
		in, out := 0, 0
		closing := false
		for {
			hd, hl, err := wire.ParseHeader(buf[in:r])
			if err != nil {
				if err != wire.ErrShort {
					return
				}
				break
			}
			total := hl + int(hd.Len)
			if r-in < total {
				if total > len(buf) {
					// Keep what is written so far, then make room for the whole frame.
					if out > 0 {
						if _, err := conn.Write(buf[:out]); err != nil {
							return
						}
					}
					nb := make([]byte, total)
					r = copy(nb, buf[in:r])
					buf, in, out = nb, 0, 0
				}
				break
			}
			shl := hl
			if hd.Masked {
				shl -= 4
			}
			op := hd.Op
			if op == wire.OpPing {
				op = wire.OpPong
			}
			payload := buf[in+hl : in+total]
			if mode == Broadcast && (op == wire.OpText || op == wire.OpBinary) {
				frame := wire.AppendHeader(nil, true, op, len(payload), nil)
				start := len(frame)
				frame = append(frame, payload...)
				wire.Mask(frame[start:], hd.Key)
				h.each(func(c net.Conn) { c.Write(frame) })
				in += total
				continue
			}
			buf[out] = buf[in]&0xf0 | op
			buf[out+1] = buf[in+1] & 0x7f
			copy(buf[out+2:out+shl], buf[in+2:in+shl])
			maskMove(buf[out+shl:out+shl+len(payload)], payload, hd.Key)
			out += shl + len(payload)
			in += total
			if hd.Op == wire.OpClose {
				closing = true
				break
			}
		}
		if out > 0 {
			if _, err := conn.Write(buf[:out]); err != nil || closing {
				return
			}
		}
		r = copy(buf, buf[in:r])
		if r == len(buf) {
			nb := make([]byte, 2*len(buf))
			copy(nb, buf[:r])
			buf = nb
		}
		m, err := conn.Read(buf[r:])
		if err != nil {
			return
		}
		r += m
	}
}

// maskMove writes src XOR key to dst, where dst starts at or before src in
// the same buffer; going forward a word at a time never reads a byte it has
// already overwritten.
func maskMove(dst, src []byte, key [4]byte) {
	k32 := uint64(key[0]) | uint64(key[1])<<8 | uint64(key[2])<<16 | uint64(key[3])<<24
	k := k32 | k32<<32
	i := 0
	for ; i+8 <= len(src); i += 8 {
		v := uint64(src[i]) | uint64(src[i+1])<<8 | uint64(src[i+2])<<16 | uint64(src[i+3])<<24 |
			uint64(src[i+4])<<32 | uint64(src[i+5])<<40 | uint64(src[i+6])<<48 | uint64(src[i+7])<<56
		v ^= k
		d := dst[i : i+8 : i+8]
		d[0], d[1], d[2], d[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		d[4], d[5], d[6], d[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ key[i&3]
	}
}
