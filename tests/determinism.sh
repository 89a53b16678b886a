#!/usr/bin/env bash
# Determinism across processes: the same seed and flags give the same last line twice, and
# tracing (which only prints) does not change the trace hash.
set -uo pipefail
sim=${1:-build/raftq-sim}
fail=0 pass=0
for args in "--seed 7" "--seed 12345 --nodes 5 --duration 30" "--seed 99 --faults crash,partition --no-swarm" \
            "--workload selftest --seed 7" "--workload store --seed 7" "--workload mq --seed 7"; do
  # shellcheck disable=SC2086
  a=$($sim $args | tail -n 1); b=$($sim $args | tail -n 1); c=$($sim $args --trace | tail -n 1)
  if [ "$a" = "$b" ] && [ "$a" = "$c" ] && [[ "$a" == *"result=ok"* ]]; then pass=$((pass + 1))
  else fail=$((fail + 1)); printf 'determinism FAILED for %s:\n  %s\n  %s\n  %s\n' "$args" "$a" "$b" "$c"; fi
done
# Across compilers: gcc and clang builds must agree (unspecified evaluation order, e.g. two RNG
# draws in one argument list, once made them differ).
this_cc=$(basename "${CC:-cc}")
case "$this_cc" in clang*) other=gcc ;; *) other=clang ;; esac
if command -v "$other" > /dev/null; then
  if make -s --no-print-directory BUILD=build/xcc CC="$other" build/xcc/raftq-sim > build/xcc.log 2>&1; then
    for args in "--seed 7" "--seed 12345 --nodes 5 --duration 30" "--seed 4242 --no-swarm" \
                "--workload selftest --seed 7" "--workload store --seed 7" "--workload mq --seed 7"; do
      # shellcheck disable=SC2086
      a=$($sim $args | tail -n 1); b=$(build/xcc/raftq-sim $args | tail -n 1)
      if [ "$a" = "$b" ]; then pass=$((pass + 1))
      else fail=$((fail + 1)); printf 'cross-compiler determinism FAILED for %s:\n  %s: %s\n  %s: %s\n' "$args" "$this_cc" "$a" "$other" "$b"; fi
    done
  else
    fail=$((fail + 1)); echo "could not build raftq-sim with $other:"; tail -n 20 build/xcc.log
  fi
fi
# bad flags: usage and exit 2
for args in "--seed" "--seed x" "--bogus" "--seed 1 --nodes 0" "--seed 1 --faults nope" "--nodes 3"; do
  # shellcheck disable=SC2086
  $sim $args > /dev/null 2>&1; rc=$?
  if [ $rc -eq 2 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "bad flags '$args' exited $rc, want 2"; fi
done
echo "determinism: $pass passed, $fail failed"
[ $fail -eq 0 ]
