package websocket

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop tests run Python's websockets (10.x, as Debian ships it in
// /usr/bin/python3) against the library with permessage-deflate, both
// directions. websockets negotiates compression by default; each variant
// below also sets its parameters explicitly, to cover context takeover and
// window bits as another implementation reads them.

const pythonInteropPeer = `
import asyncio, random, sys
import websockets
from websockets.extensions import permessage_deflate as pmd

def factories(kind, server):
    F = pmd.ServerPerMessageDeflateFactory if server else pmd.ClientPerMessageDeflateFactory
    if kind == "default":
        return None
    if kind == "no-takeover":
        return [F(server_no_context_takeover=True, client_no_context_takeover=True)]
    if kind == "server-no-takeover":
        return [F(server_no_context_takeover=True)]
    if kind == "client-no-takeover":
        return [F(client_no_context_takeover=True)]
    if kind == "bits":
        return [F(server_max_window_bits=9, client_max_window_bits=10)]
    if kind == "bits-15":
        return [F(server_max_window_bits=15, client_max_window_bits=15)]
    raise SystemExit("unknown variant " + kind)

def messages():
    r = random.Random(7)
    json = '{"id":%d,"type":"chat","user":"ada","room":"lobby","text":"hello, compressed world"}'
    text = "".join("line %d of a long text that repeats itself %d\n" % (i, i % 13) for i in range(1500))
    return ["", "a", json % 1, "".join(json % i for i in range(30)), text,
            bytes(r.getrandbits(8) for _ in range(20000)), text[:5000], "héllo wörld ✓" * 300]

async def client(url, kind):
    ext = factories(kind, False)
    kw = {"extensions": ext} if ext else {}
    async with websockets.connect(url, max_size=2**24, **kw) as ws:
        for rnd in range(2):
            for m in messages():
                await ws.send(m)
                got = await ws.recv()
                if got != m:
                    raise SystemExit("echo mismatch for a message of %d" % len(m))
        print("EXT " + (ws.response_headers.get("Sec-WebSocket-Extensions") or ""), flush=True)

async def echo(ws, path=None):
    print("EXT " + (ws.response_headers.get("Sec-WebSocket-Extensions") or ""), file=sys.stderr, flush=True)
    async for m in ws:
        await ws.send(m)

async def server(kind):
    ext = factories(kind, True)
    kw = {"extensions": ext} if ext else {}
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=2**24, **kw) as srv:
        print("PORT %d" % srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

async def main():
    mode, kind = sys.argv[1], sys.argv[2]
    if mode == "client":
        await asyncio.wait_for(client(sys.argv[3], kind), 30)
    else:
        await asyncio.wait_for(server(kind), 60)

asyncio.run(main())
`

// pythonPeer writes the peer script and returns its path, skipping the
// test when /usr/bin/python3 has no websockets package.
func pythonPeer(t *testing.T) string {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import websockets").Run(); err != nil {
		t.Skipf("/usr/bin/python3 with the websockets package is needed: %v", err)
	}
	path := filepath.Join(t.TempDir(), "peer.py")
	if err := os.WriteFile(path, []byte(pythonInteropPeer), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythonMessages mirrors messages() in the script, for the Go client.
func pythonMessages() [][]byte {
	json := func(i int) string {
		return `{"id":` + strconv.Itoa(i) + `,"type":"chat","user":"ada","room":"lobby","text":"hello, compressed world"}`
	}
	var many, text strings.Builder
	for i := range 30 {
		many.WriteString(json(i))
	}
	for i := range 1500 {
		text.WriteString("line " + strconv.Itoa(i) + " of a long text that repeats itself " + strconv.Itoa(i%13) + "\n")
	}
	bin := make([]byte, 20000)
	for i := range bin {
		bin[i] = byte(i*7919 + i>>3)
	}
	return [][]byte{{}, []byte("a"), []byte(json(1)), []byte(many.String()), []byte(text.String()), bin,
		[]byte(text.String()[:5000]), []byte(strings.Repeat("héllo wörld ✓", 300))}
}

var pythonVariants = []string{"default", "no-takeover", "server-no-takeover", "client-no-takeover", "bits", "bits-15"}

// sniffListener records every accepted connection, so a server-side test
// can check the frames both ways.
type sniffListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*deflateSniff
}

func (l *sniffListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := &deflateSniff{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, s)
	l.mu.Unlock()
	return s, nil
}

