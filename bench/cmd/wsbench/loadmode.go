package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wsdriver/websocket/bench/internal/load"
)

// idleSpec is the -spec of -load idle.
type idleSpec struct {
	Addr    string
	Conns   int
	Sources int
}

// runLoad runs the load generator in this process and prints one JSON
// result line; the idle mode instead follows a line protocol on stdin and
// stdout, so the report can read the server's memory at the right moments.
func runLoad(ctx context.Context, c config) error {
	out := json.NewEncoder(os.Stdout)
	switch c.load {
	case "echo":
		var s load.EchoSpec
		if err := json.Unmarshal([]byte(c.spec), &s); err != nil {
			return err
		}
		r, err := load.Echo(ctx, s)
		if err != nil {
			return err
		}
		return out.Encode(r)
	case "broadcast":
		var s load.BroadcastSpec
		if err := json.Unmarshal([]byte(c.spec), &s); err != nil {
			return err
		}
		r, err := load.Broadcast(ctx, s)
		if err != nil {
			return err
		}
		return out.Encode(r)
	case "chat":
		var s load.ChatSpec
		if err := json.Unmarshal([]byte(c.spec), &s); err != nil {
			return err
		}
		r, err := load.Chat(ctx, s)
		if err != nil {
			return err
		}
		return out.Encode(r)
	case "idle":
		var s idleSpec
		if err := json.Unmarshal([]byte(c.spec), &s); err != nil {
			return err
		}
		sess, err := load.Idle(ctx, s.Addr, s.Conns, s.Sources)
		if err != nil {
			return err
		}
		defer sess.Close()
		fmt.Println("connected")
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			switch strings.TrimSpace(in.Text()) {
			case "verify":
				if err := sess.Verify(10 * time.Second); err != nil {
					fmt.Println("verify-error", err)
				} else {
					fmt.Println("verified")
				}
			case "close":
				return nil
			}
		}
		return in.Err()
	}
	return fmt.Errorf("unknown load mode %q", c.load)
}
