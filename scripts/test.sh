#!/usr/bin/env bash
# test.sh runs every test of the project on a fresh machine: it installs
# what the tests need (scripts/install-deps.sh), checks formatting and vet,
# runs the library's tests with the race detector, replays and briefly runs
# every fuzz target, then runs each suite in scripts/test.d/ (conformance,
# interop, chat, benchmark smoke test). It runs every step even after a
# failure and exits non-zero if any failed.
#
# FUZZTIME sets how long each fuzz target runs (default 10s; 0 skips).
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "--- ok: $name ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "--- FAILED: $name ($((SECONDS - t0))s)"
  fi
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
  go test -race -count=1 $(go list ./... | grep -v /conformance)
}

fuzz() {
  local fuzztime=${FUZZTIME:-10s} targets t
  [ "$fuzztime" = 0 ] && { echo "FUZZTIME=0: skipped"; return 0; }
  targets=$(go test -list '^Fuzz' . | grep '^Fuzz')
  for t in $targets; do
    echo "fuzzing $t for $fuzztime"
    go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -parallel 2 . >/tmp/fuzz-$t.log 2>&1 || {
      cat /tmp/fuzz-$t.log
      return 1
    }
  done
}

step "install test dependencies" bash scripts/install-deps.sh
step "gofmt and go vet" check_format
step "library tests (race)" library_tests
step "fuzzing" fuzz
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  step "$(basename "$suite" .sh)" bash "$suite"
done

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
