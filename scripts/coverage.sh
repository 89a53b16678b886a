#!/usr/bin/env bash
# make coverage: runs the --coverage builds (unit tests + a fixed list of seeds + the corpora)
# and summarizes line/function/branch coverage of src/ and sim/; HTML under build/coverage/.
# Usage: scripts/coverage.sh COV_BUILD_DIR UNIT_BIN...
set -uo pipefail
covdir=$1; shift
for bin in "$@"; do "$bin" > /dev/null 2>&1 || echo "coverage: $(basename "$bin") failed (coverage still collected)"; done
# a slice of the seed lists, in the coverage build
sed -e 's/#.*//' tests/seeds/*.txt | grep -v '^[[:space:]]*$' | awk 'NR % 4 == 1' |
  while IFS= read -r args; do
    # shellcheck disable=SC2086
    "$covdir/raftq-sim" $args > /dev/null 2>&1 || echo "coverage: seed failed: $args"
  done
mkdir -p build/coverage
lcov --quiet --capture --directory "$covdir" --rc lcov_branch_coverage=1 \
     --output-file build/coverage/all.info 2> /dev/null
lcov --quiet --extract build/coverage/all.info "$(pwd)/src/*" "$(pwd)/sim/*" --rc lcov_branch_coverage=1 \
     --output-file build/coverage/src.info 2> /dev/null
genhtml --quiet --branch-coverage --output-directory build/coverage/html build/coverage/src.info 2> /dev/null
summary=$(lcov --summary build/coverage/src.info --rc lcov_branch_coverage=1 2>&1)
pct() { sed -nE "s/^ *$1\.*: ([0-9.]+)%.*/\1/p" <<< "$summary"; }
echo "lines: $(pct lines)% functions: $(pct functions)% branches: $(pct branches)%"
echo "per file (lines):"
lcov --list build/coverage/src.info --rc lcov_branch_coverage=1 2> /dev/null |
  grep -E '^\S+\.(c|h) *\|' | awk -F'|' '{gsub(/ /,"",$1); split($2,a," "); printf "  %-28s %s\n", $1, a[1]}'
echo "report: build/coverage/html/index.html"
