package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsdriver/websocket/bench/internal/chatref"
	"github.com/wsdriver/websocket/bench/internal/load"
)

// chatFlags are the flags of the chat fan-out comparison (-chat).
type chatFlags struct {
	run       bool
	server    string
	args      chatArgList
	targets   string
	dir       string
	receivers int
	senders   int
	inFlight  int
	text      int
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	profile   bool
}

// chatArgList is -chat-args: repeatable, each value one configuration of
// cmd/chat to measure.
type chatArgList []string

func (l *chatArgList) String() string { return strings.Join(*l, " | ") }

func (l *chatArgList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// chatBaseArgs are the cmd/chat flags every measured run gets, before the
// -chat-args of the configuration (which can override them): the chat's
// defaults would throttle or pad the benchmark, not the fan-out it measures.
//
//	-rate 0          the default 5 messages/s per connection would cap each sender
//	-history 0       no replay of old messages to the 1,000 newcomers
//	-data ""         history in memory only: no database file to open
//	-announce-max 1  no 1,000 join notices to 1,000 members while connecting
//	-log-level warn  no log line per connection; drops are still logged
//
// -queue stays at its default, 256, the same as the reference's channel,
// and -max-message at 4096, far above the row's messages.
var chatBaseArgs = []string{"-rate", "0", "-history", "0", "-data", "", "-announce-max", "1", "-log-level", "warn"}

// sigProfile asks a chat built with profileHook to write its profile.
const sigProfile = syscall.SIGUSR2

// chatTarget is one server of the comparison.
type chatTarget struct {
	Name string   `json:"name"`
	Ref  bool     `json:"ref"`  // the gorilla reference, else cmd/chat
	Args []string `json:"args"` // extra cmd/chat flags
}

// chatRunResult is one run of one target.
type chatRunResult struct {
	Target string          `json:"target"`
	Round  int             `json:"round"`
	Result load.ChatResult `json:"result"`
	Err    string          `json:"err,omitempty"`
}

// runChatServer runs the reference chat in this process (-chat-server).
func runChatServer(ctx context.Context, c config) error {
	if c.chat.server != "gorilla" {
		return fmt.Errorf("unknown chat server %q (have gorilla)", c.chat.server)
	}
	return chatref.Run(ctx, c.addr)
}

// chatTargets turns -chat-targets and -chat-args into the list of servers.
func chatTargets(f chatFlags) ([]chatTarget, error) {
	var out []chatTarget
	for _, t := range strings.Split(f.targets, ",") {
		switch strings.TrimSpace(t) {
		case "gorilla":
			out = append(out, chatTarget{Name: "gorilla-chat", Ref: true})
		case "chat":
			args := []string(f.args)
			if len(args) == 0 {
				args = []string{""}
			}
			for _, a := range args {
				name := "chat"
				if a = strings.TrimSpace(a); a != "" {
					name += " " + a
				}
				out = append(out, chatTarget{Name: name, Args: strings.Fields(a)})
			}
		case "":
		default:
			return nil, fmt.Errorf("-chat-targets: unknown %q (have gorilla, chat)", t)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-chat-targets: nothing to run")
	}
	return out, nil
}

// profileHook is compiled into a second build of cmd/chat, through the go
// command's -overlay (the chat's sources are not touched): with
// WSBENCH_CPUPROFILE set, the process profiles its CPU from the start until
// SIGUSR2, then writes the file and says so on stdout.
const profileHook = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func init() {
	path := os.Getenv("WSBENCH_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench profile:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench profile:", err)
		return
	}
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		<-usr2
		pprof.StopCPUProfile()
		f.Close()
		fmt.Println("wsbench-profile-written")
	}()
}
`

// buildChat builds cmd/chat into dir, and with the profile hook as well
// when profile is set; it returns the two binaries' paths.
func buildChat(ctx context.Context, chatDir, dir string, profile bool) (plain, prof string, err error) {
	abs, err := filepath.Abs(chatDir)
	if err != nil {
		return "", "", err
	}
	build := func(out string, extra ...string) error {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, extra...), "-o", out, ".")...)
		cmd.Dir = abs
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", abs, err, b)
		}
		return nil
	}
	plain = filepath.Join(dir, "chat")
	if err := build(plain); err != nil {
		return "", "", err
	}
	if !profile {
		return plain, "", nil
	}
	hook := filepath.Join(dir, "wsbench_profile_hook.go")
	if err := os.WriteFile(hook, []byte(profileHook), 0o644); err != nil {
		return "", "", err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(abs, "zz_wsbench_profile_hook.go"): hook}})
	ovFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		return "", "", err
	}
	prof = filepath.Join(dir, "chat-prof")
	if err := build(prof, "-overlay", ovFile); err != nil {
		return "", "", err
	}
	return plain, prof, nil
}

// startChat starts one target pinned to CPU 0 and waits until it listens.
func (l *launcher) startChat(ctx context.Context, t chatTarget, bin string, env ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	if t.Ref {
		cmd = l.command(ctx, "0", "-chat-server", "gorilla", "-addr", addr)
	} else {
		args := append(append([]string{"-addr", addr}, chatBaseArgs...), t.Args...)
		if l.taskset != "" {
			cmd = exec.CommandContext(ctx, l.taskset, append([]string{"-c", "0", bin}, args...)...)
		} else {
			cmd = exec.CommandContext(ctx, bin, args...)
		}
		// Set what the chat would otherwise re-exec itself to get (see
		// cmd/chat/h2.go), so the measured process is the one started here.
		cmd.Env = append(append(os.Environ(), "GODEBUG=http2xconnect=1"), env...)
	}
	ch, err := startChild(cmd, false)
	if err != nil {
		return nil, err
	}
	s := &server{child: ch, addr: addr}
	if err := s.waitListening(t.Name); err != nil {
		return nil, err
	}
	return s, nil
}

// chatSpec is the load of one run.
func (f chatFlags) spec(srv *server) load.ChatSpec {
	return load.ChatSpec{
		Addr: srv.addr, Path: "/chat", Receivers: f.receivers, Senders: f.senders, InFlight: f.inFlight,
		Text: f.text, Warmup: f.warmup, Duration: f.duration, ServerPID: srv.pid(),
		Sources: sources(f.receivers + f.senders),
	}
}

// chatRun measures one target once.
func chatRun(ctx context.Context, l *launcher, t chatTarget, bin string, f chatFlags) (load.ChatResult, error) {
	var r load.ChatResult
	srv, err := l.startChat(ctx, t, bin)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	err = l.runLoad(ctx, "chat", f.spec(srv), f.warmup+f.duration+3*time.Minute, &r)
	return r, err
}

// runChatReport is -chat: every target, f.rounds times in rotating order,
// each run a fresh server; then medians, and a CPU profile of cmd/chat.
func runChatReport(ctx context.Context, c config) error {
	f := c.chat
	targets, err := chatTargets(f)
	if err != nil {
		return err
	}
	if f.rounds < 1 || f.senders < 1 || f.inFlight < 1 || f.receivers < 0 {
		return errors.New("-chat-rounds, -chat-senders and -chat-in-flight must be at least 1")
	}
	l, err := newLauncher()
	if err != nil {
		return err
	}
	if l.taskset == "" {
		slog.Warn("taskset not found: servers and load generator are not pinned")
	}
	raiseFileLimit(f.receivers + f.senders + 1000)
	dir, err := os.MkdirTemp("", "wsbench-chat")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var bin, profBin string
	if slices.ContainsFunc(targets, func(t chatTarget) bool { return !t.Ref }) {
		slog.Info("building cmd/chat", "dir", f.dir)
		if bin, profBin, err = buildChat(ctx, f.dir, dir, f.profile); err != nil {
			return err
		}
	}
	var runs []chatRunResult
	failures := 0
	order := make([]int, len(targets))
	for i := range order {
		order[i] = i
	}
	for round := range f.rounds {
		for _, i := range rotateInts(order, round) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t := targets[i]
			r, err := chatRun(ctx, l, t, bin, f)
			run := chatRunResult{Target: t.Name, Round: round, Result: r}
			if err != nil {
				run.Err = err.Error()
				failures++
				slog.Error("chat run failed", "target", t.Name, "round", round, "err", err)
			} else {
				slog.Info("chat", "target", t.Name, "round", round, "deliveries/s", int(r.PerSec),
					"cpu/delivery", time.Duration(r.CPUPerDeliveryNs), "p50", time.Duration(r.P50ns), "p99", time.Duration(r.P99ns),
					"dropped", r.Dropped, "senders_dropped", r.SendersDropped, "lost", r.Lost, "srv%", int(100*r.ServerUtil), "cli%", int(100*r.ClientUtil))
			}
			runs = append(runs, run)
		}
	}
	var prof string
	if profBin != "" {
		for _, t := range targets {
			if t.Ref {
				continue
			}
			p, err := chatProfile(ctx, l, t, profBin, dir, f)
			if err != nil {
				slog.Error("chat profile", "target", t.Name, "err", err)
				continue
			}
			prof += p
		}
	}
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"spec": f.describe(), "targets": targets, "runs": runs}, "", "  ")
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	fmt.Print(chatMarkdown(f, targets, runs))
	fmt.Print(prof)
	if failures > 0 {
		return fmt.Errorf("%d chat runs failed", failures)
	}
	return nil
}

// chatProfile runs t once more, built with the profile hook, and returns
// the top of its CPU profile. The profile covers the whole load run
// (connecting included, a small part of it).
func chatProfile(ctx context.Context, l *launcher, t chatTarget, bin, dir string, f chatFlags) (string, error) {
	file := filepath.Join(dir, "chat.cpu")
	srv, err := l.startChat(ctx, t, bin, "WSBENCH_CPUPROFILE="+file)
	if err != nil {
		return "", err
	}
	defer srv.stop()
	var r load.ChatResult
	if err := l.runLoad(ctx, "chat", f.spec(srv), f.warmup+f.duration+3*time.Minute, &r); err != nil {
		return "", err
	}
	if err := srv.cmd.Process.Signal(sigProfile); err != nil {
		return "", err
	}
	if _, err := srv.expect("wsbench-profile-written", 30*time.Second); err != nil {
		return "", err
	}
	top := pprofTop(ctx, bin, file, "-top", "-nodecount=30")
	return fmt.Sprintf("\n### CPU profile of `%s` (%d deliveries/s while profiled)\n\n```\n%s\n```\n", t.Name, int(r.PerSec), top), nil
}

func rotateInts(s []int, k int) []int {
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// describe is the row's parameters, for the report and the JSON file.
func (f chatFlags) describe() string {
	return fmt.Sprintf("%d receivers, %d senders x %d in flight, %d-byte texts, one room; %v warm-up, %v measured; %d rounds",
		f.receivers, f.senders, f.inFlight, f.text, f.warmup, f.duration, f.rounds)
}

// chatMarkdown renders the medians (and ranges) of each target and the
// ratios the target of issue 13 is judged on.
func chatMarkdown(f chatFlags, targets []chatTarget, runs []chatRunResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Chat fan-out: %s\n\n", f.describe())
	b.WriteString("| server | deliveries/s | server CPU/delivery | p50 | p99 | p99/p50 | receivers dropped (1008) | senders dropped | other losses | per-receiver deliveries min/median/max | server core busy | runs ok |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	medPerSec := map[string]float64{}
	for _, t := range targets {
		var ok []load.ChatResult
		for _, r := range runs {
			if r.Target == t.Name && r.Err == "" {
				ok = append(ok, r.Result)
			}
		}
		n := len(runs) / max(len(targets), 1)
		if len(ok) == 0 {
			fmt.Fprintf(&b, "| %s | failed | | | | | | | | | | 0/%d |\n", t.Name, n)
			continue
		}
		per := medRange(ok, func(r load.ChatResult) float64 { return r.PerSec })
		medPerSec[t.Name] = per.med
		cpu := medRange(ok, func(r load.ChatResult) float64 { return r.CPUPerDeliveryNs })
		p50 := medRange(ok, func(r load.ChatResult) float64 { return float64(r.P50ns) })
		p99 := medRange(ok, func(r load.ChatResult) float64 { return float64(r.P99ns) })
		ratio := medRange(ok, func(r load.ChatResult) float64 { return float64(r.P99ns) / max(float64(r.P50ns), 1) })
		drop := medRange(ok, func(r load.ChatResult) float64 { return float64(r.Dropped) })
		sdrop := medRange(ok, func(r load.ChatResult) float64 { return float64(r.SendersDropped) })
		lost := medRange(ok, func(r load.ChatResult) float64 { return float64(r.Lost) })
		rmin := medRange(ok, func(r load.ChatResult) float64 { return float64(r.RecvMin) })
		rmed := medRange(ok, func(r load.ChatResult) float64 { return float64(r.RecvMedian) })
		rmax := medRange(ok, func(r load.ChatResult) float64 { return float64(r.RecvMax) })
		util := medRange(ok, func(r load.ChatResult) float64 { return r.ServerUtil })
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f / %.0f | %s | %d/%d |\n", t.Name,
			per.format(func(v float64) string { return fmt.Sprintf("%.0fk", v/1000) }),
			cpu.format(func(v float64) string { return fmt.Sprintf("%.2f µs", v/1000) }),
			p50.format(fmtDur), p99.format(fmtDur),
			ratio.format(func(v float64) string { return fmt.Sprintf("%.1fx", v) }),
			drop.format(fmtCount), sdrop.format(fmtCount), lost.format(fmtCount),
			rmin.med, rmed.med, rmax.med,
			util.format(func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }), len(ok), n)
	}
	b.WriteString("\nCells are medians over the runs, [min-max] beside them. Deliveries count every member of the room, senders included. Server core busy is the server's CPU time over the window: below 100%, other work on the shared machine took the core, and deliveries/s fall with it while CPU per delivery holds.\n")
	if ref, ok := medPerSec["gorilla-chat"]; ok && ref > 0 {
		b.WriteString("\n")
		for _, t := range targets {
			if v, ok := medPerSec[t.Name]; ok && !t.Ref {
				fmt.Fprintf(&b, "- `%s`: %.2fx the gorilla chat's deliveries/s (target >= 1.5x)\n", t.Name, v/ref)
			}
		}
	}
	return b.String()
}

// spread is a median with its range.
type spread struct{ med, lo, hi float64 }

func medRange(rs []load.ChatResult, f func(load.ChatResult) float64) spread {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{med: med, lo: v[0], hi: v[len(v)-1]}
}

func (s spread) format(f func(float64) string) string {
	if s.lo == s.hi {
		return f(s.med)
	}
	return fmt.Sprintf("%s [%s-%s]", f(s.med), f(s.lo), f(s.hi))
}

func fmtDur(v float64) string {
	d := time.Duration(v)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

func fmtCount(v float64) string { return fmt.Sprintf("%g", v) }

// chatSmoke is the -smoke part of the chat comparison: both servers once,
// small and short. It proves the reference, cmd/chat and the load agree on
// the protocol and that messages flow; it measures nothing.
func chatSmoke(ctx context.Context, l *launcher, c config) error {
	f := c.chat
	f.receivers, f.senders, f.inFlight, f.rounds = 20, 2, 4, 1
	f.warmup, f.duration = 200*time.Millisecond, time.Second
	targets, err := chatTargets(f)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wsbench-chat")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, _, err := buildChat(ctx, f.dir, dir, false)
	if err != nil {
		return err
	}
	for _, t := range targets {
		r, err := chatRun(ctx, l, t, bin, f)
		if err != nil {
			return fmt.Errorf("chat smoke %s: %w", t.Name, err)
		}
		slog.Info("chat smoke", "target", t.Name, "deliveries/s", int(r.PerSec), "dropped", r.Dropped, "lost", r.Lost)
		if r.Lost > 0 {
			return fmt.Errorf("chat smoke %s: %d members lost: %s", t.Name, r.Lost, r.LostReason)
		}
	}
	return nil
}
