#!/usr/bin/env bash
# 30-interop.sh runs the interop matrix (interop/): the library against
# Chromium, Node's ws, Python's websockets, gorilla/websocket and
# coder/websocket, both directions where the peer has a server. It rewrites
# docs/INTEROP.md and fails if any cell fails. The peers come from
# scripts/install-deps.sh; with CI set, a missing peer is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -d interop/node/node_modules/ws ] && command -v npm >/dev/null; then
  (cd interop/node && npm ci --no-audit --no-fund --silent)
fi

cd interop
go vet ./...
go test -race -count=1 -timeout 25m "$@" ./...
