package load

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdriver/websocket/bench/internal/hist"
	"github.com/wsdriver/websocket/bench/internal/wire"
)

// ChatSpec is the chat fan-out row: Receivers and Senders all join one room
// of a chat server; every sender keeps InFlight messages of its own on the
// way, sending the next one each time it sees one of its own come back, and
// every member of the room (senders included) receives every message as
// "nick: text".
type ChatSpec struct {
	Addr      string
	Path      string // request path that joins the room, e.g. /chat
	Receivers int
	Senders   int
	InFlight  int
	Text      int // length of the text a sender sends (at least the marker)
	Warmup    time.Duration
	Duration  time.Duration
	Sources   int
	ServerPID int
}

// ChatResult is what the chat row measured. Deliveries count messages of
// the senders received by any member of the room inside the measured window.
type ChatResult struct {
	Deliveries int64   `json:"deliveries"`
	Seconds    float64 `json:"seconds"`
	PerSec     float64 `json:"per_sec"` // deliveries per second
	// Sent is the number of messages the senders sent in the window.
	Sent int64 `json:"sent"`
	// P50ns, P99ns and MaxNs are delivery latencies: from the moment the
	// sender wrote a message to the moment a member had read all of it.
	P50ns int64 `json:"p50_ns"`
	P99ns int64 `json:"p99_ns"`
	MaxNs int64 `json:"max_ns"`

	ServerCPUns      int64   `json:"server_cpu_ns"`
	CPUPerDeliveryNs float64 `json:"cpu_per_delivery_ns"`
	ServerUtil       float64 `json:"server_util"`
	ClientUtil       float64 `json:"client_util"`

	// Dropped counts receivers the server closed with 1008 (too slow)
	// although they never stopped reading; SendersDropped the same for
	// senders. The load generator reads every connection all the time, so
	// each of these is the server's unfairness, not a slow client.
	Dropped        int    `json:"dropped"`
	SendersDropped int    `json:"senders_dropped"`
	DropReason     string `json:"drop_reason,omitempty"`
	// Lost counts members that ended otherwise (another close code, a
	// reset, end of stream) before the end of the run.
	Lost       int    `json:"lost"`
	LostReason string `json:"lost_reason,omitempty"`

	// Per-receiver deliveries in the window, among receivers still open at
	// its end: the fairness spread.
	RecvMin    int64 `json:"recv_min"`
	RecvMedian int64 `json:"recv_median"`
	RecvMax    int64 `json:"recv_max"`
}

// chatMember is one connection of the chat row. Only its own goroutine
// reads and writes the connection.
type chatMember struct {
	conn   *net.TCPConn
	sender int // sender index, or -1 for a receiver
	rbuf   []byte
	r      int
	wbuf   []byte
	msg    []byte // a fragmented message being put together
	rng    *rand.PCG

	seq  int64 // next sequence number (senders)
	hist hist.Histogram
	got  int64 // deliveries in the window

	closeCode int // close code the server sent, 0 if none
	reason    string
	err       error // how the connection ended early, if it did
	// writeErr is the first failed write. The member then only reads: a
	// server that drops a member sends its close frame and closes the
	// socket, and a write racing with that fails before the close frame
	// is read, which must still count as the drop it is.
	writeErr error
}

// write sends m.wbuf unless a write already failed.
func (m *chatMember) write() {
	if m.writeErr != nil {
		return
	}
	if _, err := m.conn.Write(m.wbuf); err != nil {
		m.writeErr = err
	}
}

// errChatProtocol marks a frame the load cannot accept from a chat server:
// the run is void.
var errChatProtocol = errors.New("load: chat server broke the protocol")

// errClosedByServer ends a member's loop when the server sent a close frame.
var errClosedByServer = errors.New("closed by the server")

func dialChat(ctx context.Context, s ChatSpec, i int) (*chatMember, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if la := sourceAddr(i, s.Sources); la != nil {
		d.LocalAddr = la
	}
	nc, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.TCPConn)
	var keyRaw [16]byte
	crand.Read(keyRaw[:])
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rest, err := wire.ClientHandshake(conn, s.Addr, s.Path, base64.StdEncoding.EncodeToString(keyRaw[:]), make([]byte, 4096))
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	m := &chatMember{conn: conn, sender: -1, rbuf: make([]byte, 16<<10), rng: rand.NewPCG(binary.LittleEndian.Uint64(keyRaw[:]), uint64(i))}
	m.r = copy(m.rbuf, rest)
	return m, nil
}

// chatRun is the state shared by the members of one chat row.
type chatRun struct {
	spec    ChatSpec
	base    time.Time    // message stamps are nanoseconds since base
	phase   atomic.Int32 // phaseWarmup, phaseMeasure, phaseStop
	sent    atomic.Int64
	senders int
}

