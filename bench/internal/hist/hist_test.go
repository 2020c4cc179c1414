package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestIndexRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 123456789, 1 << 40, 1<<62 + 12345} {
		i := index(v)
		if lo, hi := lowest(i), lowest(i+1); v < lo || v >= hi {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	samples := make([]int64, 100000)
	for i := range samples {
		// Log-normal-ish spread from 1 µs to about 10 ms.
		v := int64(1000 * (1 + r.ExpFloat64()*r.ExpFloat64()*50))
		samples[i] = v
		h.Record(time.Duration(v))
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := samples[int(q*float64(len(samples)))-1]
		got := int64(h.Quantile(q))
		if d := float64(got-want) / float64(want); d > 0.02 || d < -0.02 {
			t.Errorf("q%.3f: got %d, sorted samples give %d (%.2f%% off)", q, got, want, d*100)
		}
	}
	if h.Count() != uint64(len(samples)) {
		t.Errorf("count %d, want %d", h.Count(), len(samples))
	}
	if h.Max() != time.Duration(samples[len(samples)-1]) {
		t.Errorf("max %v, want %v", h.Max(), samples[len(samples)-1])
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatal("merged histogram differs from one recorded directly")
	}
	if got := a.Quantile(0.5); got < 490*time.Microsecond || got > 510*time.Microsecond {
		t.Errorf("median %v, want about 500µs", got)
	}
}

func TestEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Count() != 0 {
		t.Fatal("empty histogram should report zero")
	}
}
