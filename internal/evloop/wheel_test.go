//go:build linux && !evloop_portable

package evloop

import (
	"testing"
	"time"
)

// TestWheelNeverEarly checks that a timeout is never due before its
// duration has passed, wherever within a tick it is set (regression: the
// deadline was counted from the current tick, so a timeout set late in a
// tick fired up to one resolution early, and a 300ms ReadHeaderTimeout
// dropped a slow client after 210ms).
func TestWheelNeverEarly(t *testing.T) {
	const res = 100 * time.Millisecond
	for _, into := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 99 * time.Millisecond} {
		for _, d := range []time.Duration{time.Millisecond, res, 300 * time.Millisecond, 350 * time.Millisecond} {
			var w wheel
			w.init(res)
			w.start = w.start.Add(-(5*res + into)) // "into" past the fifth tick
			c := &Conn{}
			now := time.Now()
			w.schedule(c, d)
			due := w.start.Add(time.Duration(c.deadline) * res)
			if due.Before(now.Add(d)) {
				t.Errorf("%v into a tick, timeout %v: due after %v", into, d, due.Sub(now))
			}
			if due.After(now.Add(d + res + 50*time.Millisecond)) {
				t.Errorf("%v into a tick, timeout %v: due after %v, more than a resolution late", into, d, due.Sub(now))
			}
		}
	}
}
