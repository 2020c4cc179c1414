#!/usr/bin/env bash
# test.sh runs every test of the project on a fresh machine: it installs
# what the tests need (scripts/install-deps.sh), checks formatting and vet,
# runs the library's tests with the race detector, replays and briefly runs
# every fuzz target (scripts/fuzz.sh), then runs each suite in
# scripts/test.d/ (conformance, interop, chat, benchmark smoke test). It
# runs every step even after a failure and exits non-zero if any failed.
#
# Every step logs to its own file in one temporary directory made for the
# run (printed at the start and the end, and exported to the suites as
# TEST_LOGDIR); a failing step's log is printed. The directory is removed
# after a clean run unless KEEP_LOGS=1, and kept after a failure. The run
# leaves the checkout as it found it: its last step fails if `git status`
# changed, listing what did. Reports in docs/ are made by
# their own commands (scripts/interop-report.sh for docs/INTEROP.md).
#
# FUZZTIME sets how long each fuzz target runs (default 10s; 0 skips).
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

TEST_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/wsdriver-test.XXXXXX") || exit 1
export TEST_LOGDIR
echo "logs of this run: $TEST_LOGDIR"

passed=0
failures=()
n=0

# show_log prints a failing step's log: all of it when short, else the
# lines that say what failed and the end of it.
show_log() {
  local log=$1 lines
  lines=$(wc -l <"$log")
  if [ "$lines" -le 400 ]; then
    cat "$log"
    return
  fi
  echo "[$log has $lines lines; the lines that report failures, then the last 200]"
  grep -n -E -e '--- FAIL|^FAIL|^panic:|WARNING: DATA RACE|^\s+\S+_test\.go:[0-9]+:' "$log" | head -100
  echo "[...]"
  tail -n 200 "$log"
}

# step runs a command with its output in its own log. Steps that print
# their own verdicts (the fuzz step) always show their output.
step() {
  local name=$1
  shift
  n=$((n + 1))
  local log
  log=$TEST_LOGDIR/$(printf '%02d' "$n")-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
  echo
  echo "=== $name (log: $log)"
  local t0=$SECONDS rc
  "$@" >"$log" 2>&1
  rc=$?
  case $rc in
  0)
    passed=$((passed + 1))
    [ -n "${SHOW_OUTPUT:-}" ] && cat "$log"
    echo "--- ok: $name ($((SECONDS - t0))s)"
    ;;
  *)
    failures+=("$name")
    show_log "$log"
    echo "--- FAILED: $name ($((SECONDS - t0))s)"
    ;;
  esac
}

check_format() {
  local files bad
  files=$(git ls-files '*.go' 2>/dev/null)
  [ -n "$files" ] || files=$(find . -name '*.go' -not -path '*/node_modules/*')
  bad=$(gofmt -l $files)
  if [ -n "$bad" ]; then
    echo "gofmt would change:"
    echo "$bad"
    return 1
  fi
  if grep -q '^require' go.mod; then
    echo "the library's go.mod must have no require lines"
    return 1
  fi
  go vet ./...
}

library_tests() {
  go test -race -count=1 $(go list ./... | grep -v /conformance) || return
  # The event-loop backend once more on its portable engine (the one
  # other platforms build), which Linux builds only with this tag.
  go test -race -count=1 -tags evloop_portable ./eventloop/ ./internal/evloop/
}

# checkout_state prints the checkout's uncommitted state: each path that
# git status lists, with a hash of its content (so that a file already
# modified before the run and modified again is seen too).
in_git=false
git rev-parse --is-inside-work-tree >/dev/null 2>&1 && in_git=true
checkout_state() {
  git status --porcelain=v1 -uall -z | while IFS= read -r -d '' entry; do
    local path=${entry:3}
    if [ -f "$path" ]; then
      echo "${entry:0:2} $path $(sha256sum <"$path" | cut -c1-16)"
    else
      echo "${entry:0:2} $path"
    fi
  done
}
$in_git && checkout_state >"$TEST_LOGDIR/checkout-before.txt"

checkout_unchanged() {
  checkout_state >"$TEST_LOGDIR/checkout-after.txt"
  if ! diff -u "$TEST_LOGDIR/checkout-before.txt" "$TEST_LOGDIR/checkout-after.txt" >"$TEST_LOGDIR/checkout.diff"; then
    echo "the run changed the checkout (git status before -> after; a content hash follows each path):"
    grep -E '^[-+][^-+]' "$TEST_LOGDIR/checkout.diff"
    return 1
  fi
  echo "git status is as it was before the run"
}

SHOW_OUTPUT=1 step "install test dependencies" bash scripts/install-deps.sh
step "gofmt and go vet" check_format
step "library tests (race)" library_tests
SHOW_OUTPUT=1 step "fuzzing" bash scripts/fuzz.sh "$TEST_LOGDIR"
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  step "$(basename "$suite" .sh)" bash "$suite"
done
if $in_git; then
  step "checkout unchanged" checkout_unchanged
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
if [ ${#failures[@]} -eq 0 ] && [ "${KEEP_LOGS:-}" != 1 ]; then
  rm -rf "$TEST_LOGDIR"
  echo "logs removed (KEEP_LOGS=1 keeps them)"
else
  echo "logs kept in $TEST_LOGDIR"
fi
echo "steps: $passed passed, ${#failures[@]} failed"
[ ${#failures[@]} -eq 0 ]
