package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsdriver/websocket/cmd/chat/internal/natstest"
)

const nginxPath = "/usr/sbin/nginx"

// nginxConf puts two chat nodes behind one port. A page opened as
// 127.0.0.1 goes to node a, one opened as localhost to node b, each with the
// other node as its backup: two tabs land on different nodes, and when a
// node dies its tabs reconnect, to the same URL, to the survivor.
const nginxConf = `worker_processes 1;
master_process off;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream via_a { server %[2]s max_fails=1 fail_timeout=60s; server %[3]s backup; }
  upstream via_b { server %[3]s max_fails=1 fail_timeout=60s; server %[2]s backup; }
  map $host $pool { 127.0.0.1 via_a; default via_b; }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://$pool;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_read_timeout 1h;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout;
    }
  }
}
`

// startNginxLB runs Debian's nginx as a load balancer in front of two nodes
// and returns its address.
func startNginxLB(t *testing.T, nodeA, nodeB string) string {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; run scripts/install-deps.sh", nginxPath)
		}
		t.Skipf("%s not installed", nginxPath)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nginx binds it next; a stolen port fails the start below
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, nodeA, nodeB, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxPath, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not come up on %s:\n%s", addr, b)
		}
		time.Sleep(20 * time.Millisecond) // polling nginx's readiness
	}
}

// TestBrowserCluster: two tabs on two chat nodes behind nginx chat; node a
// is killed with SIGKILL; its tab reconnects through nginx to node b,
// resumes from its last message ID and shows no message twice.
func TestBrowserCluster(t *testing.T) {
	bctx := browser(t, chromedp.Flag("host-resolver-rules", "MAP localhost 127.0.0.1"))
	ns := natstest.Start(t)
	args := "-log-level warn -addr 127.0.0.1:0 -nats " + ns.URL() + " -nats-dead-after 2s"
	a := startChild(t, args)
	b := startChild(t, args)
	addrA, addrB := strings.TrimPrefix(a.url, "ws://"), strings.TrimPrefix(b.url, "ws://")
	lb := startNginxLB(t, addrA, addrB)
	_, port, _ := net.SplitHostPort(lb)

	ta, _ := tab(t, bctx, "http://127.0.0.1:"+port+"/#e2e")
	nickA := waitOpen(t, ta)
	waitConnections(t, addrA, 1)
	tb, _ := tab(t, bctx, "http://localhost:"+port+"/#e2e")
	nickB := waitOpen(t, tb)
	waitConnections(t, addrB, 1)
	waitNotice(t, ta, nickB+" has joined.")
	say(t, ta, "hello from A")
	waitMessage(t, tb, nickA, "hello from A")
	say(t, tb, "hello from B")
	waitMessage(t, ta, nickB, "hello from B")
	waitMessage(t, ta, nickA, "hello from A")

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	waitJS(t, ta, "disconnected status", `document.getElementById("status").dataset.state === "closed"`)
	say(t, tb, "while A reconnects")
	waitJS(t, ta, "reconnected", `document.getElementById("status").dataset.state === "open"`)
	waitConnections(t, addrB, 2)
	// The tab's resume token takes its nickname back from the dead node.
	waitJS(t, ta, "the same nickname", `document.getElementById("nick-input").value === `+q(nickA))
	waitMessage(t, ta, nickB, "while A reconnects") // replayed from JetStream
	say(t, tb, "after the reconnect")
	waitMessage(t, ta, nickB, "after the reconnect")
	say(t, ta, "A is back")
	waitMessage(t, tb, nickA, "A is back")
	for _, text := range []string{"hello from A", "hello from B", "while A reconnects", "after the reconnect"} {
		if n := countMessages(t, ta, text); n != 1 {
			t.Errorf("tab A shows %q %d times", text, n)
		}
		if n := countMessages(t, tb, text); n != 1 {
			t.Errorf("tab B shows %q %d times", text, n)
		}
	}
}