// TestDeflateInteropPythonClient: Python's websockets client against our
// echo server, for each of its deflate variants and three of our server
// settings.
func TestDeflateInteropPythonClient(t *testing.T) {
	script := pythonPeer(t)
	servers := map[string]*CompressionOptions{
		"default":     {},
		"no-takeover": {NoContextTakeover: true, Level: 6},
		"bits":        {ServerMaxWindowBits: 10, ClientMaxWindowBits: 11, Threshold: -1},
	}
	for sname, sopts := range servers {
		for _, kind := range pythonVariants {
			t.Run(sname+"/python-"+kind, func(t *testing.T) {
				srv := httptest.NewUnstartedServer(echoHandler(&ServerOptions{Compression: sopts}))
				ln := &sniffListener{Listener: srv.Listener}
				srv.Listener = ln
				srv.Start()
				defer srv.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, "/usr/bin/python3", script, "client", kind, "ws"+strings.TrimPrefix(srv.URL, "http")+"/").CombinedOutput()
				if err != nil {
					t.Fatalf("python client: %v\n%s", err, out)
				}
				ext := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "EXT "))
				if !strings.HasPrefix(ext, "permessage-deflate") {
					t.Fatalf("compression not negotiated: %q", out)
				}
				t.Logf("agreed: %s", ext)
				ln.mu.Lock()
				sniff := ln.conns[0]
				ln.mu.Unlock()
				// Python compresses every message; ours follow the threshold.
				in, sent := wireParse(t, sniff.received(t)), wireParse(t, sniff.sent(t))
				if len(in) != 16 || len(sent) != 16 {
					t.Fatalf("%d messages in, %d out; want 16 each way", len(in), len(sent))
				}
				for i := range in {
					if len(in[i].payload) > 200 && !in[i].compressed {
						t.Fatalf("python message %d was not compressed", i)
					}
				}
				for i := 3; i < 16; i++ {
					if i%8 >= 3 && !sent[i].compressed {
						t.Fatalf("our message %d was not compressed", i)
					}
				}
			})
		}
	}
}

// TestDeflateInteropPythonServer: our client against Python's websockets
// echo server, for each of its deflate variants and three of our client
// settings.
func TestDeflateInteropPythonServer(t *testing.T) {
	script := pythonPeer(t)
	clients := map[string]*CompressionOptions{
		"default":     {},
		"no-takeover": {NoContextTakeover: true, Level: 9},
		"bits":        {ServerMaxWindowBits: 11, ClientMaxWindowBits: 9, Threshold: -1},
	}
	msgs := pythonMessages()
	for _, kind := range pythonVariants {
		t.Run("python-"+kind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/usr/bin/python3", script, "server", kind)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				cmd.Wait()
				if t.Failed() {
					t.Logf("python server stderr:\n%s", stderr.String())
				}
			}()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "PORT ") {
				t.Fatalf("python server did not start: %q %v", line, err)
			}
			url := "ws://127.0.0.1:" + strings.TrimSpace(strings.TrimPrefix(line, "PORT ")) + "/"
			for cname, copts := range clients {
				t.Run(cname, func(t *testing.T) {
					var sniff *deflateSniff
					c, resp, err := Dial(ctx, url, &ClientOptions{Compression: copts, MaxLength: 1 << 24, NetDialContext: sniffDialer(&sniff)})
					if err != nil {
						t.Fatal(err)
					}
					defer c.CloseNow()
					ext := resp.Header.Get("Sec-WebSocket-Extensions")
					if c.pmd == nil {
						t.Fatalf("compression not negotiated: %q", ext)
					}
					t.Logf("agreed: %s", ext)
					for round := range 2 {
						for i, m := range msgs {
							typ := TextMessage
							if i == 5 {
								typ = BinaryMessage
							}
							if err := c.Write(ctx, typ, m); err != nil {
								t.Fatal(err)
							}
							gotTyp, got, err := c.Read(ctx)
							if err != nil || gotTyp != typ || !bytes.Equal(got, m) {
								t.Fatalf("round %d message %d: %v %d bytes, %v; want %d", round, i, gotTyp, len(got), err, len(m))
							}
						}
					}
					if err := c.Close(StatusNormalClosure, ""); err != nil {
						t.Fatal(err)
					}
					p := c.pmd.params
					up := direction{threshold: copts.threshold(), noTakeover: p.clientNoContextTakeover, bits: p.clientMaxWindowBits}
					if own := deflateOptBits(copts.ClientMaxWindowBits); own != 0 {
						up.bits = deflateMinBits(up.bits, own)
					}
					all := append(append([][]byte{}, msgs...), msgs...)
					checkDirection(t, "client to python", wireParse(t, sniff.sent(t)), all, up)
					in := wireParse(t, sniff.received(t))
					for i := range in {
						if len(in[i].payload) > 200 && !in[i].compressed {
							t.Fatalf("python message %d was not compressed", i)
						}
					}
				})
			}
		})
	}
}
