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
rc=0
go test -race -count=1 -timeout 25m . -args -update-report || rc=$?
cd ..
if [ "$rc" -eq 0 ]; then
  echo "interop-report: docs/INTEROP.md regenerated, every cell passes"
else
  echo "interop-report: FAILED (exit status $rc); docs/INTEROP.md was rewritten only if the run was complete, and then lists the failed cells"
fi
git diff --stat -- docs/INTEROP.md 2>/dev/null || true
exit "$rc"
