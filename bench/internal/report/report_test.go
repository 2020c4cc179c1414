package report

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wsdriver/websocket/bench/internal/load"
)

const benchOut = `goos: linux
BenchmarkReadMessage/binary-1KiB-2         	 1000000	      1000 ns/op	1024.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkWrite/text-1KiB-2                 	 1000000	      1200 ns/op	       8 B/op	       1 allocs/op
BenchmarkMask/64KiB-2                      	  100000	     10000 ns/op	6553.60 MB/s
BenchmarkMaskCopyBaseline/64KiB-2          	  100000	      5000 ns/op	13107.20 MB/s
PASS
`

func TestParseBench(t *testing.T) {
	ms := ParseBench(benchOut)
	if len(ms) != 4 {
		t.Fatalf("parsed %d lines, want 4: %+v", len(ms), ms)
	}
	if m := ms[0]; m.Name != "ReadMessage/binary-1KiB" || m.NsOp != 1000 || m.MBs != 1024 || !m.HasMem || m.AllocsOp != 0 {
		t.Fatalf("first line parsed as %+v", m)
	}
	if ms[2].HasMem {
		t.Fatal("a line without -benchmem columns claims memory numbers")
	}
}

func TestStat(t *testing.T) {
	s := stat([]float64{3, 1, 2})
	if s.Med != 2 || s.Min != 1 || s.Max != 3 || s.N != 3 {
		t.Fatalf("got %+v", s)
	}
	if s := stat([]float64{1, 2, 3, 4}); s.Med != 2.5 {
		t.Fatalf("even median %v, want 2.5", s.Med)
	}
}

func sample() *Results {
	r := &Results{
		Machine:  Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.x", Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Command: "go run ./bench/cmd/wsbench"},
		Rounds:   1,
		Duration: time.Second,
		Rows:     []Row{{ID: "a", Conns: 1, Payload: 32, InFlight: 1}, {ID: "p", Conns: 10, Payload: 128, InFlight: 64}},
		Servers:  []string{"floor", "ours", "gws"},
		Micro:    ParseBench(benchOut),
	}
	add := func(row, s string, perSec, cpu, p99 float64) {
		r.Echo = append(r.Echo, EchoRun{Row: row, Server: s, Result: load.EchoResult{PerSec: perSec, CPUPerRTns: cpu, P99ns: int64(p99), P50ns: 1}})
	}
	add("a", "floor", 100, 10, 100)
	add("a", "ours", 90, 11, 90)
	add("a", "gws", 80, 12, 95)
	add("p", "floor", 1000, 1, 100)
	add("p", "ours", 300, 5, 100)
	add("p", "gws", 100, 8, 100)
	r.Mem = []MemRun{{Server: "ours", Conns: 10, PerConn: 5000}, {Server: "floor", Conns: 10, PerConn: 3000}}
	r.Broadcast = []BroadcastRun{
		{Server: "ours", Conns: 10, Result: load.BroadcastResult{MedianLastNs: 10e6}},
		{Server: "gws", Conns: 10, Result: load.BroadcastResult{MedianLastNs: 20e6}},
	}
	return r
}

func TestTargets(t *testing.T) {
	ts := Targets(sample())
	want := []string{"missed", "met", "met", "missed", "met", "missed", "met"}
	if len(ts) != len(want) {
		t.Fatalf("%d targets, want %d", len(ts), len(want))
	}
	for i, tg := range ts {
		if tg.Status != want[i] {
			t.Errorf("target %q: %s (%s), want %s", tg.Goal, tg.Status, tg.Measured, want[i])
		}
	}
	// CPU: ours 11 vs floor 10 = 1.10×, 4.8% over the budget.
	if !strings.Contains(ts[0].Distance, "1.100×") {
		t.Errorf("cpu distance %q", ts[0].Distance)
	}
	// Pipelined: 300 vs best peer 100.
	if !strings.Contains(ts[2].Measured, "3.00×") {
		t.Errorf("pipelined measured %q", ts[2].Measured)
	}
}

func TestTargetsWithoutOurs(t *testing.T) {
	r := sample()
	r.Servers = []string{"floor", "gws"}
	r.Mem, r.Broadcast, r.Micro = nil, nil, nil
	for _, tg := range Targets(r) {
		if tg.Status != "not measured" {
			t.Errorf("target %q: %s without our server", tg.Goal, tg.Status)
		}
	}
}

