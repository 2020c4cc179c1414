package websocket

import (
	"sync"
	"sync/atomic"
)

// semaphore is a one-slot lock that a waiter can give up on (its context
// ends, the connection ends), which sync.Mutex does not allow. A Conn has
// two, one for reading and one for writing messages; unlike a channel of
// one slot (96 bytes each, allocated with the Conn) it costs nothing until
// two goroutines contend for it, which is rare: an idle connection carries
// two words. The first waiter makes a channel that release closes, waking
// every waiter to try again.
type semaphore struct {
	held atomic.Bool
	mu   sync.Mutex
	wait chan struct{} // closed by release; made by a waiter when needed
}

// tryAcquire takes the slot if it is free.
func (s *semaphore) tryAcquire() bool { return s.held.CompareAndSwap(false, true) }

// waitChan takes the slot if it is free (nil), or returns a channel that
// is closed when it is released. Taking the slot under the lock closes the
// gap between a failed tryAcquire and the release that a waiter must not
// miss: release clears held before it takes the lock, so either this
// attempt sees the slot free or release sees the channel.
func (s *semaphore) waitChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tryAcquire() {
		return nil
	}
	if s.wait == nil {
		s.wait = make(chan struct{})
	}
	return s.wait
}

// lock takes the slot, waiting as long as it takes.
func (s *semaphore) lock() {
	for !s.tryAcquire() {
		w := s.waitChan()
		if w == nil {
			return
		}
		<-w
	}
}

// release frees the slot and wakes the waiters.
func (s *semaphore) release() {
	s.held.Store(false)
	s.mu.Lock()
	if s.wait != nil {
		close(s.wait)
		s.wait = nil
	}
	s.mu.Unlock()
}
