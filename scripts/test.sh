#!/usr/bin/env bash
# make test: every stage, timed. Stops at the first failing stage.
set -uo pipefail
cd "$(dirname "$0")/.."
total_start=$(date +%s)
log=$(mktemp); trap 'rm -f "$log"' EXIT
stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local start=$(date +%s)
  echo "== $name"
  if "$@" 2>&1 | tee -a "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    echo "== $name: ok ($(( $(date +%s) - start ))s)"
  else
    echo "== $name: FAILED ($(( $(date +%s) - start ))s)"
    echo "make test: FAILED at stage '$name'"
    exit 1
  fi
}
jobs=$(nproc 2>/dev/null || echo 2)
stage "lint"             scripts/lint.sh .
stage "lint self-test"   tests/lint_test.sh
stage "build"            make -s --no-print-directory -j"$jobs" all build/asan/raftq-sim unit-bins
stage "unit tests (ASan+UBSan)" make -s --no-print-directory unit
stage "integration (real processes on 127.0.0.1)" tests/integration/run.sh
stage "simulation seeds" make -s --no-print-directory seeds
stage "determinism"      make -s --no-print-directory determinism
stage "lease reads need the clock bound" tests/clock_break.sh
stage "fuzz corpora"     scripts/fuzz-replay.sh
echo "make test: all stages passed in $(( $(date +%s) - total_start ))s"
# One closing line for CI: the sum of every stage's "N passed, M failed".
sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$log" |
  awk '{p += $1; f += $2} END {printf "tests: %d passed, %d failed\n", p, f}'
