#!/usr/bin/env bash
# 40-chat.sh: the chat server (cmd/chat, its own module): gofmt, go vet and
# every test with the race detector: hub logic with in-memory connections,
# real WebSocket clients against the HTTP server, the program itself (flags,
# kill -9, SIGTERM) and the end-to-end tests in headless Chromium (the chat
# page in two tabs, restart and resume, and the seed tutorial's own page).
# Also TLS (wss:// in Chromium trusting a test CA, and wscat), the program
# behind a real nginx, sign-in, and the Dockerfile and systemd unit checked
# statically. Needs /usr/bin/chromium, certutil, nginx and wscat
# (scripts/install-deps.sh); with CI set, a missing one fails the run instead
# of skipping its tests.
set -euo pipefail
cd "$(dirname "$0")/../../cmd/chat"

echo "40-chat: gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "40-chat: not gofmt-ed:" $unformatted >&2
  exit 1
fi
echo "40-chat: go vet"
go vet ./...
echo "40-chat: go test -race"
go test -race -count=1 -timeout 10m ./...
