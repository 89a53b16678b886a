#!/usr/bin/env bash
# make fuzz: builds every fuzz/*.c target with clang's libFuzzer (+ASan+UBSan) and runs each for
# FUZZ_SECONDS, starting from and adding to its corpus under fuzz/corpus/NAME/.
# Usage: scripts/fuzz.sh SECONDS
set -euo pipefail
seconds=${1:-60}
mkdir -p build/fuzz
core=$(ls src/*/*.c | grep -vE '^src/(shim|cmd)/')
# raft_net drives Raft through the synchronous world of sim/raftnet.c (which needs only src/).
core="$core sim/raftnet.c sim/raftnet_snapshot.c"
status=0
for target in fuzz/*.c; do
  name=$(basename "$target" .c)
  [ "$name" = replay_main ] && continue
  bin=build/fuzz/$name
  clang -std=c11 -g -O1 -Isrc -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "$target" $core -o "$bin"
  mkdir -p "fuzz/corpus/$name" "build/fuzz/$name.corpus"
  echo "== fuzz $name for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
       -artifact_prefix="build/fuzz/$name-" "build/fuzz/$name.corpus" "fuzz/corpus/$name" \
       2> "build/fuzz/$name.log"; then
    status=1; echo "FOUND A CRASH in $name:"; tail -n 30 "build/fuzz/$name.log"
  fi
  grep -E '^#[0-9]+.*(DONE|pulse)' "build/fuzz/$name.log" | tail -n 1 || true
done
exit $status
