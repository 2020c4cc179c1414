#!/usr/bin/env bash
# RFC 6455 conformance suite: the library's server and client sides driven by
# raw-frame test peers (see conformance/doc.go). Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== conformance: go test -race -count=1 ./conformance/..."
go test -race -count=1 ./conformance/...
