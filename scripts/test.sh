#!/usr/bin/env bash
# make test: every stage, timed. Stops at the first failing stage.
set -uo pipefail
cd "$(dirname "$0")/.."
total_start=$(date +%s)
stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local start=$(date +%s)
  echo "== $name"
  if "$@"; then
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
stage "simulation seeds" make -s --no-print-directory seeds
stage "determinism"      make -s --no-print-directory determinism
stage "fuzz corpora"     scripts/fuzz-replay.sh
echo "make test: all stages passed in $(( $(date +%s) - total_start ))s"
