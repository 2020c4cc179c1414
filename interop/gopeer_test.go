package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// goConn is what the matrix needs from a Go peer library's connection.
type goConn interface {
	Read(ctx context.Context) (text bool, data []byte, err error)
	Write(ctx context.Context, text bool, data []byte) error
	// WriteFragments sends one message, each chunk written separately.
	WriteFragments(ctx context.Context, text bool, chunks [][]byte) error
	// Ping pings and waits for the pong, which a concurrent Read must see;
	// it returns the payload if the library lets the caller choose it.
	Ping(ctx context.Context) (payload []byte, err error)
	// CloseHandshake closes with code and reason and waits for the peer's
	// close frame.
	CloseHandshake(ctx context.Context, code int, reason string) (detail string, err error)
	// CloseInfo extracts the peer's close frame from a read error.
	CloseInfo(err error) (code int, reason string, ok bool)
	Subprotocol() string
	Abort()
}

// goLib is a Go WebSocket library used as a peer.
type goLib interface {
	name() string
	title() string
	module() string
	can(Capability) bool
	// dial connects; fragmenting asks for a configuration in which
	// WriteFragments really sends several frames, mode is the
	// permessage-deflate configuration (one the library can do).
	dial(ctx context.Context, url string, protocols []string, fragmenting bool, mode PeerDeflate) (goConn, error)
	accept(w http.ResponseWriter, r *http.Request, fragmenting bool, mode PeerDeflate) (goConn, error)
}

// goPeer runs a Go library in the test process, as client and as server.
type goPeer struct {
	lib     goLib
	version string
}

func (p *goPeer) Name() string          { return p.lib.name() }
func (p *goPeer) Title() string         { return p.lib.title() }
func (p *goPeer) Can(c Capability) bool { return p.lib.can(c) }
func (p *goPeer) HasServer() bool       { return true }
func (p *goPeer) Version() string       { return p.version }

func (p *goPeer) Setup(*testing.T) error {
	p.version = moduleVersion(p.lib.module())
	return nil
}

// moduleVersion asks the go command which version of the module this
// build selected (with the workspace, that is what really ran; test binaries
// carry no dependency list in their build information).
func moduleVersion(path string) string {
	out, err := exec.Command("go", "list", "-m", path).Output()
	if err != nil {
		return path + " (version unknown: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func (p *goPeer) RunClient(ctx context.Context, t *testing.T, srv *ourServer, cases []Case, report func(peerResult)) error {
	for _, c := range cases {
		cctx, cancel := context.WithTimeout(ctx, caseTimeout)
		var protocols []string
		if c.Kind == KindSubprotocol {
			protocols = offeredProtocols
		}
		res := peerResult{Case: c.Name}
		conn, err := p.lib.dial(cctx, "ws://"+srv.addr()+"/case/"+c.Name, protocols, c.Kind == KindEchoFragmented, c.peerDeflate())
		if err == nil {
			res.Detail, err = goPeerKind(cctx, conn, c.Kind)
			conn.Abort()
		}
		cancel()
		res.OK = err == nil
		if err != nil {
			res.Detail = err.Error()
		}
		report(res)
	}
	return nil
}

func (p *goPeer) StartServer(ctx context.Context, t *testing.T, report func(peerResult)) (map[PeerDeflate]string, func(), error) {
	bases := make(map[PeerDeflate]string)
	var servers []*httptest.Server
	for _, mode := range peerDeflateModes {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
			kind := Kind(r.PathValue("kind"))
			res := peerResult{Case: r.PathValue("name")}
			conn, err := p.lib.accept(w, r, kind == KindEchoFragmented, mode)
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, caseTimeout)
				res.Detail, err = goPeerKind(cctx, conn, kind)
				cancel()
				conn.Abort()
			}
			res.OK = err == nil
			if err != nil {
				res.Detail = err.Error()
			}
			report(res)
		})
		srv := httptest.NewServer(mux)
		servers = append(servers, srv)
		bases[mode] = "ws://" + srv.Listener.Addr().String()
	}
	stop := func() {
		for _, srv := range servers {
			srv.Close()
		}
	}
	return bases, stop, nil
}

