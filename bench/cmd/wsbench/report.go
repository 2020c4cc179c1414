package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsdriver/websocket/bench/internal/load"
	"github.com/wsdriver/websocket/bench/internal/report"
	"github.com/wsdriver/websocket/bench/internal/servers"
)

// plan is what a report run does, after -quick or -smoke adjusted it.
type plan struct {
	rows     []report.Row
	servers  []string
	rounds   int
	duration time.Duration
	warmup   time.Duration
	memConns int
	bcConns  int
	bcRounds int
	micro    bool
	profile  bool
	// profServers are the servers profiled at the end of the run.
	profServers []string
	write       bool
	// patience, when set, lets an echo run go on past duration (up to
	// duration+patience) until a round trip has completed, so that a smoke
	// run on a busy machine proves the echo instead of timing out.
	patience time.Duration
}

func makePlan(c config) (plan, error) {
	p := plan{
		rows:     report.DefaultRows(),
		servers:  servers.Names(),
		rounds:   c.rounds,
		duration: c.duration,
		warmup:   c.warmup,
		memConns: c.memConns,
		bcConns:  c.bcConns,
		bcRounds: 5,
		micro:    c.micro,
		profile:  c.profile,
		write:    true,

		profServers: strings.Split(c.profServers, ","),
	}
	if c.quick {
		p.rounds, p.duration, p.warmup = 1, time.Second, 300*time.Millisecond
		p.bcRounds = 3
	}
	if c.smoke {
		// Every server and every kind of row, but tiny: this proves the
		// servers echo correctly and the checks hold, it measures nothing.
		// Three rows cover every code path of the load generator: text
		// (UTF-8), one large fragmented-or-not message, and pipelining.
		p.rounds, p.duration, p.warmup = 1, 300*time.Millisecond, 200*time.Millisecond
		p.memConns, p.bcConns, p.bcRounds = 50, 50, 2
		p.micro, p.write, p.profile = false, false, false
		p.patience = 30 * time.Second
		p.rows = slices.DeleteFunc(p.rows, func(r report.Row) bool {
			return r.ID != "100x1k-text" && r.ID != "10x64k" && r.ID != "10x128-p64"
		})
		for i := range p.rows {
			p.rows[i].Conns = min(p.rows[i].Conns, 20)
		}
	}
	if c.rows != "" {
		want := strings.Split(c.rows, ",")
		p.rows = slices.DeleteFunc(p.rows, func(r report.Row) bool { return !slices.Contains(want, r.ID) })
		if slices.Contains(want, "none") {
			p.rows = nil
		}
	}
	if c.only != "" {
		want := strings.Split(c.only, ",")
		for _, w := range want {
			if _, ok := servers.Lookup(w); !ok {
				return p, fmt.Errorf("unknown server %q (have %v)", w, servers.Names())
			}
		}
		p.servers = slices.DeleteFunc(p.servers, func(s string) bool { return !slices.Contains(want, s) })
	}
	if p.rounds < 1 {
		return p, fmt.Errorf("rounds must be at least 1")
	}
	return p, nil
}

// rotate gives each round a different server order, so no server always
// runs right after the same neighbour or at the same point of a drift.
func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

func sources(conns int) int {
	if conns > 2000 {
		return 8
	}
	return 1
}

