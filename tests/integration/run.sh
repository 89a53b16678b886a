#!/usr/bin/env bash
# make test's integration stage: every tests/integration/*.sh but this one and lib.sh, each with a
# bound on its whole run; ends with "integration: N passed, M failed" (scripts, not checks).
set -uo pipefail
cd "$(dirname "$0")"
pass=0 fail=0
for t in *.sh; do
  case "$t" in run.sh|lib.sh) continue ;; esac
  if timeout 300 "./$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "integration test $t FAILED"; fi
done
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
