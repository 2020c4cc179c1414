#!/usr/bin/env bash
# fuzz.sh fuzzes every fuzz target of the library module's packages (the
# root package and its internal/ and helper packages) for FUZZTIME each (default 10s), one after the other, and goes on to the
# next target after one fails. Each target's output goes to
# LOGDIR/fuzz-<target>.log (LOGDIR: the first argument, else a new temporary
# directory, printed).
#
# Exit status: 0 when every target ran clean; 1 when a target failed (a
# crashing input, a failing seed, a build error, anything else).
#
# The fuzzing runs use Go FUZZ_GOTOOLCHAIN (default go1.27.3, which the go
# command fetches from the module proxy once, about 76 MB), whatever Go
# builds the rest: before Go 1.27, the fuzzing coordinator can end a clean
# run of a duration -fuzztime with a bare "context deadline exceeded"
# (go.dev/issue/75804), a failure that is none. With the fixed coordinator
# every failure is one to look at.
#
# go test writes a crashing input to testdata/fuzz/<target>/ in the
# checkout. The test command must leave the checkout as it found it, so the
# input is moved to LOGDIR/crashers/<target>/ and the message says how to
# add it to the corpus.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
toolchain=${FUZZ_GOTOOLCHAIN:-go1.27.3}
if [ "$fuzztime" = 0 ]; then
  echo "FUZZTIME=0: fuzzing skipped"
  exit 0
fi
logdir=${1:-}
if [ -z "$logdir" ]; then
  logdir=$(mktemp -d "${TMPDIR:-/tmp}/wsdriver-fuzz.XXXXXX")
  echo "fuzz logs in $logdir"
fi
mkdir -p "$logdir" || exit 1

if ! v=$(GOTOOLCHAIN=$toolchain go version 2>"$logdir/fuzz-toolchain.log"); then
  echo "cannot get Go $toolchain for fuzzing (FUZZ_GOTOOLCHAIN); the go command said:"
  cat "$logdir/fuzz-toolchain.log"
  exit 1
fi
echo "fuzzing with $v"

# Every package of the library module whose tests define a fuzz target:
# "dir target" pairs, dir relative to the repository root.
pairs=()
for dir in $(go list -f '{{.Dir}}' ./... 2>"$logdir/fuzz-list.log"); do
  rel=${dir#"$PWD"}
  rel=.${rel}
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  list=$(cd "$dir" && go test -list '^Fuzz' . 2>>"$logdir/fuzz-list.log" | grep '^Fuzz')
  for t in $list; do
    pairs+=("$rel $t")
  done
done
if [ ${#pairs[@]} -eq 0 ]; then
  echo "could not list the fuzz targets:"
  cat "$logdir/fuzz-list.log"
  exit 1
fi

failed=()
for pair in "${pairs[@]}"; do
  dir=${pair% *}
  t=${pair#* }
  log=$logdir/fuzz-$t.log
  t0=$SECONDS
  (cd "$dir" && GOTOOLCHAIN=$toolchain go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -parallel 2 -timeout 10m .) >"$log" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then
    echo "ok      $t (${took}s)"
    continue
  fi
  crashers=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^[:space:]]*\).*/\1/p' "$log")
  if [ -n "$crashers" ]; then
    failed+=("$t")
    echo "FAIL    $t (${took}s): crashing input found"
    cat "$log"
    mkdir -p "$logdir/crashers/$t"
    for c in $crashers; do
      name=$(basename "$c")
      if [ -f "$dir/$c" ] && mv "$dir/$c" "$logdir/crashers/$t/$name"; then
        echo "  the input is kept as $logdir/crashers/$t/$name (moved out of the checkout)"
        echo "  to reproduce it and add it to the corpus, from the repository root:"
        echo "    mkdir -p $dir/testdata/fuzz/$t && cp '$logdir/crashers/$t/$name' $dir/testdata/fuzz/$t/"
        echo "    (cd $dir && go test -run '^$t/$name\$' .)"
      else
        echo "  go test named $c, which is not there"
      fi
    done
    # A new target directory that held only the crasher goes too.
    rmdir "$dir/testdata/fuzz/$t" 2>/dev/null
  else
    failed+=("$t")
    echo "FAIL    $t (${took}s): go test exited with status $rc:"
    cat "$log"
  fi
done

echo "fuzzed ${#pairs[@]} targets for $fuzztime each: ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ] || exit 1
exit 0