func runReport(ctx context.Context, c config) error {
	if c.render != "" {
		b, err := os.ReadFile(c.render)
		if err != nil {
			return err
		}
		var res report.Results
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		return writeDocs(c.docs, &res)
	}
	start := time.Now()
	p, err := makePlan(c)
	if err != nil {
		return err
	}
	l, err := newLauncher()
	if err != nil {
		return err
	}
	raiseFileLimit(max(p.memConns, p.bcConns) + 1000)
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if l.taskset == "" {
		slog.Warn("taskset not found: servers and load generator are not pinned")
	}
	res := &report.Results{
		Machine:   machineInfo(l.taskset != "", c, lim.Cur),
		Rounds:    p.rounds,
		Duration:  p.duration,
		Warmup:    p.warmup,
		Rows:      p.rows,
		Servers:   p.servers,
		ServerDoc: map[string]string{},
	}
	for _, name := range p.servers {
		s, _ := servers.Lookup(name)
		res.ServerDoc[name] = s.Doc
	}
	failures := 0
	note := func(what string, err error) {
		if err != nil {
			failures++
			slog.Error("run failed", "what", what, "err", err)
		}
	}

	for _, row := range p.rows {
		for round := range p.rounds {
			for _, name := range rotate(p.servers, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := echoRun(ctx, l, name, row, p)
				run := report.EchoRun{Row: row.ID, Server: name, Round: round, Result: r}
				if err != nil {
					run.Err = err.Error()
				}
				note(row.ID+"/"+name, err)
				res.Echo = append(res.Echo, run)
				slog.Info("echo", "row", row.ID, "server", name, "round", round,
					"rt/s", int(r.PerSec), "p99", time.Duration(r.P99ns), "cpu/rt", time.Duration(r.CPUPerRTns),
					"srv%", int(100*r.ServerUtil), "cli%", int(100*r.ClientUtil),
					"conn-rt/s-min/p50/max", fmt.Sprintf("%.0f/%.0f/%.0f", r.PerConnMin, r.PerConnP50, r.PerConnMax))
			}
		}
	}
	if p.memConns > 0 {
		for round := range p.auxRounds() {
			for _, name := range rotate(p.servers, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				m, err := memRun(ctx, l, name, p.memConns)
				m.Round = round
				if err != nil {
					m.Err = err.Error()
				}
				note("mem/"+name, err)
				res.Mem = append(res.Mem, m)
				slog.Info("idle memory", "server", name, "round", round, "conns", m.Conns, "bytes/conn", int(m.PerConn))
			}
		}
	}
	if p.bcConns > 0 {
		var bnames []string
		for _, name := range p.servers {
			if s, _ := servers.Lookup(name); s.Broadcast {
				bnames = append(bnames, name)
			}
		}
		for round := range p.auxRounds() {
			for _, name := range rotate(bnames, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b, err := broadcastRun(ctx, l, name, p)
				run := report.BroadcastRun{Server: name, Round: round, Conns: p.bcConns, Result: b}
				if err != nil {
					run.Err = err.Error()
				}
				note("broadcast/"+name, err)
				res.Broadcast = append(res.Broadcast, run)
				slog.Info("broadcast", "server", name, "round", round, "last", time.Duration(b.MedianLastNs), "cpu", time.Duration(b.ServerCPUPerMsgNs))
			}
		}
	}
	if c.smoke {
		note("chat", chatSmoke(ctx, l, c))
	}
	if p.profile {
		res.Profiles = profiles(ctx, l, p)
	}
	if p.micro {
		slog.Info("micro-benchmarks", "root", c.root)
		res.Micro, err = runMicro(ctx, c.root)
		if err != nil {
			res.MicroErr = err.Error()
			slog.Error("micro-benchmarks failed", "err", err)
		}
	}
	res.Machine.LoadAfter = loadAvg()
	res.Elapsed = time.Since(start).Round(time.Second)

	if c.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if p.write {
		if err := writeDocs(c.docs, res); err != nil {
			return err
		}
		slog.Info("report written", "dir", c.docs, "elapsed", res.Elapsed)
	} else {
		slog.Info("done", "elapsed", time.Since(start).Round(time.Millisecond), "failures", failures)
	}
	if c.smoke && failures > 0 {
		return fmt.Errorf("%d runs failed", failures)
	}
	return nil
}

