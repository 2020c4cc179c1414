package chat

import "time"

// tokenBucket allows rate events per second on average and bursts of up to
// burst. It is used from one goroutine (the client's reader), so it has no lock.
type tokenBucket struct {
	rate   float64 // tokens per second; 0 disables the limit
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	b := float64(burst)
	if b < 1 {
		b = 1
	}
	return &tokenBucket{rate: rate, burst: b, tokens: b, last: now}
}

// allow takes one token if there is one.
func (t *tokenBucket) allow(now time.Time) bool {
	if t.rate <= 0 {
		return true
	}
	if el := now.Sub(t.last).Seconds(); el > 0 {
		t.tokens += el * t.rate
		if t.tokens > t.burst {
			t.tokens = t.burst
		}
	}
	t.last = now
	if t.tokens >= 1 {
		t.tokens--
		return true
	}
	return false
}
