#!/usr/bin/env bash
# 30-interop.sh runs the interop matrix (interop/): the library against
# Chromium, Node's ws, Python's websockets, gorilla/websocket and
# coder/websocket, both directions where the peer has a server. It fails if
# any cell fails. The matrix goes to INTEROP.md in the run's log directory
# (TEST_LOGDIR, set by scripts/test.sh; else a new temporary directory),
# never into the checkout: scripts/interop-report.sh regenerates
# docs/INTEROP.md. The peers come from scripts/install-deps.sh; with CI
# set, a missing peer is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -d interop/node/node_modules/ws ] && command -v npm >/dev/null; then
  (cd interop/node && npm ci --no-audit --no-fund --silent)
fi

logdir=${TEST_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/wsdriver-interop.XXXXXX")}
export INTEROP_REPORT="$logdir/INTEROP.md"
echo "30-interop: the matrix of a complete run goes to $INTEROP_REPORT"

cd interop
go vet ./...
go test -race -count=1 -timeout 25m "$@" ./...
