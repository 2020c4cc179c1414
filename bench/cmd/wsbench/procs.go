package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launcher starts the child processes of a report, pinned when taskset is
// available: servers on CPU 0, the load generator on CPU 1.
type launcher struct {
	exe     string
	taskset string
}

func newLauncher() (*launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l := &launcher{exe: exe}
	if p, err := exec.LookPath("taskset"); err == nil {
		l.taskset = p
	}
	return l, nil
}

func (l *launcher) command(ctx context.Context, cpu string, args ...string) *exec.Cmd {
	if l.taskset != "" {
		return exec.CommandContext(ctx, l.taskset, append([]string{"-c", cpu, l.exe}, args...)...)
	}
	return exec.CommandContext(ctx, l.exe, args...)
}

// limitedBuffer keeps the first few KiB of a child's stderr for error
// messages without letting a chatty child grow memory.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 8192 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

// child is a running server or idle-load process with a line-oriented
// stdout.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	exited chan struct{}
	stderr *limitedBuffer
	stdin  io.WriteCloser
}

func startChild(cmd *exec.Cmd, withStdin bool) (*child, error) {
	ch := &child{cmd: cmd, lines: make(chan string, 16), exited: make(chan struct{}), stderr: &limitedBuffer{}}
	cmd.Stderr = ch.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if withStdin {
		if ch.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			ch.lines <- s.Text()
		}
		close(ch.lines)
	}()
	go func() {
		cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// expect waits for a line starting with prefix and returns it.
func (c *child) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.exited
				return "", fmt.Errorf("process exited before %q: %s", prefix, c.stderr)
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-t.C:
			return "", fmt.Errorf("no %q within %v: %s", prefix, timeout, c.stderr)
		}
	}
}

func (c *child) send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// stop asks the process to end and kills it if it does not within 3 s.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// server is a running echo server process.
type server struct {
	*child
	addr string
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (l *launcher) startServer(ctx context.Context, name, mode string, extra ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := l.command(ctx, "0", append([]string{"-server", name, "-mode", mode, "-addr", addr}, extra...)...)
	ch, err := startChild(cmd, false)
	if err != nil {
		return nil, err
	}
	s := &server{child: ch, addr: addr}
	if err := s.waitListening(name); err != nil {
		return nil, err
	}
	return s, nil
}

// waitListening waits until the server accepts connections, for 10 s at
// most, and stops it if it does not.
func (s *server) waitListening(name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server %s exited: %s", name, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("server %s not listening after 10s: %s", name, s.stderr)
		}
	}
}

// memStats is what a settled server reports about its Go memory.
type memStats struct {
	heap, stack int64
}

// settle makes the server collect garbage and return free memory, waits
// until it has, and returns its heap and stack use.
func (s *server) settle() (memStats, error) {
	var m memStats
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return m, err
	}
	line, err := s.expect("gc", 20*time.Second)
	if err != nil {
		return m, err
	}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "heap":
			m.heap = n
		case "stack":
			m.stack = n
		}
	}
	return m, nil
}

// runLoad runs a load generator to completion and decodes its JSON result.
func (l *launcher) runLoad(ctx context.Context, mode string, spec any, timeout time.Duration, out any) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := l.command(ctx, "1", "-load", mode, "-spec", string(b))
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		msg := stderr.String()
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return json.Unmarshal(stdout, out)
}
