package servers

import (
	"bufio"
	"context"
	"io"
	"net"

	"github.com/gobwas/ws"
)

func init() {
	register(Server{
		Name:      "gobwas",
		Doc:       "gobwas/ws zero-copy ws.Upgrade on a raw listener; low-level ws.ReadHeader, ws.Cipher, ws.WriteHeader (buffered read, header+payload in one writev); compiled frame for broadcast",
		Broadcast: true,
		Run:       runGobwas,
	})
}

func runGobwas(ctx context.Context, addr string, mode Mode) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	h := newHub[net.Conn]()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer conn.Close()
			if _, err := ws.Upgrade(conn); err != nil {
				return
			}
			if mode == Broadcast {
				h.add(conn)
				defer h.remove(conn)
			}
			gobwasLoop(conn, mode, h)
		}()
	}
}

func gobwasLoop(conn net.Conn, mode Mode, h *hub[net.Conn]) {
	br := bufio.NewReaderSize(conn, 4096)
	var payload []byte
	var hdr [ws.MaxHeaderSize]byte
	var vec [2][]byte
	for {
		header, err := ws.ReadHeader(br)
		if err != nil {
			logErr("gobwas", err)
			return
		}
		if int64(cap(payload)) < header.Length {
			payload = make([]byte, header.Length)
		}
		payload = payload[:header.Length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if header.Masked {
			ws.Cipher(payload, header.Mask, 0)
		}
		header.Masked = false
		if mode == Broadcast && (header.OpCode == ws.OpText || header.OpCode == ws.OpBinary) {
			frame, err := ws.CompileFrame(ws.NewFrame(header.OpCode, true, payload))
			if err != nil {
				return
			}
			h.each(func(c net.Conn) { c.Write(frame) })
			continue
		}
		w := headerWriter{buf: hdr[:0]}
		if err := ws.WriteHeader(&w, header); err != nil {
			return
		}
		vec[0], vec[1] = w.buf, payload
		bufs := net.Buffers(vec[:])
		if _, err := bufs.WriteTo(conn); err != nil {
			return
		}
		if header.OpCode == ws.OpClose {
			return
		}
	}
}

// headerWriter collects an encoded header so it can go out with its payload
// in one system call.
type headerWriter struct{ buf []byte }

func (w *headerWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}
