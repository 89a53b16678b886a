#!/usr/bin/env bash
# Lease reads need bounded clock drift. The same raft-kv seeds, with pauses, partitions and clock
# drift, must all pass when the clocks keep their promise, and at least one must be caught serving
# a stale read when they do not (--clock-break: drift beyond the bound, and a paused process's
# clock stands still, as a suspended VM's does). A checker that never fires proves nothing.
set -uo pipefail
sim=${1:-build/raftq-sim}
seeds=${CLOCK_BREAK_SEEDS:-600}
jobs=$(nproc 2>/dev/null || echo 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags="--faults pause,partition,clock --no-swarm"
# shellcheck disable=SC2086
seq 1 "$seeds" | xargs -P "$jobs" -I{} sh -c \
  "$sim --seed {} $flags > /dev/null 2>&1 || echo {} > $out/kept.{}; \
   $sim --seed {} $flags --clock-break 2>&1 | grep -m1 'FAILED CHECK' > $out/broken.{} || true"
kept_failures=$(cat "$out"/kept.* 2> /dev/null | sort -n | tr '\n' ' ')
stale=$(grep -l 'not linearizable' "$out"/broken.* 2> /dev/null | sed 's/.*broken\.//' | sort -n)
pass=0 fail=0
if [ -z "$kept_failures" ]; then pass=$((pass + 1))
else fail=$((fail + 1)); echo "clock-break: seeds failed with the clocks within their bound: $kept_failures"; fi
if [ -n "$stale" ]; then
  pass=$((pass + 1))
  first=$(head -n 1 <<< "$stale")
  echo "clock-break: stale reads with the bound broken in seeds $(tr '\n' ' ' <<< "$stale")(of $seeds)"
  echo "  seed $first: $(cut -c1-150 "$out/broken.$first")"
else
  fail=$((fail + 1)); echo "clock-break: no stale read found in $seeds seeds: the lease test proves nothing"
fi
echo "clock-break: $pass passed, $fail failed"
[ $fail -eq 0 ]
