package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procPeer is a peer run as a program speaking the peer protocol of
// python/peer.py and node/peer.js: arguments "server" or "client URL
// KIND:NAME:MODE..." (MODE a PeerDeflate), one JSON object per line on
// stdout.
type procPeer struct {
	name, title string
	argv        []string // program and script
	check       func() (runtime string, err error)
	can         map[Capability]bool

	runtime string
	version string
}

func pythonPeer() *procPeer {
	return &procPeer{
		name:  "python-websockets",
		title: "Python websockets",
		// Debian's interpreter: the one with the websockets package.
		argv: []string{"/usr/bin/python3", "python/peer.py"},
		check: func() (string, error) {
			out, err := exec.Command("/usr/bin/python3", "-c",
				"import sys, websockets; print('Python', sys.version.split()[0])").CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("/usr/bin/python3 with websockets: %v: %s", err, bytes.TrimSpace(out))
			}
			return strings.TrimSpace(string(out)), nil
		},
		can: map[Capability]bool{CanSendFragments: true, CanPing: true,
			CanContextTakeover: true, CanAskNoContextTakeover: true, CanWindowBits: true, CanAskWindowBits: true,
			CanSendCompressedFragments: true},
	}
}

func nodePeer() *procPeer {
	return &procPeer{
		name:  "node-ws",
		title: "Node ws",
		argv:  []string{"node", "node/peer.js"},
		check: func() (string, error) {
			if _, err := os.Stat("node/node_modules/ws/package.json"); err != nil {
				return "", fmt.Errorf("ws is not installed in interop/node (npm ci): %v", err)
			}
			out, err := exec.Command("node", "--version").Output()
			if err != nil {
				return "", fmt.Errorf("node: %v", err)
			}
			return "Node " + strings.TrimSpace(string(out)), nil
		},
		can: map[Capability]bool{CanSendFragments: true, CanPing: true,
			CanContextTakeover: true, CanAskNoContextTakeover: true, CanWindowBits: true, CanAskWindowBits: true,
			CanSendCompressedFragments: true},
	}
}

func (p *procPeer) Name() string          { return p.name }
func (p *procPeer) Title() string         { return p.title }
func (p *procPeer) Can(c Capability) bool { return p.can[c] }
func (p *procPeer) HasServer() bool       { return true }

func (p *procPeer) Version() string {
	if p.version == "" {
		return p.runtime
	}
	return p.version + " (" + p.runtime + ")"
}

func (p *procPeer) Setup(*testing.T) error {
	rt, err := p.check()
	p.runtime = rt
	return err
}

func (p *procPeer) RunClient(ctx context.Context, t *testing.T, srv *ourServer, cases []Case, report func(peerResult)) error {
	args := []string{"client", "ws://" + srv.addr() + "/case"}
	for _, c := range cases {
		args = append(args, string(c.Kind)+":"+c.Name+":"+string(c.peerDeflate()))
	}
	pr, err := startProc(t, p.argv, args, report)
	if err != nil {
		return err
	}
	if v, err := pr.ready(ctx); err == nil {
		p.version = v.Version
	}
	return pr.wait(ctx)
}

func (p *procPeer) StartServer(ctx context.Context, t *testing.T, report func(peerResult)) (map[PeerDeflate]string, func(), error) {
	pr, err := startProc(t, p.argv, []string{"server"}, report)
	if err != nil {
		return nil, nil, err
	}
	ready, err := pr.ready(ctx)
	if err != nil {
		pr.kill()
		return nil, nil, err
	}
	p.version = ready.Version
	stop := func() {
		pr.stdin.Close() // the peer's signal to exit
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pr.wait(wctx); err != nil {
			t.Logf("%s server: %v", p.title, err)
		}
	}
	bases := make(map[PeerDeflate]string)
	for mode, port := range ready.Ports {
		bases[mode] = fmt.Sprintf("ws://127.0.0.1:%d", port)
	}
	return bases, stop, nil
}

// readyLine is a peer program's first line; a server has one listener per
// PeerDeflate mode.
type readyLine struct {
	Ready   bool                `json:"ready"`
	Ports   map[PeerDeflate]int `json:"ports"`
	Version string              `json:"version"`
}

// proc is a running peer program, in its own process group so that it can
// be ended with everything it started.
type proc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	readyCh chan readyLine
	exited  chan struct{}
	waitErr error
	stderr  *limitedBuffer
}

func startProc(t *testing.T, argv, args []string, report func(peerResult)) (*proc, error) {
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, readyCh: make(chan readyLine, 1), exited: make(chan struct{}),
		stderr: &limitedBuffer{max: 64 << 10}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(p.kill)
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var probe map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &probe) != nil {
				t.Logf("%s: %s", argv[len(argv)-1], sc.Text())
				continue
			}
			if _, ok := probe["ready"]; ok {
				var r readyLine
				json.Unmarshal(sc.Bytes(), &r)
				select {
				case p.readyCh <- r:
				default:
				}
				continue
			}
			var r peerResult
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				report(r)
			}
		}
	}()
	go func() {
		<-lines // Wait closes stdout: read it all first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) ready(ctx context.Context) (readyLine, error) {
	select {
	case r := <-p.readyCh:
		return r, nil
	case <-p.exited:
		return readyLine{}, fmt.Errorf("peer exited before it was ready: %v; stderr: %s", p.waitErr, p.stderr)
	case <-ctx.Done():
		return readyLine{}, fmt.Errorf("peer not ready: %w", ctx.Err())
	}
}

// wait waits for the program to exit, killing it if ctx ends first.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("peer exited: %v; stderr: %s", p.waitErr, p.stderr)
		}
		return nil
	case <-ctx.Done():
		p.kill()
		<-p.exited
		return fmt.Errorf("peer killed: %w; stderr: %s", ctx.Err(), p.stderr)
	}
}

// kill ends the program's process group, if it still runs.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// limitedBuffer keeps the first max bytes written to it, for diagnostics.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return "(empty)"
	}
	return s
}