func TestMarkdownAndChart(t *testing.T) {
	r := sample()
	md := Markdown(r)
	for _, s := range []string{"# Benchmarks", "## Targets", "Test CPU", "### 10 conns, 128 B, 64 in flight", "| ours | 5,000 B |", "ReadMessage/binary-1KiB", "benchmarks.png"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q", s)
		}
	}
	var buf bytes.Buffer
	if err := WritePNG(&buf, r); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 600 {
		t.Fatalf("chart is %v", b)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{group(1234567), "1,234,567"}, {group(-1000), "-1,000"}, {fmtRate(123456), "123k"},
		{fmtNs(1500), "1.5 µs"}, {fmtNs(25e6), "25 ms"}, {size(65536), "64 KiB"}, {count(10000), "10,000"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// CPU relative to the floor pairs the runs of one round: a round where the
// whole machine was slow must not count against the server that happened
// to run in a fast one.
func TestCPUVsFloorPairsRounds(t *testing.T) {
	r := &Results{}
	for i, v := range []struct{ floor, ours float64 }{{10, 11}, {20, 22}, {30, 12}} {
		r.Echo = append(r.Echo,
			EchoRun{Row: "a", Server: "floor", Round: i, Result: load.EchoResult{CPUPerRTns: v.floor}},
			EchoRun{Row: "a", Server: "ours", Round: i, Result: load.EchoResult{CPUPerRTns: v.ours}})
	}
	// A failed run has no pair.
	r.Echo = append(r.Echo, EchoRun{Row: "a", Server: "ours", Round: 3, Err: "boom"})
	q, ok := r.CPUVsFloor("a", "ours")
	if !ok || q.N != 3 || math.Abs(q.Med-1.1) > 1e-9 || math.Abs(q.Min-0.4) > 1e-9 {
		t.Fatalf("paired ratio %+v, want median 1.1 over 3 rounds, min 0.4 (the ratio of medians would be 0.6)", q)
	}
	if _, ok := r.CPUVsFloor("a", "gws"); ok {
		t.Fatal("a ratio for a server that never ran")
	}
}

// The one-in-flight targets judge each server's best run: noise that only
// adds must not decide them.
func TestCPUTargetJudgesBestRuns(t *testing.T) {
	r := &Results{Servers: []string{"floor", "ours"}, Rows: []Row{{ID: "a", Conns: 1, Payload: 32, InFlight: 1}}}
	for i, v := range []struct{ floor, ours float64 }{{10.6, 15}, {14, 11}} {
		r.Echo = append(r.Echo,
			EchoRun{Row: "a", Server: "floor", Round: i, Result: load.EchoResult{CPUPerRTns: v.floor, P99ns: 1, P50ns: 1}},
			EchoRun{Row: "a", Server: "ours", Round: i, Result: load.EchoResult{CPUPerRTns: v.ours, P99ns: 1, P50ns: 1}})
	}
	tg := cpuTarget(r, "ours")
	if tg.Status != "met" || !strings.Contains(tg.Measured, "a 1.038×") {
		t.Fatalf("best runs 11 vs 10.6 should meet the 1.05× budget: %+v", tg)
	}
}

// The pipelined rows show each server's spread of per-connection
// throughput (fairness); the one-in-flight rows do not.
func TestConnSpreadColumn(t *testing.T) {
	r := sample()
	for i := range r.Echo {
		if r.Echo[i].Row == "p" && r.Echo[i].Server == "ours" {
			r.Echo[i].Result.PerConnMin, r.Echo[i].Result.PerConnP50, r.Echo[i].Result.PerConnMax = 12, 30, 45
		}
	}
	md := Markdown(r)
	if !strings.Contains(md, "| ours | ") || !strings.Contains(md, " 12 / 30 / 45 |") {
		t.Fatalf("no per-connection spread for ours in the pipelined row:\n%s", md)
	}
	_, a, _ := strings.Cut(md, "(`a`)")
	a, _, _ = strings.Cut(a, "###")
	if strings.Contains(a, "Per connection") {
		t.Fatalf("one-in-flight row has a spread column:\n%s", a)
	}
}
