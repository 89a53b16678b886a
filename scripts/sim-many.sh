#!/usr/bin/env bash
# make sim: runs seeds FIRST..FIRST+SEEDS-1 of a workload on all cores.
# Usage: scripts/sim-many.sh SEEDS FIRST WORKLOAD [raftq-sim flags...]
set -uo pipefail
count=$1 first=$2 workload=$3; shift 3
sim=${SIM:-build/raftq-sim}
jobs=$(nproc 2>/dev/null || echo 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
seq "$first" $((first + count - 1)) |
  xargs -P "$jobs" -I{} sh -c "$sim --seed {} --workload $workload $* --stats > $out/{}.out 2>&1; echo \$? > $out/{}.rc"
passed=0 failed=0 events=0 simsec=0
for seed in $(seq "$first" $((first + count - 1))); do
  last=$(grep '^seed=' "$out/$seed.out" | tail -n 1)
  ev=$(sed -nE 's/.* events=([0-9]+) .*/\1/p' <<< "$last"); events=$((events + ${ev:-0}))
  st=$(sed -nE 's/.* sim_time=([0-9]+)\..*/\1/p' <<< "$last"); simsec=$((simsec + ${st:-0}))
  if [ "$(cat "$out/$seed.rc")" = 0 ]; then passed=$((passed + 1)); continue; fi
  failed=$((failed + 1))
  echo "FAILED seed $seed: $(grep -E '^FAILED CHECK' "$out/$seed.out" | head -n 1)"
  grep '^replay:' "$out/$seed.out" || echo "  replay: $sim --seed $seed --workload $workload $* --trace"
done
echo "sim: $count seeds of $workload in $(( $(date +%s) - start ))s wall, $events events, ${simsec}s simulated"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
