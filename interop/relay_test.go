package interop

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// sniffRelay stands in front of our event-loop server so that its
// connections can be sniffed: that backend hands the library a net.Conn of
// its own (which the event API recognises), so it cannot be wrapped the
// way the net/http backend's listener is. The relay is a TCP hop on
// 127.0.0.1 that copies bytes both ways unchanged, half-closes passed
// through, and feeds them to a sniffConn on the way.
//
// It routes each connection by its first request line: "GET /case/..."
// (a WebSocket case) goes to the event-loop server, anything else (the
// browser's page, its case list and its POSTed verdicts) to the net/http
// server of the same column, which serves those. Chromium opens a new
// connection for every WebSocket, never one from its HTTP pool, so a
// connection's first request decides for its whole life.
type sniffRelay struct {
	ln             net.Listener
	wsAddr, hcAddr string // event-loop server, net/http server

	mu    sync.Mutex
	conns map[string]*sniffConn // by the relay's address toward wsAddr, as r.RemoteAddr shows it
	live  map[net.Conn]struct{} // both ends of every relayed connection
	wg    sync.WaitGroup
}

func newSniffRelay(wsAddr, hcAddr string) (*sniffRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &sniffRelay{ln: ln, wsAddr: wsAddr, hcAddr: hcAddr, conns: make(map[string]*sniffConn), live: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *sniffRelay) addr() string { return r.ln.Addr().String() }

// sniffFor returns the sniffer of the relayed connection whose upstream
// end is remote (a request's RemoteAddr), or nil.
func (r *sniffRelay) sniffFor(remote string) *sniffConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[remote]
}

// close stops accepting, drops the connections still relayed (the
// servers behind are closed first) and waits for their goroutines.
func (r *sniffRelay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.live {
		c.Close()
	}
	r.live = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// track adds c to the live connections, or closes it and reports false
// once close has begun.
func (r *sniffRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		c.Close()
		return false
	}
	r.live[c] = struct{}{}
	return true
}

func (r *sniffRelay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.live, c)
	r.mu.Unlock()
}

func (r *sniffRelay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.relay(c.(*net.TCPConn))
		}()
	}
}

// caseRequest is how a WebSocket case's request starts.
const caseRequest = "GET /case/"

func (r *sniffRelay) relay(down *net.TCPConn) {
	if !r.track(down) {
		return
	}
	defer r.untrack(down)
	defer down.Close()
	br := bufio.NewReaderSize(down, 64<<10)
	down.SetReadDeadline(time.Now().Add(caseTimeout))
	first, err := br.Peek(len(caseRequest))
	down.SetReadDeadline(time.Time{})
	if err != nil {
		return // closed before a request (a browser's spare connection)
	}
	target := r.hcAddr
	if string(first) == caseRequest {
		target = r.wsAddr
	}
	upc, err := net.DialTimeout("tcp", target, caseTimeout)
	if err != nil {
		return
	}
	up := upc.(*net.TCPConn)
	if !r.track(up) {
		return
	}
	defer r.untrack(up)
	defer up.Close()
	sn := &sniffConn{Conn: up, outDone: make(chan struct{})}
	key := up.LocalAddr().String()
	r.mu.Lock()
	r.conns[key] = sn
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, key)
		r.mu.Unlock()
	}()

	// Each direction feeds its scanner before passing the bytes on, so
	// that what one end has received the scanner has seen.
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		copyFeed(up, br, down, &sn.in)
	}()
	copyFeed(down, up, up, &sn.out)
	close(sn.outDone)
	<-inDone
}

// copyFeed copies src (read from srcConn) to dst, feeding f, until src
// ends; then it half-closes dst, as the end that sent to src did. A failed
// write ends both directions.
func copyFeed(dst *net.TCPConn, src io.Reader, srcConn net.Conn, f *frameScanner) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.feed(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				srcConn.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.CloseWrite()
			} else {
				// A reset or a closed socket: end the other side too,
				// rather than pretend it ended cleanly.
				dst.SetLinger(0)
				dst.Close()
			}
			return
		}
	}
}
