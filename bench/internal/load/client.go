// Package load is the load generator: a raw WebSocket client that masks its
// frames as RFC 6455 requires, checks every echoed byte, and measures round
// trips, latency and the server's CPU time.
package load

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

// client is one connection of the load generator. It parses server frames as
// a stream, so a message may arrive in any number of frames and reads.
type client struct {
	conn *net.TCPConn
	rbuf []byte
	r    int // bytes held in rbuf
	wbuf []byte

	want []byte // expected payload of every message
	op   byte   // expected message opcode

	// Parse state of the frame being received.
	inFrame bool
	fin     bool
	remain  int64
	msgOff  int

	rng *rand.PCG
}

// sourceAddr spreads connections over 127.0.0.1..127.0.0.n, so 10,000 and
// more connections do not run out of ephemeral ports on one address pair.
func sourceAddr(i, sources int) *net.TCPAddr {
	if sources <= 1 {
		return nil
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%sources))}
}

func dial(ctx context.Context, addr string, i, sources int, want []byte, op byte, rbufSize int) (*client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if la := sourceAddr(i, sources); la != nil {
		d.LocalAddr = la
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.TCPConn)
	var keyRaw [16]byte
	crand.Read(keyRaw[:])
	hs := make([]byte, 4096)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rest, err := wire.ClientHandshake(conn, addr, "/", base64.StdEncoding.EncodeToString(keyRaw[:]), hs)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if rbufSize < len(rest) {
		rbufSize = len(rest)
	}
	c := &client{
		conn: conn,
		rbuf: make([]byte, rbufSize),
		want: want,
		op:   op,
		rng:  rand.NewPCG(uint64(keyRaw[0])<<8|uint64(keyRaw[1]), uint64(i)),
	}
	c.r = copy(c.rbuf, rest)
	return c, nil
}

// dialAll opens n connections with bounded concurrency, so the server's
// accept backlog never overflows into SYN retries that would skew timing.
func dialAll(ctx context.Context, addr string, n, sources int, want []byte, op byte, rbufSize int) ([]*client, error) {
	clients := make([]*client, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(ctx, addr, i, sources, want, op, rbufSize)
			if err != nil {
				mu.Lock()
				if ferr == nil {
					ferr = fmt.Errorf("connection %d: %w", i, err)
				}
				mu.Unlock()
				return
			}
			clients[i] = c
		}()
		mu.Lock()
		stop := ferr != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	wg.Wait()
	if ferr != nil {
		closeAll(clients)
		return nil, ferr
	}
	return clients, nil
}

func closeAll(cs []*client) {
	for _, c := range cs {
		if c != nil {
			c.conn.Close()
		}
	}
}

// appendFrames appends k masked frames of the expected payload to c.wbuf,
// each with a fresh mask key.
func (c *client) appendFrames(k int) {
	for range k {
		v := c.rng.Uint64()
		key := [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		c.wbuf = wire.AppendClientFrame(c.wbuf, c.op, c.want, key)
	}
}

// errMismatch is returned when the server sends back something else than
// what was sent: the benchmark is void for that server.
var errMismatch = errors.New("echo does not match what was sent")

// parse consumes every complete or partial frame in rbuf and returns how many
// whole messages ended. Payload bytes are compared as they arrive.
func (c *client) parse() (int, error) {
	done := 0
	off := 0
	for off < c.r {
		if !c.inFrame {
			h, hl, err := wire.ParseHeader(c.rbuf[off:c.r])
			if err == wire.ErrShort {
				break
			}
			if err != nil {
				return done, err
			}
			switch {
			case h.Masked:
				return done, errors.New("server sent a masked frame")
			case h.Rsv != 0:
				return done, errors.New("server set RSV bits")
			case h.Op == wire.OpClose:
				return done, errors.New("server sent a close frame")
			case h.Op >= 0x8:
				return done, fmt.Errorf("unexpected control frame %#x", h.Op)
			case c.msgOff == 0 && h.Op != c.op && !(h.Len == 0 && h.Op == wire.OpContinuation):
				return done, fmt.Errorf("message opcode %#x, want %#x", h.Op, c.op)
			case c.msgOff > 0 && h.Op != wire.OpContinuation:
				return done, fmt.Errorf("opcode %#x inside a fragmented message", h.Op)
			case int64(c.msgOff)+h.Len > int64(len(c.want)):
				return done, fmt.Errorf("%w: message longer than %d bytes", errMismatch, len(c.want))
			}
			c.inFrame, c.fin, c.remain = true, h.Fin, h.Len
			off += hl
		}
		take := int64(c.r - off)
		if take > c.remain {
			take = c.remain
		}
		if !bytes.Equal(c.rbuf[off:off+int(take)], c.want[c.msgOff:c.msgOff+int(take)]) {
			return done, errMismatch
		}
		c.msgOff += int(take)
		c.remain -= take
		off += int(take)
		if c.remain == 0 {
			c.inFrame = false
			if c.fin {
				if c.msgOff != len(c.want) {
					return done, fmt.Errorf("%w: message of %d bytes, want %d", errMismatch, c.msgOff, len(c.want))
				}
				c.msgOff = 0
				done++
			}
		}
	}
	c.r = copy(c.rbuf, c.rbuf[off:c.r])
	return done, nil
}

// readSome reads once more from the connection and parses what came.
func (c *client) readSome() (int, error) {
	if c.r == len(c.rbuf) {
		// A header cannot be this long; rbuf is always larger than MaxHeaderLen.
		return 0, errors.New("read buffer full")
	}
	n, err := c.conn.Read(c.rbuf[c.r:])
	c.r += n
	if n > 0 {
		done, perr := c.parse()
		if perr != nil {
			return done, perr
		}
		if err != nil && done > 0 {
			return done, nil
		}
		return done, err
	}
	return 0, err
}

// echoOnce sends one message and waits for its echo; used to check idle
// connections are still served.
func (c *client) echoOnce(timeout time.Duration) error {
	c.conn.SetDeadline(time.Now().Add(timeout))
	defer c.conn.SetDeadline(time.Time{})
	c.wbuf = c.wbuf[:0]
	c.appendFrames(1)
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return err
	}
	for {
		n, err := c.readSome()
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sendClose starts a normal closing handshake without waiting for it, so the
// servers see a clean end rather than a reset.
func (c *client) sendClose() {
	c.wbuf = c.wbuf[:0]
	var key [4]byte
	c.wbuf = wire.AppendClientFrame(c.wbuf, wire.OpClose, []byte{0x03, 0xe8}, key)
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.conn.Write(c.wbuf)
}

// Payload returns n bytes for a message body: random for binary, printable
// ASCII (valid UTF-8) for text.
func Payload(n int, text bool) []byte {
	p := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range p {
		if text {
			p[i] = byte(' ' + r.IntN(95))
		} else {
			p[i] = byte(r.Uint32())
		}
	}
	return p
}