func echoRun(ctx context.Context, l *launcher, name string, row report.Row, p plan) (load.EchoResult, error) {
	var r load.EchoResult
	srv, err := l.startServer(ctx, name, "echo")
	if err != nil {
		return r, err
	}
	defer srv.stop()
	spec := load.EchoSpec{
		Addr: srv.addr, Conns: row.Conns, Payload: row.Payload, InFlight: row.InFlight, Text: row.Text,
		Warmup: p.warmup, Duration: p.duration, ServerPID: srv.pid(), Sources: sources(row.Conns),
	}
	if p.patience > 0 {
		spec.MinRoundTrips, spec.MaxDuration = 1, p.duration+p.patience
	}
	err = l.runLoad(ctx, "echo", spec, p.warmup+p.duration+p.patience+60*time.Second, &r)
	return r, err
}

// profiles runs each of p.profServers once more on two echo rows and the
// broadcast row under the CPU profiler, and once with idle connections
// under the heap profiler, and keeps the top lines of each.
func profiles(ctx context.Context, l *launcher, p plan) []report.Profile {
	dir, err := os.MkdirTemp("", "wsbench-prof")
	if err != nil {
		return nil
	}
	defer os.RemoveAll(dir)
	var out []report.Profile
	for _, name := range p.profServers {
		if !slices.Contains(p.servers, name) {
			continue
		}
		out = append(out, profileServer(ctx, l, p, dir, name)...)
	}
	return out
}

func profileServer(ctx context.Context, l *launcher, p plan, dir, name string) []report.Profile {
	var out []report.Profile
	for _, row := range report.DefaultRows() {
		if row.ID != "100x1k-p32" && row.ID != "1000x1k" {
			continue
		}
		file := filepath.Join(dir, name+"-"+row.ID+".cpu")
		srv, err := l.startServer(ctx, name, "echo", "-cpuprofile", file)
		if err != nil {
			slog.Error("profile", "err", err)
			continue
		}
		spec := load.EchoSpec{
			Addr: srv.addr, Conns: row.Conns, Payload: row.Payload, InFlight: row.InFlight,
			Warmup: p.warmup, Duration: p.duration, ServerPID: srv.pid(), Sources: sources(row.Conns),
		}
		var r load.EchoResult
		err = l.runLoad(ctx, "echo", spec, p.warmup+p.duration+60*time.Second, &r)
		srv.stop()
		if err != nil {
			slog.Error("profile", "err", err)
			continue
		}
		out = append(out, report.Profile{
			Title: fmt.Sprintf("CPU of %s, %s (`%s`): %s round trips/s while profiled", name, row.Title(), row.ID, fmt.Sprint(int(r.PerSec))),
			Text:  pprofTop(ctx, l.exe, file, "-top", "-nodecount=25"),
		})
	}
	if s, _ := servers.Lookup(name); s.Broadcast && p.bcConns > 0 {
		file := filepath.Join(dir, name+"-broadcast.cpu")
		r, err := broadcastRun(ctx, l, name, p, "-cpuprofile", file)
		if err != nil {
			slog.Error("profile", "err", err)
		} else {
			out = append(out, report.Profile{
				Title: fmt.Sprintf("CPU of %s, broadcast 128 B to %d connections: %v to the last receiver while profiled", name, p.bcConns, time.Duration(r.MedianLastNs)),
				Text:  pprofTop(ctx, l.exe, file, "-top", "-nodecount=25"),
			})
		}
	}
	if p.memConns > 0 {
		file := filepath.Join(dir, name+".heap")
		if _, err := memRun(ctx, l, name, p.memConns, "-memprofile", file); err != nil {
			slog.Error("profile", "err", err)
		} else {
			out = append(out, report.Profile{
				Title: fmt.Sprintf("Live heap of %s with %d idle connections (sampled; divide by the connection count for bytes per connection)", name, p.memConns),
				Text:  pprofTop(ctx, l.exe, file, "-top", "-nodecount=12", "-sample_index=inuse_space"),
			})
		}
	}
	return out
}

