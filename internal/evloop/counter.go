package evloop

import "sync"

// Counter counts running goroutines (handler calls, a connection's
// workers) for a server that waits for them when it stops. Unlike a
// sync.WaitGroup, its wait may overlap a count that starts from zero: a
// server waits while connections that are still open can start work, and
// it waits with a deadline. The zero value is ready.
type Counter struct {
	mu    sync.Mutex
	n     int
	empty chan struct{} // closed when n drops to 0; made by Idle
}

// Add counts one more.
func (c *Counter) Add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

// Done counts one less.
func (c *Counter) Done() {
	c.mu.Lock()
	c.n--
	if c.n == 0 && c.empty != nil {
		close(c.empty)
		c.empty = nil
	}
	c.mu.Unlock()
}

// Idle returns a channel that is closed when the count is zero: at once
// if it is zero now.
func (c *Counter) Idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return closedChan
	}
	if c.empty == nil {
		c.empty = make(chan struct{})
	}
	return c.empty
}

// closedChan is Idle's answer at zero, made once: a closed channel
// serves every receiver.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()
