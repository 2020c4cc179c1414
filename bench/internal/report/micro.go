package report

import (
	"strconv"
	"strings"
)

// ParseBench reads the result lines of `go test -bench -benchmem` output.
func ParseBench(out string) []Micro {
	var ms []Micro
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m := Micro{Name: strings.TrimPrefix(f[0], "Benchmark")}
		// Drop the -GOMAXPROCS suffix go test adds.
		if i := strings.LastIndexByte(m.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(m.Name[i+1:]); err == nil {
				m.Name = m.Name[:i]
			}
		}
		ok := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			switch f[i+1] {
			case "ns/op":
				m.NsOp, ok = v, true
			case "MB/s":
				m.MBs = v
			case "B/op":
				m.BOp, m.HasMem = v, true
			case "allocs/op":
				m.AllocsOp, m.HasMem = v, true
			}
		}
		if ok {
			ms = append(ms, m)
		}
	}
	return ms
}
