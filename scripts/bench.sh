#!/usr/bin/env bash
# make bench: the storage benchmark on real files, for 1, 16 and 256 Raft groups. Each
# configuration runs RUNS times (default 5) and the table shows the median of each figure, because
# single runs on a shared VM disk vary widely. Speeds are measurements, never pass/fail.
# Builds nothing (make builds build/raftq-bench first). Extra arguments go to raftq-bench, e.g.
#   RUNS=9 scripts/bench.sh --entries 500000 --dir /mnt/nvme
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/raftq-bench
runs=${RUNS:-5}
[ -x "$bin" ] || { echo "bench: $bin is missing: run 'make bench'" >&2; exit 1; }
echo "== bench: store ($(nproc 2>/dev/null || echo '?') cores; $(uname -sr)); median of $runs runs each"
field() { sed -nE "s/.*\"$1\":\{[^}]*\"$2\":([0-9.]+).*/\\1/p"; }
top() { sed -nE "s/.*\"$1\":([0-9.]+).*/\\1/p"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf '%6s | %10s %8s %9s %9s %9s %9s | %9s | %8s\n' groups entries/s MB/s fsyncs/s rec/fsync "p50 us" "p99 us" "base MB/s" WAL/base
for g in 1 16 256; do
  out=$(for _ in $(seq "$runs"); do "$bin" store --groups "$g" --entries 200000 "$@" --json; done)
  m() { printf '%s\n' "$out" | "$@" | median; }
  printf '%6s | %10.0f %8.1f %9.1f %9.1f %9.1f %9.1f | %9.1f | %8.2f\n' "$g" \
    "$(m field wal entries_per_s)" "$(m field wal mb_per_s)" "$(m field wal fsyncs_per_s)" \
    "$(m field wal records_per_fsync)" "$(m field wal p50_us)" "$(m field wal p99_us)" \
    "$(m field baseline mb_per_s)" "$(m top wal_over_baseline)"
done
echo
echo "== bench: offset lookup in a 2 GiB partition (page cache dropped when running as root)"
"$bin" lookup --gb 2 --lookups 2000 --cold
