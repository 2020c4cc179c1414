package conformance

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
)

// The frame-level cases again, over HTTP/2 (RFC 8441): the WebSocket is a
// stream of an HTTP/2 connection, opened with an extended CONNECT, and
// ending it (END_STREAM) plays the part of closing TCP. The tester's end is
// net/http's own HTTP/2 client or server, whose stream streamEnd presents
// to rawPeer as a net.Conn.

// TestServerHTTP2 runs the cases against Accept with an echo loop, reached
// over HTTP/2.
func TestServerHTTP2(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiBlocking, runServerCaseHTTP2)
}

// TestServerHTTP2Events runs them against the event API's server over
// HTTP/2, where Start runs the event loop on the handler's goroutine.
func TestServerHTTP2Events(t *testing.T) {
	runSections(t, allSections(), serverOnly, apiEvents, runServerCaseHTTP2)
}

// TestClientHTTP2 runs the cases against Dial with an HTTP2Client, answered
// by an HTTP/2 server that allows extended CONNECT.
func TestClientHTTP2(t *testing.T) {
	runSections(t, allSections(), clientOnly, apiBlocking, runClientCaseHTTP2)
}

// streamEnd is the tester's end of an HTTP/2 stream as a net.Conn: reads
// come from body, writes go to write. A read deadline ends a Read without
// harming the stream, as on TCP; write deadlines are not needed here.
type streamEnd struct {
	body       io.ReadCloser
	write      func([]byte) (int, error)
	closeWrite func() error
	closeAll   func()

	once     sync.Once
	pieces   chan readChunk
	pending  []byte
	rerr     error
	mu       sync.Mutex
	deadline time.Time
	closed   chan struct{}
	closing  sync.Once
	eof      atomic.Bool // the tester ended the stream: reads report io.EOF
}

type readChunk struct {
	b   []byte
	err error
}

func newStreamEnd(body io.ReadCloser, write func([]byte) (int, error), closeWrite func() error, closeAll func()) *streamEnd {
	return &streamEnd{body: body, write: write, closeWrite: closeWrite, closeAll: closeAll,
		pieces: make(chan readChunk, 16), closed: make(chan struct{})}
}

func (s *streamEnd) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if s.rerr != nil {
		return 0, s.rerr
	}
	if s.eof.Load() {
		return 0, io.EOF
	}
	s.once.Do(func() {
		go func() {
			for {
				b := make([]byte, 32<<10)
				n, err := s.body.Read(b)
				select {
				case s.pieces <- readChunk{b[:n], err}:
				case <-s.closed:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	})
	s.mu.Lock()
	dl := s.deadline
	s.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		timer := time.NewTimer(time.Until(dl))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case c := <-s.pieces:
		s.rerr = resetAsECONNRESET(c.err)
		n := copy(p, c.b)
		s.pending = c.b[n:]
		if n == 0 {
			return 0, s.rerr
		}
		return n, nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	case <-s.closed:
		return 0, net.ErrClosed
	}
}

// resetAsECONNRESET reports a stream reset with CANCEL, which RFC 8441 §5
// makes the HTTP/2 form of a TCP reset, as one. net/http does not export
// its stream error type, so it is recognised by its text.
func resetAsECONNRESET(err error) error {
	if err != nil && strings.Contains(err.Error(), "stream error") && strings.Contains(err.Error(), "CANCEL") {
		return fmt.Errorf("%w (%v)", syscall.ECONNRESET, err)
	}
	return err
}

func (s *streamEnd) Write(p []byte) (int, error) { return s.write(p) }
func (s *streamEnd) CloseWrite() error           { return s.closeWrite() }

func (s *streamEnd) Close() error {
	s.closing.Do(func() {
		close(s.closed)
		s.closeAll()
	})
	return nil
}

func (s *streamEnd) LocalAddr() net.Addr  { return nil }
func (s *streamEnd) RemoteAddr() net.Addr { return nil }
func (s *streamEnd) SetDeadline(t time.Time) error {
	return s.SetReadDeadline(t)
}
func (s *streamEnd) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}
func (s *streamEnd) SetWriteDeadline(time.Time) error { return nil }

// startEchoServerHTTP2 serves the library's echo handler over TLS with
// HTTP/2 on 127.0.0.1.
func startEchoServerHTTP2(t *testing.T, opts *websocket.ServerOptions, a api) (*httptest.Server, chan error) {
	t.Helper()
	res := make(chan error, 4)
	srv := httptest.NewUnstartedServer(echoServerHandler(opts, a, res))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, res
}

// openServerConnHTTP2 opens an HTTP/2 connection to srv with net/http's
// client and the WebSocket as an extended CONNECT on it.
func openServerConnHTTP2(t *testing.T, srv *httptest.Server, name string, deflate bool, nt takeoverSide) *rawPeer {
	t.Helper()
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"h2"}
	addr := srv.Listener.Addr().String()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: readTimeout}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { tc.Close() })
	// http.Transport.RoundTrip refuses the :protocol pseudo-header; the
	// round tripper its TLSNextProto hook returns for a connection sends it.
	t1 := &http.Transport{ForceAttemptHTTP2: true}
	t1.CloseIdleConnections()
	t.Cleanup(t1.CloseIdleConnections)
	rt := t1.TLSNextProto["h2"](addr, tc)

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+addr+"/", pr)
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	if deflate {
		req.Header.Set("Sec-WebSocket-Extensions", deflateOffer(nt))
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("handshake: status %d, want 200", resp.StatusCode)
	}
	if v := resp.Header.Get("Sec-WebSocket-Accept"); v != "" {
		t.Fatalf("handshake over HTTP/2 has Sec-WebSocket-Accept %q (RFC 8441 5)", v)
	}
	end := newStreamEnd(resp.Body, pw.Write, pw.Close, func() {
		pw.Close()
		resp.Body.Close()
		cancel()
	})
	p := newRawPeer(end, bufio.NewReader(end), true, seedOf(name))
	p.endAfterClose = true
	if deflate {
		setupDeflatePeer(t, p, resp.Header.Values("Sec-WebSocket-Extensions"), nt)
	}
	return p
}

