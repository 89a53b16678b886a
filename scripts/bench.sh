#!/usr/bin/env bash
# make bench: three parts, each printing one table. Speeds are measurements, never pass/fail.
#   store    the storage benchmark on real files, for 1, 16 and 256 Raft groups. Each
#            configuration runs RUNS times (default 5) and the table shows the median of each
#            figure, because single runs on a shared VM disk vary widely.
#   lookup   offset lookups in a 2 GiB partition.
#   cluster  local three-node clusters (build/raftqd on 127.0.0.1, free ports, data under
#            build/bench-tmp, stopped with SIGTERM) and raftq-bench cluster against them: 1 KiB
#            messages, replication 3, acks=all, {1, 16} partitions x {1, 8} producers (as many
#            consumers), each on a fresh cluster: first as fast as possible for
#            CLUSTER_PEAK_SECONDS (default 5: a sustained peak; a burst of 100,000 messages
#            measured about twice as much, the page cache absorbing what the disk had not
#            written yet), then at half that peak rate for CLUSTER_SECONDS (default 3); then one
#            synchronous producer (--inflight 1). Each row is the median
#            of RUNS runs, with the servers' CPU per message, fsyncs/s and KiB per fsync read
#            from /proc and their metrics endpoints.
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
cl_pick_ports() {  # six free ports in a row (three nodes, three metrics endpoints)
  local try b k ok
  for try in $(seq 0 19); do
    # 10000..19990: below Linux's ephemeral ports (a port there may be taken by any outgoing
    # connection) and apart from the integration tests' 20000..31990.
    b=$(( 10000 + (($$ + try * 97) % 1000) * 10 ))
    ok=1
    for k in 1 2 3 4 5 6; do cl_port_free $((b + k)) || { ok=0; break; }; done
    if [ "$ok" = 1 ]; then cl_base=$b; return 0; fi
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
    rm -f "$cl_dir/n$i.pid"
  done
}
cl_cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  [ -n "$cl_dir" ] || return 0
  cl_stop
  rm -rf "$cl_dir"
}
cl_start() {  # a fresh cluster: every configuration starts from empty nodes
  local i peers="1=$(cl_addr 1),2=$(cl_addr 2),3=$(cl_addr 3)"
  [ -z "$cl_dir" ] || { cl_stop; rm -rf "$cl_dir"; }
  mkdir -p build/bench-tmp
  cl_dir=$(mktemp -d build/bench-tmp/cluster-XXXXXX)
  trap cl_cleanup EXIT
  for i in 1 2 3; do
    build/raftqd --id "$i" --listen "$(cl_addr "$i")" --peers "$peers" --data-dir "$cl_dir/n$i" \
      --metrics "$(cl_addr $((i + 3)))" --log-level warn >> "$cl_dir/n$i.log" 2>&1 &
    echo $! > "$cl_dir/n$i.pid"
  done
}
# One metric's value from node i's endpoint (plain HTTP over bash's /dev/tcp: no curl needed).
cl_metric() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$((cl_base + $1 + 3))"; } 2>/dev/null || { echo 0; return; }
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  line=$(timeout 5 cat <&3 | grep "^$2 " || true)
  exec 3<&-
  echo "${line##* }" | awk '{print ($1 == "") ? 0 : $1}'
}
# "cpu_ticks fsyncs bytes_written", summed over the three nodes: CPU from /proc (user + system).
cl_counters() {
  local i pid cpu=0 fs=0 by=0 t
  for i in 1 2 3; do
    pid=$(cat "$cl_dir/n$i.pid")
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    cpu=$((cpu + t))
    fs=$(awk -v a="$fs" -v b="$(cl_metric "$i" raftq_fsync_seconds_count)" 'BEGIN {print a + b}')
    by=$(awk -v a="$by" -v b="$(cl_metric "$i" raftq_disk_bytes_written_total)" 'BEGIN {print a + b}')
  done
  echo "$cpu $fs $by"
}
# One run of raftq-bench cluster; prints its JSON with the servers' figures added: CPU µs per
# acknowledged message (all three nodes), fsyncs/s and KiB per fsync (all three nodes' data files).
cl_run() {
  local before after j hz acked secs
  before=$(cl_counters)
  j=$("$bin" cluster --bootstrap "$(cl_addr 1),$(cl_addr 2),$(cl_addr 3)" --size 1024 --acks all \
        --json "$@") || { tail -n 20 "$cl_dir"/n?.log >&2; return 1; }
  after=$(cl_counters)
  hz=$(getconf CLK_TCK)
  acked=$(printf '%s' "$j" | top acked)
  secs=$(printf '%s' "$j" | top seconds)
  printf '%s' "${j%\}}"
  awk -v b="$before" -v a="$after" -v hz="$hz" -v n="$acked" -v s="$secs" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    cpu = (y[1] - x[1]) * 1e6 / hz; fs = y[2] - x[2]; by = y[3] - x[3]
    printf ",\"cpu_us_per_msg\":%.1f,\"fsyncs_per_s\":%.1f,\"kib_per_fsync\":%.1f}\n",
      (n > 0) ? cpu / n : 0, (s > 0) ? fs / s : 0, (fs > 0) ? by / 1024 / fs : 0 }'
}
cl_row() {  # cl_row PARTITIONS PRODUCERS MODE, the runs' JSON lines on stdin: medians
  local out
  out=$(cat)
  m() { printf '%s\n' "$out" | "$@" | median; }
  ms() { m field "$1" "$2" | awk '{printf "%.2f", $1 / 1000}'; }
  printf '%5s %5s | %-11s %7.0f %6.1f | %6s %6s %6s %7s | %6s %6s | %6.1f %7.0f %7.1f\n' \
    "$1" "$2" "$3" "$(m top msgs_per_s)" "$(m top mb_per_s)" \
    "$(ms produce_ack p50_us)" "$(ms produce_ack p99_us)" "$(ms produce_ack p999_us)" \
    "$(ms produce_ack max_us)" "$(ms end_to_end p50_us)" "$(ms end_to_end p99_us)" \
    "$(m top cpu_us_per_msg)" "$(m top fsyncs_per_s)" "$(m top kib_per_fsync)"
}
bench_cluster() {
  [ -x build/raftqd ] || { echo "bench: build/raftqd is missing: run 'make bench'" >&2; exit 1; }
  cl_pick_ports
  local peak_secs=${CLUSTER_PEAK_SECONDS:-5} secs=${CLUSTER_SECONDS:-3} p n k peak half out
  echo "== bench: cluster of 3 raftqd on 127.0.0.1, 1 KiB messages, replication 3, acks=all;" \
       "median of $runs runs each"
  echo "   a fresh cluster per configuration; peak: as fast as possible for $peak_secs s; rate: half"
  echo "   the peak for $secs s; sync: one producer waiting for each ack, $secs s; latency in ms;"
  echo "   cpu: the three servers' CPU time per message (µs); fsync/s and KiB/fsync: all three nodes"
  printf '%5s %5s | %-11s %7s %6s | %6s %6s %6s %7s | %6s %6s | %6s %7s %7s\n' parts prods mode \
    msg/s MB/s "ack p50" p99 p99.9 max "e2e p50" p99 cpu fsync/s KiB/fs
  for p in 1 16; do
    for n in 1 8; do
      cl_start
      out=$(for k in $(seq "$runs"); do
              cl_run --partitions "$p" --producers "$n" --consumers "$n" --duration "$peak_secs"
            done) || { echo "bench: cluster run failed (p=$p n=$n)" >&2; continue; }
      printf '%s\n' "$out" | cl_row "$p" "$n" peak
      peak=$(printf '%s\n' "$out" | top msgs_per_s | median)
      half=$(awk -v r="$peak" 'BEGIN {h = int(r / 2); print (h < 1) ? 1 : h}')
      out=$(for k in $(seq "$runs"); do
              cl_run --partitions "$p" --producers "$n" --consumers "$n" --rate "$half" \
                --messages $((half * secs))
            done) || { echo "bench: cluster run failed (p=$p n=$n rate $half)" >&2; continue; }
      printf '%s\n' "$out" | cl_row "$p" "$n" "rate $half"
    done
  done
  cl_start
  out=$(for k in $(seq "$runs"); do
          cl_run --partitions 1 --producers 1 --consumers 1 --inflight 1 --duration "$secs"
        done) || { echo "bench: cluster run failed (sync)" >&2; return; }
  printf '%s\n' "$out" | cl_row 1 1 sync
  cl_stop
}

first=1
for part in store lookup cluster; do
  case "$parts" in *" $part "*) ;; *) continue ;; esac
  [ "$first" = 1 ] || echo
  first=0
  "bench_$part" "$@"
done