// goPeerKind is the Go peers' half of a case, as Kind documents it; it
// mirrors python/peer.py and node/peer.js.
func goPeerKind(ctx context.Context, c goConn, kind Kind) (string, error) {
	switch kind {
	case KindEcho, KindEchoFragmented:
		text, data, err := c.Read(ctx)
		if err != nil {
			return "", fmt.Errorf("read: %w", err)
		}
		typ := "binary"
		if text {
			typ = "text"
		}
		sum := sha256.Sum256(data)
		if err := c.Write(ctx, true, fmt.Appendf(nil, "digest %s %d %x", typ, len(data), sum)); err != nil {
			return "", fmt.Errorf("write digest: %w", err)
		}
		if kind == KindEchoFragmented {
			chunks := splitChunks(data, 7)
			if len(chunks) < 2 {
				return "", fmt.Errorf("message of %d bytes too short to fragment", len(data))
			}
			err = c.WriteFragments(ctx, text, chunks)
		} else {
			err = c.Write(ctx, text, data)
		}
		if err != nil {
			return "", fmt.Errorf("echo: %w", err)
		}
		return goWaitClose(ctx, c, 1000, nil)
	case KindIdle:
		return goWaitClose(ctx, c, 1000, nil)
	case KindPingFromPeer:
		type result struct {
			detail string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			d, err := goWaitClose(ctx, c, 1000, nil)
			done <- result{d, err}
		}()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		payload, err := c.Ping(pctx)
		cancel()
		if err != nil {
			c.Abort()
			<-done
			return "", fmt.Errorf("ping: %w", err)
		}
		if err := c.Write(ctx, true, []byte(strings.TrimSpace("pong-ok "+hex.EncodeToString(payload)))); err != nil {
			return "", err
		}
		r := <-done
		return r.detail, r.err
	case KindSubprotocol:
		sp := c.Subprotocol()
		if err := c.Write(ctx, true, []byte("protocol "+sp)); err != nil {
			return "", err
		}
		if sp != expectedProtocol {
			return "", fmt.Errorf("subprotocol %q, want %q", sp, expectedProtocol)
		}
		return goWaitClose(ctx, c, 1000, nil)
	case KindCloseFromUs:
		return goWaitClose(ctx, c, int(closeFromUs.code), &closeFromUs.reason)
	case KindCloseFromPeer:
		return c.CloseHandshake(ctx, int(closeFromPeer.code), closeFromPeer.reason)
	}
	return "", fmt.Errorf("unknown kind %q", kind)
}

// goWaitClose reads, echoing, until the other side closes, and checks its
// close code (and reason, if given).
func goWaitClose(ctx context.Context, c goConn, code int, reason *string) (string, error) {
	for {
		text, data, err := c.Read(ctx)
		if err == nil {
			if err := c.Write(ctx, text, data); err != nil {
				return "", fmt.Errorf("echo: %w", err)
			}
			continue
		}
		gotCode, gotReason, ok := c.CloseInfo(err)
		if !ok {
			return "", fmt.Errorf("read ended without a close frame: %w", err)
		}
		if gotCode != code || (reason != nil && gotReason != *reason) {
			return "", fmt.Errorf("close %d %q, want %d", gotCode, gotReason, code)
		}
		return fmt.Sprintf("closed %d %q", gotCode, gotReason), nil
	}
}

// splitChunks cuts p into about n pieces at arbitrary bytes.
func splitChunks(p []byte, n int) [][]byte {
	size := max(1, (len(p)+n-1)/n)
	var out [][]byte
	for off := 0; off < len(p); off += size {
		out = append(out, p[off:min(off+size, len(p))])
	}
	return out
}

// deadline is ctx's deadline, or a bound for contexts without one.
func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(caseTimeout)
}

var errNoPong = errors.New("no pong")
