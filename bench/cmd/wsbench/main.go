// Command wsbench runs the WebSocket benchmark suite. Without a mode flag it
// regenerates docs/BENCHMARKS.md and docs/benchmarks.png: it starts each echo
// server as its own process pinned to CPU 0 (-server), drives it with a load
// generator process pinned to CPU 1 (-load), alternates servers, repeats every
// row and reports medians and ranges.
//
//	go run ./bench/cmd/wsbench            # full report, about 10-15 minutes
//	go run ./bench/cmd/wsbench -quick     # short rows, for iterating
//	go run ./bench/cmd/wsbench -smoke     # seconds: every server works, no report written
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// config holds every flag; each can also come from the environment variable
// named in its help text.
type config struct {
	server string
	mode   string
	addr   string
	load   string
	spec   string

	quick       bool
	smoke       bool
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	only        string
	rows        string
	docs        string
	root        string
	micro       bool
	profile     bool
	profServers string
	render      string
	jsonOut     string
	memConns    int
	bcConns     int
	verbose     bool
	cpuProf     string
	memProf     string
	chat        chatFlags
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func run(ctx context.Context, args []string) error {
	var c config
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	fs.StringVar(&c.server, "server", "", "run the named echo server (internal: started by the report)")
	fs.StringVar(&c.mode, "mode", "echo", "server mode: echo or broadcast")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "server listen address")
	fs.StringVar(&c.load, "load", "", "run the load generator: echo, idle or broadcast (internal)")
	fs.StringVar(&c.spec, "spec", "", "load specification as JSON (internal)")
	fs.BoolVar(&c.quick, "quick", envBool("WSBENCH_QUICK", false), "short rows and one round, for iterating (env WSBENCH_QUICK)")
	fs.BoolVar(&c.smoke, "smoke", envBool("WSBENCH_SMOKE", false), "tiny run of every server and row kind; writes no report (env WSBENCH_SMOKE)")
	fs.IntVar(&c.rounds, "rounds", envInt("WSBENCH_ROUNDS", 7), "rounds per echo row and server; the memory and broadcast rows run at most 3 (env WSBENCH_ROUNDS)")
	fs.DurationVar(&c.duration, "duration", envDuration("WSBENCH_DURATION", 1500*time.Millisecond), "measured time per echo run (env WSBENCH_DURATION)")
	fs.DurationVar(&c.warmup, "warmup", envDuration("WSBENCH_WARMUP", 500*time.Millisecond), "unmeasured time before each echo run (env WSBENCH_WARMUP)")
	fs.StringVar(&c.only, "servers", envString("WSBENCH_SERVERS", ""), "comma-separated servers to run, default all (env WSBENCH_SERVERS)")
	fs.StringVar(&c.rows, "rows", envString("WSBENCH_ROWS", ""), "comma-separated row ids to run, default all (env WSBENCH_ROWS)")
	fs.StringVar(&c.docs, "docs", envString("WSBENCH_DOCS", "docs"), "directory for BENCHMARKS.md and benchmarks.png (env WSBENCH_DOCS)")
	fs.StringVar(&c.root, "root", envString("WSBENCH_ROOT", "."), "library module root, for the micro-benchmarks (env WSBENCH_ROOT)")
	fs.BoolVar(&c.micro, "micro", envBool("WSBENCH_MICRO", true), "run the library's micro-benchmarks (env WSBENCH_MICRO)")
	fs.BoolVar(&c.profile, "profile", envBool("WSBENCH_PROFILE", true), "profile our server (CPU on two rows, heap with idle connections) and include the top lines (env WSBENCH_PROFILE)")
	fs.StringVar(&c.profServers, "profile-servers", envString("WSBENCH_PROFILE_SERVERS", "ours,ours-event,ours-loop"), "comma-separated servers that -profile profiles, when they are in the run (env WSBENCH_PROFILE_SERVERS)")
	fs.StringVar(&c.render, "render", "", "only redraw BENCHMARKS.md and benchmarks.png from a results file written by -json")
	fs.StringVar(&c.jsonOut, "json", envString("WSBENCH_JSON", ""), "also write raw results as JSON to this file (env WSBENCH_JSON)")
	fs.IntVar(&c.memConns, "mem-conns", envInt("WSBENCH_MEM_CONNS", 10000), "connections for the idle memory row (env WSBENCH_MEM_CONNS)")
	fs.IntVar(&c.bcConns, "broadcast-conns", envInt("WSBENCH_BROADCAST_CONNS", 10000), "connections for the broadcast row (env WSBENCH_BROADCAST_CONNS)")
	fs.StringVar(&c.cpuProf, "cpuprofile", envString("WSBENCH_CPUPROFILE", ""), "with -server: write a CPU profile of the server to this file (env WSBENCH_CPUPROFILE)")
	fs.StringVar(&c.memProf, "memprofile", envString("WSBENCH_MEMPROFILE", ""), "with -server: write a heap profile each time memory is settled (env WSBENCH_MEMPROFILE)")
	fs.BoolVar(&c.verbose, "v", envBool("WSBENCH_VERBOSE", false), "debug logging (env WSBENCH_VERBOSE)")
	fs.BoolVar(&c.chat.run, "chat", envBool("WSBENCH_CHAT", false), "run the chat fan-out comparison instead of the report: the gorilla reference chat against cmd/chat (env WSBENCH_CHAT)")
	fs.StringVar(&c.chat.server, "chat-server", "", "run the reference chat server (gorilla) (internal: started by -chat)")
	fs.Var(&c.chat.args, "chat-args", "with -chat: extra cmd/chat flags, e.g. '-backend eventloop'; repeatable, each value one more configuration measured")
	fs.StringVar(&c.chat.targets, "chat-targets", envString("WSBENCH_CHAT_TARGETS", "gorilla,chat"), "with -chat: comma-separated servers, gorilla (the reference) and chat (cmd/chat once per -chat-args) (env WSBENCH_CHAT_TARGETS)")
	fs.StringVar(&c.chat.dir, "chat-dir", envString("WSBENCH_CHAT_DIR", ""), "with -chat: the cmd/chat directory to build, default ROOT/cmd/chat (env WSBENCH_CHAT_DIR)")
	fs.IntVar(&c.chat.receivers, "chat-receivers", envInt("WSBENCH_CHAT_RECEIVERS", 1000), "with -chat: connections that only read (env WSBENCH_CHAT_RECEIVERS)")
	fs.IntVar(&c.chat.senders, "chat-senders", envInt("WSBENCH_CHAT_SENDERS", 5), "with -chat: connections that send (and read) (env WSBENCH_CHAT_SENDERS)")
	fs.IntVar(&c.chat.inFlight, "chat-in-flight", envInt("WSBENCH_CHAT_IN_FLIGHT", 8), "with -chat: messages each sender keeps on the way (env WSBENCH_CHAT_IN_FLIGHT)")
	fs.IntVar(&c.chat.text, "chat-text", envInt("WSBENCH_CHAT_TEXT", 32), "with -chat: bytes of text per message (env WSBENCH_CHAT_TEXT)")
	fs.IntVar(&c.chat.rounds, "chat-rounds", envInt("WSBENCH_CHAT_ROUNDS", 5), "with -chat: runs per server (env WSBENCH_CHAT_ROUNDS)")
	fs.DurationVar(&c.chat.duration, "chat-duration", envDuration("WSBENCH_CHAT_DURATION", 10*time.Second), "with -chat: measured time per run (env WSBENCH_CHAT_DURATION)")
	fs.DurationVar(&c.chat.warmup, "chat-warmup", envDuration("WSBENCH_CHAT_WARMUP", 2*time.Second), "with -chat: unmeasured time after connecting (env WSBENCH_CHAT_WARMUP)")
	fs.BoolVar(&c.chat.profile, "chat-profile", envBool("WSBENCH_CHAT_PROFILE", true), "with -chat: profile cmd/chat on one more run and print the top lines (env WSBENCH_CHAT_PROFILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if c.chat.dir == "" {
		c.chat.dir = filepath.Join(c.root, "cmd", "chat")
	}
	switch {
	case c.chat.server != "":
		return runChatServer(ctx, c)
	case c.server != "":
		return runServer(ctx, c)
	case c.load != "":
		return runLoad(ctx, c)
	case c.chat.run:
		return runChatReport(ctx, c)
	default:
		return runReport(ctx, c)
	}
}
