package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/wsdriver/websocket/bench/internal/report"
)

// peerModules are the libraries whose versions the report names.
var peerModules = []string{
	"github.com/gorilla/websocket",
	"github.com/coder/websocket",
	"github.com/gobwas/ws",
	"github.com/lxzan/gws",
	"github.com/lesismal/nbio",
}

func machineInfo(pinned bool, c config, fileLimit uint64) report.Machine {
	m := report.Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		Peers:      map[string]string{},
		Date:       time.Now().UTC(),
		LoadBefore: loadAvg(),
		Pinned:     pinned,
		FileLimit:  fileLimit,
		Command:    "go run ./bench/cmd/wsbench",
	}
	if c.quick {
		m.Command += " -quick"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			for _, p := range peerModules {
				if d.Path == p {
					m.Peers[p] = d.Version
				}
			}
		}
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// runMicro runs the library's own micro-benchmarks in its module root.
func runMicro(ctx context.Context, root string) ([]report.Micro, error) {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "300ms", "-count", "1", ".")
	cmd.Dir = root
	// The library is measured on its own, not through the workspace.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	ms := report.ParseBench(string(out))
	if err != nil {
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return ms, &microError{err: err, out: tail}
	}
	return ms, nil
}

type microError struct {
	err error
	out string
}

func (e *microError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.out) }
