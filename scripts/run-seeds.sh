#!/usr/bin/env bash
# Replays the fixed seed lists (tests/seeds/*.txt): each line holds raftq-sim arguments,
# '#' starts a comment. Runs on all cores; prints the replay command of every failure.
# A slice of each list also runs under AddressSanitizer+UBSan.
# Usage: scripts/run-seeds.sh [SIM_BINARY] [ASAN_SIM_BINARY]
set -uo pipefail
sim=${1:-build/raftq-sim}
asan_sim=${2:-build/asan/raftq-sim}
asan_every=${ASAN_EVERY:-10}   # every Nth line also under the sanitizers
jobs=$(nproc 2>/dev/null || echo 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

lines=$(cat tests/seeds/*.txt | sed -e 's/#.*//' -e 's/[[:space:]]*$//' | grep -v '^$' || true)
n=0
while IFS= read -r args; do
  [ -n "$args" ] || continue
  n=$((n + 1))
  printf '%s\t%s\n' "$sim" "$args" > "$out/job.$n"
  if [ $((n % asan_every)) -eq 1 ]; then
    n=$((n + 1)); printf '%s\t%s\n' "$asan_sim" "$args" > "$out/job.$n"
  fi
done <<< "$lines"

run_one() {
  job=$1
  IFS=$'\t' read -r bin args < "$job"
  # shellcheck disable=SC2086
  if "$bin" $args > "$job.out" 2>&1; then echo ok > "$job.rc"; else echo fail > "$job.rc"; fi
}
export -f run_one
ls "$out"/job.* 2>/dev/null | grep -E 'job\.[0-9]+$' | xargs -P "$jobs" -I{} bash -c 'run_one {}'

passed=0 failed=0
for job in $(ls "$out"/job.* | grep -E 'job\.[0-9]+$' | sort -t. -k2 -n); do
  if [ "$(cat "$job.rc")" = ok ]; then passed=$((passed + 1)); continue; fi
  failed=$((failed + 1))
  IFS=$'\t' read -r bin args < "$job"
  echo "FAILED: $bin $args"
  grep -E '^(FAILED CHECK|replay|seed=)|assertion|ERROR' "$job.out" | head -n 5 | sed 's/^/    /'
done
echo "seeds: $passed passed, $failed failed"
[ $failed -eq 0 ]
