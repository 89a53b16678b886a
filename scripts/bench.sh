#!/usr/bin/env bash
# make bench: three parts, each printing one table. Speeds are measurements, never pass/fail.
#   store    the storage benchmark on real files, for 1, 16 and 256 Raft groups. Each
#            configuration runs RUNS times (default 5) and the table shows the median of each
#            figure, because single runs on a shared VM disk vary widely.
#   lookup   offset lookups in a 2 GiB partition.
#   cluster  a local three-node cluster (build/raftqd on 127.0.0.1, free ports, data under
#            build/bench-tmp, stopped with SIGTERM at the end) and raftq-bench cluster against it:
#            1 KiB messages, replication 3, acks=all, {1, 16} partitions x {1, 8} producers (as
#            many consumers), first as fast as possible (CLUSTER_MESSAGES messages, default
#            100000), then at half that peak rate for CLUSTER_SECONDS (default 5) to measure
#            latency. One run each: the table says what one run saw.
# BENCH_PARTS picks parts (default "store lookup cluster"). Builds nothing (make builds
# build/raftq-bench and build/raftqd first). Extra arguments go to raftq-bench store, e.g.
#   RUNS=9 scripts/bench.sh --entries 500000 --dir /mnt/nvme
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/raftq-bench
runs=${RUNS:-5}
parts=" ${BENCH_PARTS:-store lookup cluster} "
[ -x "$bin" ] || { echo "bench: $bin is missing: run 'make bench'" >&2; exit 1; }
field() { sed -nE "s/.*\"$1\":\{[^}]*\"$2\":([0-9.]+).*/\\1/p"; }
top() { sed -nE "s/.*\"$1\":([0-9.]+).*/\\1/p"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
bench_store() {
  echo "== bench: store ($(nproc 2>/dev/null || echo '?') cores; $(uname -sr)); median of $runs runs each"
  printf '%6s | %10s %8s %9s %9s %9s %9s | %9s | %8s\n' groups entries/s MB/s fsyncs/s rec/fsync "p50 us" "p99 us" "base MB/s" WAL/base
  for g in 1 16 256; do
    out=$(for _ in $(seq "$runs"); do "$bin" store --groups "$g" --entries 200000 "$@" --json; done)
    m() { printf '%s\n' "$out" | "$@" | median; }
    printf '%6s | %10.0f %8.1f %9.1f %9.1f %9.1f %9.1f | %9.1f | %8.2f\n' "$g" \
      "$(m field wal entries_per_s)" "$(m field wal mb_per_s)" "$(m field wal fsyncs_per_s)" \
      "$(m field wal records_per_fsync)" "$(m field wal p50_us)" "$(m field wal p99_us)" \
      "$(m field baseline mb_per_s)" "$(m top wal_over_baseline)"
  done
}

bench_lookup() {
  echo "== bench: offset lookup in a 2 GiB partition (page cache dropped when running as root)"
  "$bin" lookup --gb 2 --lookups 2000 --cold
}

# ---- the cluster --------------------------------------------------------------------------------
# As tests/integration/lib.sh does: pid files, bounded waits, and a cleanup trap that only the
# script itself runs (a subshell inherits the trap; one killed before it exec'd raftqd would
# otherwise stop every node).
cl_dir="" cl_base=0
cl_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cl_pick_ports() {  # three free ports in a row, from a base derived from the pid
  local try b
  for try in $(seq 0 19); do
    b=$(( 30000 + (($$ + try * 97) % 3000) * 10 ))
    if cl_port_free $((b + 1)) && cl_port_free $((b + 2)) && cl_port_free $((b + 3)); then
      cl_base=$b; return 0
    fi
  done
  echo "bench: no free ports found" >&2; return 1
}
cl_addr() { echo "127.0.0.1:$((cl_base + $1))"; }
cl_stop() {
  local i pid
  for i in 1 2 3; do
    pid=$(cat "$cl_dir/n$i.pid" 2>/dev/null) || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true  # still there after 10 s: not ours to wait for
    { wait "$pid"; } 2>/dev/null || true
  done
}
cl_cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  [ -n "$cl_dir" ] || return 0
  cl_stop
  rm -rf "$cl_dir"
}
cl_start() {
  local i peers="1=$(cl_addr 1),2=$(cl_addr 2),3=$(cl_addr 3)"
  mkdir -p build/bench-tmp
  cl_dir=$(mktemp -d build/bench-tmp/cluster-XXXXXX)
  trap cl_cleanup EXIT
  for i in 1 2 3; do
    build/raftqd --id "$i" --listen "$(cl_addr "$i")" --peers "$peers" --data-dir "$cl_dir/n$i" \
      --log-level warn >> "$cl_dir/n$i.log" 2>&1 &
    echo $! > "$cl_dir/n$i.pid"
  done
}
cl_row() {  # cl_row PARTITIONS PRODUCERS MODE JSON
  local j=$4
  printf '%5s %5s | %-11s %9.0f %7.1f | %7.1f %7.1f %7.1f %7.1f | %7.1f %7.1f %7.1f %7.1f\n' \
    "$1" "$2" "$3" "$(printf '%s' "$j" | top msgs_per_s)" "$(printf '%s' "$j" | top mb_per_s)" \
    "$(ms produce_ack p50_us)" "$(ms produce_ack p99_us)" "$(ms produce_ack p999_us)" \
    "$(ms produce_ack max_us)" "$(ms end_to_end p50_us)" "$(ms end_to_end p99_us)" \
    "$(ms end_to_end p999_us)" "$(ms end_to_end max_us)"
}
bench_cluster() {
  [ -x build/raftqd ] || { echo "bench: build/raftqd is missing: run 'make bench'" >&2; exit 1; }
  cl_pick_ports
  cl_start
  local boot msgs=${CLUSTER_MESSAGES:-100000} secs=${CLUSTER_SECONDS:-5} p n peak half j
  boot="$(cl_addr 1),$(cl_addr 2),$(cl_addr 3)"
  echo "== bench: cluster of 3 raftqd on 127.0.0.1 ($cl_dir), 1 KiB messages, replication 3, acks=all"
  echo "   peak: $msgs messages as fast as possible; rate: half the peak for $secs s; latency in ms"
  printf '%5s %5s | %-11s %9s %7s | %7s %7s %7s %7s | %7s %7s %7s %7s\n' parts prods mode \
    msg/s MB/s "ack p50" p99 p99.9 max "e2e p50" p99 p99.9 max
  for p in 1 16; do
    for n in 1 8; do
      run() { "$bin" cluster --bootstrap "$boot" --partitions "$p" --producers "$n" \
                --consumers "$n" --size 1024 --acks all --json "$@"; }
      j=$(run --messages "$msgs") || { echo "bench: cluster run failed (p=$p n=$n)" >&2; continue; }
      ms() { printf '%s' "$j" | field "$1" "$2" | awk '{printf "%.3f", $1 / 1000}'; }
      cl_row "$p" "$n" peak "$j"
      peak=$(printf '%s' "$j" | top msgs_per_s)
      half=$(awk -v r="$peak" 'BEGIN {h = int(r / 2); print (h < 1) ? 1 : h}')
      j=$(run --rate "$half" --messages $((half * secs))) ||
        { echo "bench: cluster run failed (p=$p n=$n rate $half)" >&2; continue; }
      cl_row "$p" "$n" "rate $half" "$j"
    done
  done
  cl_stop
}

first=1
for part in store lookup cluster; do
  case "$parts" in *" $part "*) ;; *) continue ;; esac
  [ "$first" = 1 ] || echo
  first=0
  "bench_$part" "$@"
done
