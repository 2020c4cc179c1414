package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
	"github.com/wsdriver/websocket/cmd/chat/internal/cluster"
)

// clusterOptions are the flags of cluster mode (README: "Running several
// nodes").
type clusterOptions struct {
	nats      string
	replicas  int
	deadAfter time.Duration
}

// clusterHelp is the part of -help that says what cluster mode changes.
const clusterHelp = "Cluster mode (-nats set): several nodes form one chat over NATS JetStream.\n" +
	"There -data is not used (history lives in JetStream), -history is what a\n" +
	"joiner gets replayed and sets the shared stream's per-room limit (the node\n" +
	"started last sets it); -max-conns, -max-conns-per-ip, -queue, -rate and the\n" +
	"timeouts apply per node; -auth-secret must be the same on every node;\n" +
	"-trusted-proxy names the load balancer; -tls-cert is per node (usually the\n" +
	"load balancer terminates TLS); /healthz answers 503 while NATS is\n" +
	"unreachable and /metrics adds chat_nats_*.\n\n"

func addClusterFlags(fs *flag.FlagSet, o *clusterOptions, env func(name, envName string) string) {
	fs.StringVar(&o.nats, "nats", "", "cluster mode: NATS server URLs with JetStream, comma-separated (nats://host:4222,...); empty runs a single node"+env("nats", "CHAT_NATS"))
	fs.IntVar(&o.replicas, "nats-replicas", 1, "cluster mode: replicas of the message stream and buckets (3 for a 3-server NATS cluster)"+env("nats-replicas", "CHAT_NATS_REPLICAS"))
	fs.DurationVar(&o.deadAfter, "nats-dead-after", cluster.DefaultDeadAfter, "cluster mode: a node silent this long is presumed dead; its users are announced gone and their nicknames freed"+env("nats-dead-after", "CHAT_NATS_DEAD_AFTER"))
}

func (o *clusterOptions) check() error {
	if o.replicas < 1 || o.replicas > 5 {
		return errors.New("-nats-replicas must be between 1 and 5")
	}
	if o.deadAfter < time.Second {
		return errors.New("-nats-dead-after must be at least 1s")
	}
	return nil
}

// open returns the cluster engine, or nil in single-node mode.
func (o *clusterOptions) open(ctx context.Context, history int, log *slog.Logger) (chat.Engine, error) {
	if o.nats == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eng, err := cluster.Open(ctx, cluster.Config{
		URLs: o.nats, Replicas: o.replicas, History: history,
		DeadAfter: o.deadAfter, Heartbeat: o.deadAfter / 5, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return eng, nil
}
