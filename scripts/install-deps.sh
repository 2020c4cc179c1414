#!/usr/bin/env bash
# install-deps.sh installs what the test suites need beyond Go, so that a fresh
# machine passes with nothing installed by hand: Debian's Chromium and
# ChromeDriver (browser interop and the chat end-to-end test), Python's
# websockets (a peer no one here wrote) and Node's ws (from npm, pinned by
# interop/node/package-lock.json). It is idempotent: what is present is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
# nginx: the load balancer in front of the chat's cluster test.
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "install-deps: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -f interop/node/package.json ] && [ ! -d interop/node/node_modules/ws ]; then
  echo "install-deps: npm ci in interop/node"
  (cd interop/node && npm ci --no-audit --no-fund --silent)
fi
