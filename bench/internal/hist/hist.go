// Package hist is a small log-linear latency histogram in the spirit of HDR
// histograms: constant memory, constant-time recording, about 1.6% relative
// precision, and exact merging, so every connection can record on its own and
// the results are added up at the end.
package hist

import (
	"math/bits"
	"time"
)

// subBits sets the precision: 2^subBits buckets per power of two.
const subBits = 6

const (
	subCount = 1 << subBits
	// nBuckets covers values up to 2^63 ns.
	nBuckets = (64 - subBits) * subCount
)

// Histogram counts durations. The zero value is ready to use.
type Histogram struct {
	counts [nBuckets]uint64
	total  uint64
	max    int64
}

func index(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>uint(shift)) - subCount
}

// lowest returns the smallest value that falls into bucket i.
func lowest(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	return uint64(i%subCount+subCount) << uint(shift)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[index(uint64(v))]++
	h.total++
	if v > h.max {
		h.max = v
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// Quantile returns the value at quantile q in [0, 1], reported as the middle
// of its bucket (and never above the maximum seen).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := lowest(i)
			hi := lowest(i + 1)
			mid := int64(lo + (hi-lo)/2)
			if mid > h.max {
				mid = h.max
			}
			return time.Duration(mid)
		}
	}
	return time.Duration(h.max)
}
