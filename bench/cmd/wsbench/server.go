package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/wsdriver/websocket/bench/internal/servers"
)

// runServer runs one echo server in this process. SIGUSR1 asks it to collect
// garbage and return freed memory to the OS, then print "gc", so the report
// reads a settled RSS.
func runServer(ctx context.Context, c config) error {
	s, ok := servers.Lookup(c.server)
	if !ok {
		return fmt.Errorf("unknown server %q (have %v)", c.server, servers.Names())
	}
	mode := servers.Echo
	switch c.mode {
	case "echo":
	case "broadcast":
		if !s.Broadcast {
			return fmt.Errorf("server %s has no broadcast mode", s.Name)
		}
		mode = servers.Broadcast
	default:
		return fmt.Errorf("unknown mode %q", c.mode)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			// Several cycles: goroutine stacks shrink by half per GC at most.
			for range 4 {
				runtime.GC()
			}
			debug.FreeOSMemory()
			fmt.Println("gc")
		}
	}()
	// Some libraries keep serving after their listener closes; the process
	// ends when asked to, whatever the server loop does.
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, c.addr, mode) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}
