// Package wire holds the few pieces of RFC 6455 that the load generator and
// the floor server need: masking, frame encoding, a streaming frame parser
// and the HTTP upgrade handshake. It is deliberately minimal and separate from
// the library under test, so that the measuring side never shares code with
// the measured side.
package wire

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Opcodes used by the benchmarks.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// MaxHeaderLen is the longest frame header: 2 + 8 length bytes + 4 mask bytes.
const MaxHeaderLen = 14

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Mask XORs b in place with the 4-byte key, starting at key offset 0. It works
// a word at a time because the load generator masks every payload it sends and
// must stay cheaper than the servers it measures.
func Mask(b []byte, key [4]byte) {
	k32 := uint64(binary.LittleEndian.Uint32(key[:]))
	k := k32 | k32<<32
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k)
		binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k)
		binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k)
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k)
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// AppendHeader appends a frame header. A nil key means an unmasked (server)
// frame.
func AppendHeader(dst []byte, fin bool, op byte, n int, key *[4]byte) []byte {
	b0 := op & 0x0f
	if fin {
		b0 |= 0x80
	}
	var m byte
	if key != nil {
		m = 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if key != nil {
		dst = append(dst, key[:]...)
	}
	return dst
}

// AppendClientFrame appends a complete masked frame carrying payload.
func AppendClientFrame(dst []byte, op byte, payload []byte, key [4]byte) []byte {
	dst = AppendHeader(dst, true, op, len(payload), &key)
	start := len(dst)
	dst = append(dst, payload...)
	Mask(dst[start:], key)
	return dst
}

// Header is a decoded frame header.
type Header struct {
	Fin    bool
	Rsv    byte
	Op     byte
	Masked bool
	Key    [4]byte
	Len    int64
}

// ErrShort means the buffer does not yet hold a whole header.
var ErrShort = errors.New("wire: short header")

// ParseHeader decodes the header at the start of b and returns its length.
func ParseHeader(b []byte) (Header, int, error) {
	var h Header
	if len(b) < 2 {
		return h, 0, ErrShort
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 7
	h.Op = b[0] & 0x0f
	h.Masked = b[1]&0x80 != 0
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, ErrShort
		}
		h.Len = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, ErrShort
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > 1<<62 {
			return h, 0, fmt.Errorf("wire: frame length %d out of range", v)
		}
		h.Len = int64(v)
		n = 10
	default:
		h.Len = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, ErrShort
		}
		copy(h.Key[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// ClientHandshake sends an upgrade request on conn and checks the 101
// response. It returns the bytes that followed the response in the same read,
// which already belong to the WebSocket stream.
func ClientHandshake(conn net.Conn, host, path string, key string, buf []byte) ([]byte, error) {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(buf) {
			return nil, errors.New("wire: handshake response too large")
		}
		m, err := conn.Read(buf[n:])
		n += m
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
			resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:i+4])), nil)
			if perr != nil {
				return nil, perr
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return nil, fmt.Errorf("wire: handshake status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != AcceptKey(key) {
				return nil, fmt.Errorf("wire: bad Sec-WebSocket-Accept %q", got)
			}
			return buf[i+4 : n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ServerHandshake validates the few request fields an echo server must look
// at and returns the 101 response to write. It does no origin, version or
// subprotocol policy: it is used only by the floor server.
func ServerHandshake(r *http.Request) (string, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return "", errors.New("wire: not a websocket upgrade")
	}
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		AcceptKey(key) + "\r\n\r\n", nil
}
