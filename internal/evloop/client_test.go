package evloop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// The benchmarks run their load in a child process (this test binary,
// started with clientEnv set), so that the server's CPU and memory are
// measured apart from the client's.
const clientEnv = "EVLOOP_TEST_CLIENT"

// runClient connects EVLOOP_CONNS connections to EVLOOP_ADDR and prints
// "ready". In mode "echo" each line "n" on stdin then runs n round trips
// of EVLOOP_SIZE bytes in total over the connections, one in flight per
// connection, and prints "done". In mode "fanout" every connection reads
// messages of EVLOOP_SIZE bytes, and the client prints "got" each time
// all of them have had one more. The client ends at EOF on stdin.
func runClient() int {
	mode, addr := os.Getenv(clientEnv), os.Getenv("EVLOOP_ADDR")
	conns, size := envInt("EVLOOP_CONNS", 1000), envInt("EVLOOP_SIZE", 1024)
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			return 1
		}
		cs[i] = c
	}
	if mode == "fanout" {
		startReceivers(cs, size)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if mode != "echo" {
			continue
		}
		n, _ := strconv.ParseInt(in.Text(), 10, 64)
		var left atomic.Int64
		left.Store(n)
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := make([]byte, size)
				got := make([]byte, size)
				for left.Add(-1) >= 0 {
					if _, err := c.Write(msg); err != nil {
						fmt.Fprintln(os.Stderr, "client:", err)
						os.Exit(1)
					}
					if _, err := io.ReadFull(c, got); err != nil {
						fmt.Fprintln(os.Stderr, "client:", err)
						os.Exit(1)
					}
				}
			}()
		}
		wg.Wait()
		fmt.Println("done")
	}
	for _, c := range cs {
		c.Close()
	}
	return 0
}

// startReceivers has each connection read messages of size bytes; the
// reader that completes a round (all connections have one more message)
// prints "got".
func startReceivers(cs []net.Conn, size int) {
	var got atomic.Int64
	for _, c := range cs {
		go func() {
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return // the connection is closed at the end
				}
				if got.Add(1)%int64(len(cs)) == 0 {
					fmt.Println("got")
				}
			}
		}()
	}
}
