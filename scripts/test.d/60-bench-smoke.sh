#!/usr/bin/env bash
# Benchmark suite smoke test (issue 6): vet and race-test the bench module,
# then run every echo server (the floor, ours on net/http and on the
# event-loop backend, the peers) for a fraction of a second under the load
# generator, which fails on any echo that is not byte-identical, and the chat
# fan-out row (issue 13) for a second each against the gorilla reference chat
# and cmd/chat (built from cmd/chat). The full benchmark (go run
# ./bench/cmd/wsbench, and -chat) is not run here.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "== bench: go vet"
(cd bench && go vet ./...)

echo "== bench: go test -race"
(cd bench && go test -race -count=1 -timeout 120s ./...)

echo "== bench: smoke run of every server"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd bench && go build -o "$bin/wsbench" ./cmd/wsbench)
timeout 180 "$bin/wsbench" -smoke
