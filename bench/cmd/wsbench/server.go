package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
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
	if c.cpuProf != "" {
		f, err := os.Create(c.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
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
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if c.memProf != "" {
				writeHeapProfile(c.memProf)
			}
			fmt.Printf("gc heap=%d stack=%d goroutines=%d\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
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

// writeHeapProfile records where live memory was allocated, for finding out
// what an idle connection holds.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		slog.Error("heap profile", "err", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		slog.Error("heap profile", "err", err)
	}
}