func pprofTop(ctx context.Context, exe, file string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), exe, file)...)
	out, err := cmd.Output()
	if err != nil {
		return "pprof failed: " + err.Error()
	}
	// Drop the header lines that name temporary files.
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// memRun measures the server's resident memory before and after opening n
// idle connections, each time after the server collected garbage and gave
// free pages back, then checks every connection still echoes.
// auxRounds is the number of rounds of the memory and broadcast rows: at
// most three, as they vary little between runs (a few percent), unlike the
// echo rows, whose runs on a shared machine fall into a fast and a slow
// mode and need more rounds for each server to show its undisturbed cost.
func (p plan) auxRounds() int { return min(p.rounds, 3) }

// idleRest is how long the connections of the idle memory row stay idle
// before the server's memory is read.
const idleRest = 3 * time.Second

func memRun(ctx context.Context, l *launcher, name string, n int, extra ...string) (report.MemRun, error) {
	m := report.MemRun{Server: name, Conns: n}
	srv, err := l.startServer(ctx, name, "echo", extra...)
	if err != nil {
		return m, err
	}
	defer srv.stop()
	before, err := srv.settle()
	if err != nil {
		return m, err
	}
	if m.RSSBefore, err = load.ProcRSS(srv.pid()); err != nil {
		return m, err
	}
	spec, _ := json.Marshal(idleSpec{Addr: srv.addr, Conns: n, Sources: sources(n)})
	lctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cl, err := startChild(l.command(lctx, "1", "-load", "idle", "-spec", string(spec)), true)
	if err != nil {
		return m, err
	}
	defer cl.stop()
	if _, err := cl.expect("connected", 2*time.Minute); err != nil {
		return m, err
	}
	// Idle means idle for a while: let handshakes finish and every server
	// bring its idle connections to rest (ours parks an event loop after one
	// to two seconds without a message) before reading its memory.
	time.Sleep(idleRest)
	after, err := srv.settle()
	if err != nil {
		return m, err
	}
	if m.RSSAfter, err = load.ProcRSS(srv.pid()); err != nil {
		return m, err
	}
	m.PerConn = float64(m.RSSAfter-m.RSSBefore) / float64(n)
	m.HeapPerConn = float64(after.heap-before.heap) / float64(n)
	m.StackPerConn = float64(after.stack-before.stack) / float64(n)
	if err := cl.send("verify"); err != nil {
		return m, err
	}
	line, err := cl.expect("verif", time.Minute)
	if err != nil {
		return m, err
	}
	if line != "verified" {
		return m, fmt.Errorf("idle connections no longer served: %s", line)
	}
	cl.send("close")
	return m, nil
}

func broadcastRun(ctx context.Context, l *launcher, name string, p plan, extra ...string) (load.BroadcastResult, error) {
	var r load.BroadcastResult
	srv, err := l.startServer(ctx, name, "broadcast", extra...)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	spec := load.BroadcastSpec{
		Addr: srv.addr, Conns: p.bcConns, Payload: 128, Rounds: p.bcRounds, Warmup: 1,
		Sources: sources(p.bcConns), ServerPID: srv.pid(), Timeout: 30 * time.Second,
	}
	err = l.runLoad(ctx, "broadcast", spec, 3*time.Minute, &r)
	return r, err
}

func writeDocs(dir string, res *report.Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := report.Markdown(res)
	if err := os.WriteFile(filepath.Join(dir, "BENCHMARKS.md"), []byte(md), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "benchmarks.png"))
	if err != nil {
		return err
	}
	if err := report.WritePNG(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// raiseFileLimit lifts RLIMIT_NOFILE so the children (which inherit it) can
// hold n connections; raising the hard limit works only with privileges, so a
// failure is reported and the run goes on.
func raiseFileLimit(n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur >= uint64(n) {
		return
	}
	want := lim
	want.Cur = uint64(n)
	if want.Max < want.Cur {
		want.Max = want.Cur
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		slog.Warn("cannot raise the open file limit; large connection counts may fail", "want", n, "have", lim.Cur, "err", err)
	}
}
