package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wsdriver/websocket/bench/internal/wire"
)

// IdleSession holds open connections that send nothing, for measuring what
// an idle connection costs the server.
type IdleSession struct {
	clients []*client
}

// Idle opens n connections and leaves them idle.
func Idle(ctx context.Context, addr string, n, sources int) (*IdleSession, error) {
	cs, err := dialAll(ctx, addr, n, sources, Payload(16, false), wire.OpBinary, 512)
	if err != nil {
		return nil, err
	}
	return &IdleSession{clients: cs}, nil
}

// Verify sends one message on every connection and checks its echo, proving
// the server still serves all of them.
func (s *IdleSession) Verify(timeout time.Duration) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := s.clients[i].echoOnce(timeout); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range s.clients {
		work <- i
	}
	close(work)
	wg.Wait()
	return ferr
}

// Close ends every connection with a close frame.
func (s *IdleSession) Close() {
	for _, c := range s.clients {
		c.sendClose()
	}
	closeAll(s.clients)
}
