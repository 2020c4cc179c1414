#!/usr/bin/env bash
# install-deps.sh installs what the test suites need beyond Go, so that a fresh
# machine passes with nothing installed by hand: Debian's Chromium and
# ChromeDriver (browser interop, the chat's end-to-end tests), NSS's certutil
# (Chromium trusting the chat's test CA), nginx (the chat behind a reverse
# proxy and its cluster's load balancer), Python's websockets (a peer no one
# here wrote), tinyproxy and microsocks (an HTTP CONNECT and a SOCKS5 proxy
# for the client's proxy tests; the -bin package has tinyproxy without a
# system service), and from npm Node's ws (pinned by
# interop/node/package-lock.json) and the wscat client (pinned in
# cmd/chat/testdata/wscat). NATS servers need no install: the chat's tests
# embed them from their Go module. It is idempotent: what is present is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
[ -x /usr/bin/tinyproxy ] || need+=(tinyproxy-bin)
[ -x /usr/bin/microsocks ] || need+=(microsocks)
[ -x /usr/bin/certutil ] || need+=(libnss3-tools)
# nginx-light: cmd/chat's TestBehindNginx (deploy/nginx.conf) and the
# cluster tests' load balancer (e2e_cluster_test.go; deploy/nginx-cluster.conf
# is its container twin) use only upstream (least_conn, backup), proxy, map
# and ssl, all built into nginx-light.
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "install-deps: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -f interop/node/package.json ] && [ ! -d interop/node/node_modules/ws ]; then
  echo "install-deps: npm ci in interop/node"
  (cd interop/node && npm ci --no-audit --no-fund --silent)
fi

if [ -f cmd/chat/testdata/wscat/package.json ] && [ ! -d cmd/chat/testdata/wscat/node_modules/wscat ]; then
  echo "install-deps: npm ci in cmd/chat/testdata/wscat"
  (cd cmd/chat/testdata/wscat && npm ci --no-audit --no-fund --silent)
fi
