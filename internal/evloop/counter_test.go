package evloop

import (
	"sync"
	"testing"
	"time"
)

// TestCounter checks Idle at zero, that it waits for every Done, and that
// an Add from zero may overlap a wait (the race detector checks that).
func TestCounter(t *testing.T) {
	var c Counter
	select {
	case <-c.Idle():
	default:
		t.Fatal("Idle of a zero Counter is not closed")
	}
	c.Add()
	c.Add()
	idle := c.Idle()
	c.Done()
	select {
	case <-idle:
		t.Fatal("Idle closed with one still counted")
	default:
	}
	c.Done()
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		t.Fatal("Idle not closed when the count reached zero")
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); c.Add(); c.Done() }()
		go func() { defer wg.Done(); <-c.Idle() }() // may see zero, or wait for it
	}
	wg.Wait()
	select {
	case <-c.Idle():
	default:
		t.Fatal("Idle not closed at zero after the overlapping adds")
	}
}
