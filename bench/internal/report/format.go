package report

import (
	"fmt"
	"math"
	"time"
)

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtNs(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case d >= 10*time.Microsecond:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func fmtBytes(v float64) string {
	return fmt.Sprintf("%s B", group(int64(math.Round(v))))
}

// group writes an integer with thousands separators.
func group(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	out = s + out
	if neg {
		out = "-" + out
	}
	return out
}

// withRange writes a median and, when there were several rounds, its range.
func withRange(s Stat, f func(float64) string) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return f(s.Med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Med), f(s.Min), f(s.Max))
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
