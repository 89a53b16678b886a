#!/usr/bin/env bash
# Replays every committed fuzz corpus through its target, built with $CC and ASan+UBSan.
set -uo pipefail
cc=${CC:-cc}
mkdir -p build/fuzz-replay
core=$(ls src/*/*.c | grep -vE '^src/(shim|cmd)/')
# raft_net drives Raft through the synchronous world of sim/raftnet.c (which needs only src/).
core="$core sim/raftnet.c sim/raftnet_snapshot.c"
pass=0 fail=0
for target in fuzz/*.c; do
  name=$(basename "$target" .c)
  [ "$name" = replay_main ] && continue
  bin=build/fuzz-replay/$name
  if ! $cc -std=c11 -g -O1 -Isrc -I. -fsanitize=address,undefined -fno-sanitize-recover=all \
       "$target" fuzz/replay_main.c $core -o "$bin" 2> "$bin.log"; then
    fail=$((fail + 1)); echo "build of $name failed:"; cat "$bin.log"; continue
  fi
  files=$(find "fuzz/corpus/$name" -type f 2>/dev/null | sort)
  # shellcheck disable=SC2086
  if [ -n "$files" ] && "$bin" $files > "$bin.out" 2>&1; then pass=$((pass + 1)); echo "  $name: $(cat "$bin.out")"
  else fail=$((fail + 1)); echo "replay of $name failed (or has no corpus):"; tail -n 20 "$bin.out" 2>/dev/null; fi
done
echo "fuzz corpora: $pass passed, $fail failed"
[ $fail -eq 0 ]
