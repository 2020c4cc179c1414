#!/usr/bin/env bash
# interop-report.sh regenerates docs/INTEROP.md: it runs the whole interop
# matrix (interop/, about 10 minutes on 2 cores) and writes the table of
# every cell, failed ones included. It fails if a cell fails, or if the run
# was partial (a peer missing, a -run filter, INTEROP_CASES), in which case
# docs/INTEROP.md is left as it was. The test command (scripts/test.sh)
# runs the same tests but never writes into the checkout. Install the peers
# first: bash scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d interop/node/node_modules/ws ] && command -v npm >/dev/null; then
  (cd interop/node && npm ci --no-audit --no-fund --silent)
fi

cd interop
export CI="${CI:-true}" # every peer is required for a report
go test -race -count=1 -timeout 25m . -args -update-report
