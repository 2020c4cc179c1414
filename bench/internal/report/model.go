// Package report turns benchmark results into docs/BENCHMARKS.md and
// docs/benchmarks.png: medians and ranges per row and server, the issue's
// targets as ratios measured in the same run, and a chart drawn with the
// standard image packages.
package report

import (
	"fmt"
	"slices"
	"time"

	"github.com/wsdriver/websocket/bench/internal/load"
)

// Row is one echo workload.
type Row struct {
	ID       string `json:"id"`
	Conns    int    `json:"conns"`
	Payload  int    `json:"payload"`
	InFlight int    `json:"in_flight"`
	Text     bool   `json:"text"`
}

// Title describes the row the way the issue does.
func (r Row) Title() string {
	conns := "conns"
	if r.Conns == 1 {
		conns = "conn"
	}
	t := fmt.Sprintf("%s %s, %s", count(r.Conns), conns, size(r.Payload))
	if r.Text {
		t += " text"
	}
	return fmt.Sprintf("%s, %d in flight", t, r.InFlight)
}

// Pipelined reports whether the row keeps more than one message in flight.
func (r Row) Pipelined() bool { return r.InFlight > 1 }

// DefaultRows are the rows of the issue, plus one text row so that UTF-8
// validation is part of what is measured.
func DefaultRows() []Row {
	return []Row{
		{ID: "1x32", Conns: 1, Payload: 32, InFlight: 1},
		{ID: "100x1k", Conns: 100, Payload: 1024, InFlight: 1},
		{ID: "100x1k-text", Conns: 100, Payload: 1024, InFlight: 1, Text: true},
		{ID: "1000x1k", Conns: 1000, Payload: 1024, InFlight: 1},
		{ID: "10x64k", Conns: 10, Payload: 64 << 10, InFlight: 1},
		{ID: "1000x8k", Conns: 1000, Payload: 8 << 10, InFlight: 1},
		{ID: "100x1k-p32", Conns: 100, Payload: 1024, InFlight: 32},
		{ID: "10x128-p64", Conns: 10, Payload: 128, InFlight: 64},
	}
}

// EchoRun is one server's result for one row in one round.
type EchoRun struct {
	Row    string          `json:"row"`
	Server string          `json:"server"`
	Round  int             `json:"round"`
	Result load.EchoResult `json:"result"`
	Err    string          `json:"err,omitempty"`
}

// MemRun is one idle-memory measurement.
type MemRun struct {
	Server    string  `json:"server"`
	Round     int     `json:"round"`
	Conns     int     `json:"conns"`
	RSSBefore int64   `json:"rss_before"`
	RSSAfter  int64   `json:"rss_after"`
	PerConn   float64 `json:"per_conn"`
	// HeapPerConn and StackPerConn split the growth by Go's own accounting
	// (HeapInuse and StackInuse); the rest of the RSS growth is runtime
	// metadata and fragmentation.
	HeapPerConn  float64 `json:"heap_per_conn"`
	StackPerConn float64 `json:"stack_per_conn"`
	Err          string  `json:"err,omitempty"`
}

// BroadcastRun is one broadcast measurement.
type BroadcastRun struct {
	Server string               `json:"server"`
	Round  int                  `json:"round"`
	Conns  int                  `json:"conns"`
	Result load.BroadcastResult `json:"result"`
	Err    string               `json:"err,omitempty"`
}

// Micro is one line of `go test -bench` output.
type Micro struct {
	Name     string  `json:"name"`
	NsOp     float64 `json:"ns_op"`
	MBs      float64 `json:"mb_s,omitempty"`
	BOp      float64 `json:"b_op"`
	AllocsOp float64 `json:"allocs_op"`
	HasMem   bool    `json:"has_mem"`
}

// Machine describes where and when the run happened.
type Machine struct {
	CPU        string            `json:"cpu"`
	Cores      int               `json:"cores"`
	Kernel     string            `json:"kernel"`
	GoVersion  string            `json:"go_version"`
	Peers      map[string]string `json:"peers"`
	Date       time.Time         `json:"date"`
	LoadBefore string            `json:"load_before"`
	LoadAfter  string            `json:"load_after"`
	Pinned     bool              `json:"pinned"`
	FileLimit  uint64            `json:"file_limit"`
	Command    string            `json:"command"`
}

// Results is everything one run of the suite produced.
type Results struct {
	Machine   Machine           `json:"machine"`
	Rounds    int               `json:"rounds"`
	Duration  time.Duration     `json:"duration"`
	Warmup    time.Duration     `json:"warmup"`
	Rows      []Row             `json:"rows"`
	Servers   []string          `json:"servers"`
	ServerDoc map[string]string `json:"server_doc"`
	Echo      []EchoRun         `json:"echo"`
	Mem       []MemRun          `json:"mem"`
	Broadcast []BroadcastRun    `json:"broadcast"`
	Micro     []Micro           `json:"micro"`
	Profiles  []Profile         `json:"profiles"`
	MicroErr  string            `json:"micro_err,omitempty"`
	Elapsed   time.Duration     `json:"elapsed"`
}

