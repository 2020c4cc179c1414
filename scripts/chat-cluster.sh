#!/usr/bin/env bash
# chat-cluster.sh starts a local chat cluster to try: three NATS servers
# forming one JetStream cluster (replicas 3), three chat nodes using it, and
# nginx in front as the load balancer. It installs nginx from Debian if it is
# missing, builds the chat and nats-server (from the chat module's pinned
# dependency), prints the URL and runs until Ctrl-C, which stops everything.
#
#   scripts/chat-cluster.sh            # http://127.0.0.1:8080/
#   PORT=9000 scripts/chat-cluster.sh
#
# Try: open the URL in two browsers, kill one chat node (its PID is printed)
# with kill -9 and watch its tabs reconnect to another node without losing
# or repeating a message; or stop one NATS server: nothing accepted is lost.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
nats_base=${NATS_BASE_PORT:-4222}   # client ports 4222-4224, routes 6222-6224
chat_base=${CHAT_BASE_PORT:-8181}   # chat nodes 8181-8183
dir=${CHAT_CLUSTER_DIR:-$(mktemp -d /tmp/chat-cluster.XXXXXX)}
mkdir -p "$dir"

if [ ! -x /usr/sbin/nginx ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "chat-cluster: installing nginx"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nginx >/dev/null
fi
echo "chat-cluster: building chat and nats-server into $dir"
(cd cmd/chat && go build -o "$dir/chat" . && go build -o "$dir/nats-server" github.com/nats-io/nats-server/v2)

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "chat-cluster: stopped; logs and data in $dir"
}
trap cleanup EXIT INT TERM

routes=""
for i in 0 1 2; do routes+="${routes:+,}nats://127.0.0.1:$((nats_base + 2000 + i))"; done
urls=""
for i in 0 1 2; do
  mkdir -p "$dir/nats$i"
  "$dir/nats-server" -n "nats$i" -a 127.0.0.1 -p $((nats_base + i)) -js -sd "$dir/nats$i" \
    --cluster_name chat --cluster "nats://127.0.0.1:$((nats_base + 2000 + i))" --routes "$routes" \
    >"$dir/nats$i.log" 2>&1 &
  pids+=($!)
  urls+="${urls:+,}nats://127.0.0.1:$((nats_base + i))"
done

upstreams=""
for i in 0 1 2; do
  "$dir/chat" -addr "127.0.0.1:$((chat_base + i))" -nats "$urls" -nats-replicas 3 \
    >"$dir/chat$i.log" 2>&1 &
  pids+=($!)
  echo "chat-cluster: chat node $i: pid $!, http://127.0.0.1:$((chat_base + i))/, log $dir/chat$i.log"
  upstreams+="    server 127.0.0.1:$((chat_base + i)) max_fails=1 fail_timeout=10s;"$'\n'
done

mkdir -p "$dir/nginx"
cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream chat {
    least_conn;
$upstreams  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://chat;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$http_host;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
CONF
# master_process off keeps nginx a single process of this user, so the
# temporary directory needs no permissions for nginx's usual worker user.
/usr/sbin/nginx -g "master_process off;" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" &
pids+=($!)

for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    echo "chat-cluster: open http://127.0.0.1:$port/ in a browser (Ctrl-C stops the cluster)"
    wait -n "${pids[@]}" || true
    echo "chat-cluster: a process exited; see the logs in $dir"
    exit 1
  fi
  sleep 0.2
done
echo "chat-cluster: the cluster did not become ready; logs in $dir" >&2
exit 1