// marker starts the text of every message the load sends: '~', the sender,
// the sequence number and the send time, dot-separated, then padding that
// holds no '~'. Servers prefix "nick: ", so a message is found by its last
// '~'.
func (cr *chatRun) appendMessage(dst []byte, m *chatMember) []byte {
	start := len(dst)
	dst = append(dst, '~')
	dst = strconv.AppendInt(dst, int64(m.sender), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, m.seq, 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(time.Since(cr.base)), 10)
	dst = append(dst, ' ')
	for len(dst)-start < cr.spec.Text {
		dst = append(dst, 'x')
	}
	m.seq++
	return dst
}

// sendNext writes one masked text frame with the next message.
func (cr *chatRun) sendNext(m *chatMember, k int) {
	m.wbuf = m.wbuf[:0]
	var text [64]byte
	for range k {
		t := cr.appendMessage(text[:0], m)
		v := m.rng.Uint64()
		m.wbuf = wire.AppendClientFrame(m.wbuf, wire.OpText, t, [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	if cr.phase.Load() == phaseMeasure && m.writeErr == nil {
		cr.sent.Add(int64(k))
	}
	m.write()
}

// parseMarker finds the load's marker in a delivered message and returns
// the sender and the send stamp; ok is false for anything else the server
// sends (notices, welcome lines).
func parseMarker(p []byte) (sender int, stamp int64, ok bool) {
	i := bytes.LastIndexByte(p, '~')
	if i < 0 {
		return 0, 0, false
	}
	var f [3]int64
	j := i + 1
	for k := range f {
		start := j
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			f[k] = f[k]*10 + int64(p[j]-'0')
			j++
		}
		if j == start || j == len(p) || (k < 2 && p[j] != '.') || (k == 2 && p[j] != ' ') {
			return 0, 0, false
		}
		j++
	}
	return int(f[0]), f[2], true
}

// message handles one whole message delivered to m.
func (cr *chatRun) message(m *chatMember, p []byte) error {
	sender, stamp, ok := parseMarker(p)
	if !ok {
		return nil
	}
	if cr.phase.Load() == phaseMeasure {
		m.got++
		m.hist.Record(time.Since(cr.base) - time.Duration(stamp))
	}
	if m.sender >= 0 && sender == m.sender && cr.phase.Load() != phaseStop {
		cr.sendNext(m, 1)
	}
	return nil
}

// control answers a ping and records a close.
func (cr *chatRun) control(m *chatMember, op byte, p []byte) error {
	switch op {
	case wire.OpPing:
		v := m.rng.Uint64()
		m.wbuf = wire.AppendClientFrame(m.wbuf[:0], wire.OpPong, p, [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
		m.write()
	case wire.OpClose:
		m.closeCode = 1005
		if len(p) >= 2 {
			m.closeCode = int(binary.BigEndian.Uint16(p))
			m.reason = string(p[2:])
		}
		return errClosedByServer
	}
	return nil
}

// parse handles every whole frame in m.rbuf and keeps a partial one.
func (cr *chatRun) parse(m *chatMember) error {
	off := 0
	for off < m.r {
		h, hl, err := wire.ParseHeader(m.rbuf[off:m.r])
		if err == wire.ErrShort {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errChatProtocol, err)
		}
		if h.Masked || h.Rsv != 0 {
			return fmt.Errorf("%w: a masked frame or RSV bits", errChatProtocol)
		}
		if h.Len > 1<<20 {
			return fmt.Errorf("%w: a frame of %d bytes", errChatProtocol, h.Len)
		}
		end := off + hl + int(h.Len)
		if end > m.r {
			if need := hl + int(h.Len); need > len(m.rbuf) {
				m.rbuf = slices.Grow(m.rbuf[:m.r], need-m.r)[:need]
			}
			break
		}
		p := m.rbuf[off+hl : end]
		off = end
		switch {
		case h.Op >= 0x8:
			if err := cr.control(m, h.Op, p); err != nil {
				return err
			}
		case !h.Fin || h.Op == wire.OpContinuation && len(m.msg) > 0:
			m.msg = append(m.msg, p...)
			if h.Fin {
				err := cr.message(m, m.msg)
				m.msg = m.msg[:0]
				if err != nil {
					return err
				}
			}
		default:
			if err := cr.message(m, p); err != nil {
				return err
			}
		}
	}
	m.r = copy(m.rbuf, m.rbuf[off:m.r])
	return nil
}

// loop reads m until the server closes it, the connection fails or the run
// stops.
func (cr *chatRun) loop(m *chatMember) {
	if m.sender >= 0 {
		cr.sendNext(m, cr.spec.InFlight)
	}
	for {
		if err := cr.parse(m); err != nil {
			if !errors.Is(err, errClosedByServer) {
				m.err = err
			}
			return
		}
		n, err := m.conn.Read(m.rbuf[m.r:])
		m.r += n
		if err != nil {
			if n > 0 && cr.parse(m) == errClosedByServer {
				return
			}
			if cr.phase.Load() != phaseStop {
				m.err = err
			}
			if m.err == nil {
				// A failed write stopped a sender, or left a ping
				// unanswered, before the run ended.
				m.err = m.writeErr
			}
			return
		}
	}
}

// Chat runs the chat row.
func Chat(ctx context.Context, s ChatSpec) (ChatResult, error) {
	var res ChatResult
	if s.Receivers < 0 || s.Senders < 1 || s.InFlight < 1 || s.Duration <= 0 {
		return res, errors.New("load: bad chat spec")
	}
	if s.Path == "" {
		s.Path = "/"
	}
	n := s.Receivers + s.Senders
	members := make([]*chatMember, n)
	var (
		dmu  sync.Mutex
		derr error
		dwg  sync.WaitGroup
		sem  = make(chan struct{}, 64)
	)
	// Receivers first, so that they are in the room before anyone talks.
	for i := range n {
		sem <- struct{}{}
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			defer func() { <-sem }()
			m, err := dialChat(ctx, s, i)
			dmu.Lock()
			defer dmu.Unlock()
			if err != nil {
				if derr == nil {
					derr = fmt.Errorf("connection %d: %w", i, err)
				}
				return
			}
			members[i] = m
		}()
	}
	dwg.Wait()
	defer func() {
		for _, m := range members {
			if m != nil {
				m.conn.Close()
			}
		}
	}()
	if derr != nil {
		return res, derr
	}
	cr := &chatRun{spec: s, base: time.Now(), senders: s.Senders}
	for i := range s.Senders {
		members[s.Receivers+i].sender = i
	}
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr.loop(m)
		}()
	}
	stopAll := func() {
		cr.phase.Store(phaseStop)
		for _, m := range members {
			m.conn.SetDeadline(time.Now().Add(time.Second))
		}
		wg.Wait()
	}
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	if err := sleep(s.Warmup); err != nil {
		stopAll()
		return res, err
	}
	var cpu0, cpu1 time.Duration
	var err error
	if s.ServerPID > 0 {
		if cpu0, err = ProcCPU(s.ServerPID); err != nil {
			stopAll()
			return res, err
		}
	}
	self0 := selfCPU()
	t0 := time.Now()
	cr.phase.Store(phaseMeasure)
	err = sleep(s.Duration)
	cr.phase.Store(phaseStop)
	elapsed := time.Since(t0)
	self1 := selfCPU()
	if s.ServerPID > 0 && err == nil {
		cpu1, err = ProcCPU(s.ServerPID)
	}
	stopAll()
	if err != nil {
		return res, err
	}

	var total hist.Histogram
	var perRecv []int64
	var broken error
	for _, m := range members {
		total.Merge(&m.hist)
		res.Deliveries += m.got
		switch {
		case m.closeCode == 1008:
			if m.sender >= 0 {
				res.SendersDropped++
			} else {
				res.Dropped++
			}
			if res.DropReason == "" {
				res.DropReason = m.reason
			}
		case m.closeCode != 0:
			res.Lost++
			if res.LostReason == "" {
				res.LostReason = fmt.Sprintf("close %d %q", m.closeCode, m.reason)
			}
		case m.err != nil:
			if errors.Is(m.err, errChatProtocol) && broken == nil {
				broken = m.err
			}
			res.Lost++
			if res.LostReason == "" {
				res.LostReason = m.err.Error()
			}
		case m.sender < 0:
			perRecv = append(perRecv, m.got)
		}
	}
	if broken != nil {
		return res, broken
	}
	res.Seconds = elapsed.Seconds()
	res.PerSec = float64(res.Deliveries) / res.Seconds
	res.Sent = cr.sent.Load()
	res.P50ns = int64(total.Quantile(0.50))
	res.P99ns = int64(total.Quantile(0.99))
	res.MaxNs = int64(total.Max())
	res.ClientUtil = float64(self1-self0) / float64(elapsed)
	if s.ServerPID > 0 {
		res.ServerCPUns = int64(cpu1 - cpu0)
		res.ServerUtil = float64(cpu1-cpu0) / float64(elapsed)
		if res.Deliveries > 0 {
			res.CPUPerDeliveryNs = float64(res.ServerCPUns) / float64(res.Deliveries)
		}
	}
	if len(perRecv) > 0 {
		slices.Sort(perRecv)
		res.RecvMin, res.RecvMedian, res.RecvMax = perRecv[0], perRecv[len(perRecv)/2], perRecv[len(perRecv)-1]
	}
	if res.Deliveries == 0 {
		return res, fmt.Errorf("load: chat: nothing delivered in %v (dropped %d, lost %d: %s)", elapsed.Round(time.Millisecond), res.Dropped+res.SendersDropped, res.Lost, res.LostReason)
	}
	return res, nil
}