// Stat is a median with its range over rounds.
type Stat struct {
	Med, Min, Max float64
	N             int
}

func stat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Med: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// EchoStats are the medians of one server on one row.
type EchoStats struct {
	PerSec, P50, P99, CPUPerRT, ServerUtil, ClientUtil Stat
	// ConnMin, ConnP50 and ConnMax are the spread of round trips/s over
	// the connections (fairness), each a median over rounds.
	ConnMin, ConnP50, ConnMax Stat
	Errors                    []string
}

// EchoStatsFor gathers the rounds of one server on one row.
func (r *Results) EchoStatsFor(row, server string) (EchoStats, bool) {
	var ps, p50, p99, cpu, su, cu, cmin, cp50, cmax []float64
	var st EchoStats
	found := false
	for _, e := range r.Echo {
		if e.Row != row || e.Server != server {
			continue
		}
		found = true
		if e.Err != "" {
			st.Errors = append(st.Errors, e.Err)
			continue
		}
		ps = append(ps, e.Result.PerSec)
		p50 = append(p50, float64(e.Result.P50ns))
		p99 = append(p99, float64(e.Result.P99ns))
		cpu = append(cpu, e.Result.CPUPerRTns)
		su = append(su, e.Result.ServerUtil)
		cu = append(cu, e.Result.ClientUtil)
		if e.Result.PerConnP50 > 0 {
			cmin = append(cmin, e.Result.PerConnMin)
			cp50 = append(cp50, e.Result.PerConnP50)
			cmax = append(cmax, e.Result.PerConnMax)
		}
	}
	st.ConnMin, st.ConnP50, st.ConnMax = stat(cmin), stat(cp50), stat(cmax)
	st.PerSec, st.P50, st.P99, st.CPUPerRT = stat(ps), stat(p50), stat(p99), stat(cpu)
	st.ServerUtil, st.ClientUtil = stat(su), stat(cu)
	return st, found
}

// CPUVsFloor returns server's CPU per round trip on row relative to the
// floor's, paired by round: each round runs every server one after the
// other, so the ratio within a round cancels slow drifts of the machine
// that a ratio of medians over rounds would keep. The result is the median
// (with range) of the per-round ratios.
func (r *Results) CPUVsFloor(row, server string) (Stat, bool) {
	floor := map[int]float64{}
	for _, e := range r.Echo {
		if e.Row == row && e.Server == "floor" && e.Err == "" && e.Result.CPUPerRTns > 0 {
			floor[e.Round] = e.Result.CPUPerRTns
		}
	}
	var q []float64
	for _, e := range r.Echo {
		if e.Row != row || e.Server != server || e.Err != "" || e.Result.CPUPerRTns == 0 {
			continue
		}
		if f, ok := floor[e.Round]; ok {
			q = append(q, e.Result.CPUPerRTns/f)
		}
	}
	return stat(q), len(q) > 0
}

// MemSplitFor returns the median heap and stack growth per connection.
func (r *Results) MemSplitFor(server string) (heap, stack Stat) {
	var h, s []float64
	for _, m := range r.Mem {
		if m.Server == server && m.Err == "" {
			h = append(h, m.HeapPerConn)
			s = append(s, m.StackPerConn)
		}
	}
	return stat(h), stat(s)
}

// MemStatsFor gathers the idle-memory rounds of one server.
func (r *Results) MemStatsFor(server string) (Stat, []string, bool) {
	var v []float64
	var errs []string
	found := false
	for _, m := range r.Mem {
		if m.Server != server {
			continue
		}
		found = true
		if m.Err != "" {
			errs = append(errs, m.Err)
			continue
		}
		v = append(v, m.PerConn)
	}
	return stat(v), errs, found
}

// BroadcastStatsFor gathers the broadcast rounds of one server: time to the
// last receiver and server CPU per message.
func (r *Results) BroadcastStatsFor(server string) (last, cpu Stat, errs []string, found bool) {
	var lv, cv []float64
	for _, b := range r.Broadcast {
		if b.Server != server {
			continue
		}
		found = true
		if b.Err != "" {
			errs = append(errs, b.Err)
			continue
		}
		lv = append(lv, float64(b.Result.MedianLastNs))
		cv = append(cv, b.Result.ServerCPUPerMsgNs)
	}
	return stat(lv), stat(cv), errs, found
}

func count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%d,000", n/1000)
	}
	return fmt.Sprint(n)
}

func size(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// Profile is the top of a pprof profile of one of our servers, kept so the
// report says where the library spends CPU and memory, not only how much.
type Profile struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}