// runServerCaseHTTP2 runs c against the library's server side over HTTP/2.
func runServerCaseHTTP2(t *testing.T, c tcase, a api) {
	opts := &websocket.ServerOptions{MaxLength: c.maxLength, CloseTimeout: closeTimeout}
	if c.deflate {
		opts.Compression = deflateOptions()
	}
	srv, res := startEchoServerHTTP2(t, opts, a)
	p := openServerConnHTTP2(t, srv, t.Name(), c.deflate, c.noTakeover)
	runWire(t, p, c)
	p.conn.Close()
	checkLibResult(t, c, res, "server")
}

// startClientHTTP2 starts websocket.Dial over HTTP/2, plus the echo loop,
// against an HTTP/2 server whose handler answers the extended CONNECT with
// hs (its headers, status 200) and hands the stream to the tester.
func startClientHTTP2(t *testing.T, opts *websocket.ClientOptions, hs func(*http.Request) http.Header, name string, a api) *clientRun {
	t.Helper()
	type accepted struct {
		end *streamEnd
		req *http.Request
	}
	got := make(chan accepted, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Header.Get(":protocol") != "websocket" {
			http.Error(w, "want an extended CONNECT", http.StatusBadRequest)
			return
		}
		for k, v := range hs(r) {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		var wmu sync.Mutex
		handlerDone := make(chan struct{})
		write := func(p []byte) (int, error) {
			wmu.Lock()
			defer wmu.Unlock()
			select {
			case <-handlerDone:
				return 0, net.ErrClosed
			default:
			}
			n, err := w.Write(p)
			if err == nil {
				err = rc.Flush()
			}
			return n, err
		}
		quit := make(chan struct{})
		var quitOnce sync.Once
		stop := func() { quitOnce.Do(func() { close(quit) }) }
		// A server cannot half-close an HTTP/2 stream: ending its half
		// (END_STREAM) is returning from the handler, after which nothing
		// more is read, as after closing TCP. Reads then report io.EOF.
		var end *streamEnd
		end = newStreamEnd(r.Body, write, func() error { end.eof.Store(true); stop(); return nil }, stop)
		got <- accepted{end, r.Clone(context.Background())}
		select {
		case <-quit:
		case <-r.Context().Done():
		}
		wmu.Lock()
		close(handlerDone) // the stream ends when the handler returns
		wmu.Unlock()
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	h2 := &websocket.HTTP2Client{}
	t.Cleanup(h2.CloseIdleConnections)
	opts.HTTP2 = h2
	opts.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	run := &clientRun{res: make(chan error, 2), ws: make(chan *websocket.Conn, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/chat"
	go func() {
		c, resp, err := websocket.Dial(ctx, url, opts)
		if err == nil && resp.ProtoMajor != 2 {
			err = errors.New("dialled " + resp.Proto + ", want HTTP/2")
		}
		if err != nil {
			run.res <- &dialError{err}
			return
		}
		run.ws <- c
		if a == apiStream {
			run.res <- streamEcho(ctx, c)
		} else {
			run.res <- echoLoop(ctx, c)
		}
	}()
	select {
	case acc := <-got:
		run.conn, run.req = acc.end, acc.req
		run.peer = newRawPeer(acc.end, bufio.NewReader(acc.end), false, seedOf(name))
		t.Cleanup(func() { acc.end.Close() })
	case err := <-run.res:
		t.Fatalf("library client: %v", err)
	case <-time.After(readTimeout):
		t.Fatal("library client did not connect")
	}
	return run
}

// runClientCaseHTTP2 runs c against the library's client side over HTTP/2.
func runClientCaseHTTP2(t *testing.T, c tcase, a api) {
	opts := &websocket.ClientOptions{MaxLength: c.maxLength, CloseTimeout: closeTimeout}
	var deflateOK, fresh bool
	hs := func(*http.Request) http.Header { return http.Header{} }
	if c.deflate {
		opts.Compression = deflateOptions()
		hs = func(r *http.Request) http.Header {
			var ext string
			ext, deflateOK, fresh = deflateResponse(r)
			if !deflateOK {
				return http.Header{}
			}
			switch c.noTakeover {
			case takeoverLibrary:
				ext += "; client_no_context_takeover"
			case takeoverTester:
				if !fresh {
					ext += "; server_no_context_takeover"
				}
				fresh = true
			}
			return http.Header{"Sec-Websocket-Extensions": {ext}}
		}
	}
	run := startClientHTTP2(t, opts, hs, t.Name(), a)
	if c.deflate {
		if !deflateOK {
			t.Fatalf("client with Compression set made no usable permessage-deflate offer: %q", run.req.Header.Values("Sec-WebSocket-Extensions"))
		}
		run.peer.deflate, run.peer.fresh = true, fresh
		run.peer.inflateFresh = c.noTakeover == takeoverLibrary
	}
	runWire(t, run.peer, c)
	run.conn.Close()
	err := run.result(t, c.wait()+5*time.Second)
	var de *dialError
	if errors.As(err, &de) {
		t.Fatalf("client: %v", err)
	}
	checkLibErr(t, c, err, "client")
}
