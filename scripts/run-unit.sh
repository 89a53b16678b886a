#!/usr/bin/env bash
# Runs every Check suite given; prints each suite's summary and a total line.
# Usage: scripts/run-unit.sh BIN...
set -uo pipefail
passed=0 failed=0 bad_suites=()
for bin in "$@"; do
  out=$("$bin" 2>&1); rc=$?
  summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
  printf '  %-28s %s\n' "$(basename "$bin")" "${summary:-no summary (exit $rc)}"
  checks=$(sed -nE 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/p' <<< "$summary")
  if [ -n "$checks" ]; then
    read -r c f e <<< "$checks"
    passed=$((passed + c - f - e)); failed=$((failed + f + e))
  fi
  if [ $rc -ne 0 ] || [ -z "$checks" ]; then
    bad_suites+=("$(basename "$bin")")
    printf '%s\n' "$out" | grep -vE '^(Running suite|[0-9]+%: Checks)' | head -n 40
    [ -n "$checks" ] || failed=$((failed + 1))
  fi
done
echo "unit: $passed passed, $failed failed"
[ ${#bad_suites[@]} -eq 0 ]
