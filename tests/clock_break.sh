#!/usr/bin/env bash
# Lease reads need bounded clock drift. raft-kv seeds with pauses, partitions and clock drift must
# all pass when the clocks keep their promise (seeds 1..CLOCK_BREAK_SEEDS and the listed ones), and
# at least one listed seed (tests/clock_break_seeds.txt) must be caught serving a stale read when
# they do not (--clock-break: drift beyond the bound, and a paused process's clock stands still,
# as a suspended VM's does). A checker that never fires proves nothing.
# CLOCK_BREAK_SEARCH=N instead scans seeds 1..N with --clock-break and prints the ones caught, to
# renew the list after a change of the code has changed the schedules.
set -uo pipefail
sim=${1:-build/raftq-sim}
seeds=${CLOCK_BREAK_SEEDS:-300}
list=$(grep -v '^#' tests/clock_break_seeds.txt | tr -s ' \n' ' ')
jobs=$(nproc 2>/dev/null || echo 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags="--faults pause,partition,clock --no-swarm"
if [ -n "${CLOCK_BREAK_SEARCH:-}" ]; then
  # shellcheck disable=SC2086
  seq 1 "$CLOCK_BREAK_SEARCH" | xargs -P "$jobs" -I{} sh -c \
    "$sim --seed {} $flags --clock-break 2>&1 | grep -q 'not linearizable' && echo {} > $out/stale.{}"
  echo "clock-break: stale lease reads in seeds: $(cat "$out"/stale.* 2> /dev/null | sort -n | tr '\n' ' ')"
  exit 0
fi
# shellcheck disable=SC2086
{ seq 1 "$seeds"; printf '%s\n' $list; } | sort -nu | xargs -P "$jobs" -I{} sh -c \
  "$sim --seed {} $flags > /dev/null 2>&1 || echo {} > $out/kept.{}"
# shellcheck disable=SC2086
printf '%s\n' $list | xargs -P "$jobs" -I{} sh -c \
  "$sim --seed {} $flags --clock-break 2>&1 | grep -m1 'FAILED CHECK' > $out/broken.{} || true"
kept_failures=$(cat "$out"/kept.* 2> /dev/null | sort -n | tr '\n' ' ')
stale=$(grep -l 'not linearizable' "$out"/broken.* 2> /dev/null | sed 's/.*broken\.//' | sort -n)
pass=0 fail=0
if [ -z "$kept_failures" ]; then pass=$((pass + 1))
else fail=$((fail + 1)); echo "clock-break: seeds failed with the clocks within their bound: $kept_failures"; fi
if [ -n "$stale" ]; then
  pass=$((pass + 1))
  first=$(head -n 1 <<< "$stale")
  echo "clock-break: stale reads with the bound broken in seeds $(tr '\n' ' ' <<< "$stale")(of the list: $list)"
  echo "  seed $first: $(cut -c1-150 "$out/broken.$first")"
else
  fail=$((fail + 1)); echo "clock-break: no stale read in the listed seeds ($list): renew the list (see tests/clock_break_seeds.txt)"
fi
echo "clock-break: $pass passed, $fail failed"
[ $fail -eq 0 ]
