// Package natstest starts real NATS servers with JetStream for the chat's
// tests: the server from github.com/nats-io/nats-server/v2, embedded in the
// test process, on 127.0.0.1 with random ports and temporary store
// directories. Only tests import it.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is one running NATS server.
type Server struct {
	*server.Server
	opts *server.Options
}

// URL is the server's client URL.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down abruptly for its clients (their connections
// drop) and waits until it is gone.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart starts the server again on the same client port with the same
// store, as an operator restarting it would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	ns := start(t, s.opts)
	s.Server = ns
}

func start(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server did not start")
	}
	// A restart keeps the port the first start got.
	o.Port = ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func options(t testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		// Generous: the test machine is slow and busy.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  1 << 30,
	}
}

// Start runs one NATS server with JetStream.
func Start(t testing.TB) *Server {
	t.Helper()
	o := options(t, "n1")
	s := &Server{opts: o}
	s.Server = start(t, o)
	return s
}

// Cluster is a JetStream cluster of NATS servers.
type Cluster struct {
	Servers []*Server
}

// URLs lists the servers' client URLs, comma-separated, as chat -nats takes them.
func (c *Cluster) URLs() string {
	var u []string
	for _, s := range c.Servers {
		u = append(u, s.URL())
	}
	return strings.Join(u, ",")
}

// StartCluster runs n NATS servers as one JetStream cluster and waits until
// it has elected its meta leader, so that streams can be created at once.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	// A JetStream cluster needs its routes configured before it starts,
	// so the route ports are chosen first: free ones, held until all are
	// known.
	ports := make([]int, n)
	held := make([]net.Listener, n)
	var routes []string
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held[i] = ln
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	opts := make([]*server.Options, n)
	for i := range n {
		o := options(t, fmt.Sprintf("n%d", i+1))
		o.Cluster = server.ClusterOpts{Name: "chat-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		opts[i] = o
	}
	for i := range n {
		held[i].Close()
		s := &Server{opts: opts[i]}
		s.Server = start(t, opts[i])
		c.Servers = append(c.Servers, s)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		leaders, peers := 0, 0
		for _, s := range c.Servers {
			if s.JetStreamIsLeader() {
				leaders++
			}
			peers = max(peers, len(s.JetStreamClusterPeers()))
		}
		if leaders == 1 && peers == n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster of %d formed no leader (peers %d)", n, peers)
		}
		time.Sleep(20 * time.Millisecond) // polling the servers' own state
	}
}
