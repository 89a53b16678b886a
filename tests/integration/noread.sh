#!/usr/bin/env bash
# A client that stops reading does not make a broker's memory grow past its bound: with about
# 2 MiB of records in a topic, a raw client (noread.py) sends FETCH requests of up to 1 MiB each
# and never reads an answer, first one every 20 ms, then 2,000 of them in one envelope (2 GiB of
# answers asked at once). Each time the broker closes that connection once its unsent answers
# pass SHIM_NET_CLIENT_OUT_BYTES_MAX (4 MiB, src/shim/net.h), says so in its log and its metrics,
# its RSS stays within RSS_GROWTH_MAX_KB of what it was before, and other clients are served
# (a produce and a consume with the CLI). Also: the per-partition byte counters of the metrics
# endpoint (raftq_partition_bytes_{in,out}_total) count what was produced and fetched.
. "$(dirname "$0")/lib.sh"
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s "$@"; }
NOREAD="$ROOT/tests/integration/noread.py"
port1=$((BASE_PORT + 1))
# The broker may hold 4 MiB of output and one 1 MiB envelope of input for the client, plus store
# reads of entries and allocator slack; without the bound it would buffer ~2 GiB here.
RSS_GROWTH_MAX_KB=$((64 * 1024))
metrics_port() { echo $((BASE_PORT + 4 + $1)); }   # node i's metrics: BASE_PORT + 5..7
for i in 1 2 3; do node_start "$i" --metrics "127.0.0.1:$(metrics_port "$i")"; done
check "the cluster answers" until_ok 300 rq cluster status

metrics() {  # metrics NODE: the node's GET /metrics answer
  exec 3<> "/dev/tcp/127.0.0.1/$(metrics_port "$1")" || return 1
  printf 'GET /metrics HTTP/1.1\r\nHost: raftq\r\n\r\n' >&3
  timeout 5 cat <&3
  exec 3<&-
}
metric_sum() {  # metric_sum NAME TOPIC: a per-partition family summed over the nodes and partitions
  local i sum=0 v
  for i in 1 2 3; do
    for v in $(metrics "$i" | grep "^$1{.*topic=\"$2\"" | awk '{print $2}'); do sum=$((sum + v)); done
  done
  echo "$sum"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$(node_pid 1)/status" 2>/dev/null; }

# About 2 MiB of records: 2,000 of 1,000 bytes, in one partition with a replica on every node.
check "create the topic" rq topic create big --partitions 1 --replication 3
line=$(head -c 1000 /dev/zero | tr '\0' 'x')
for i in $(seq 1 2000); do echo "$line"; done > "$WORK/records"
produce_records() { rq produce big < "$WORK/records" > /dev/null; }
check "produce 2 MiB" produce_records
out=$(python3 "$NOREAD" 127.0.0.1 "$port1" big check 2>&1)
echo "  $out"
check "a raw fetch (noread.py's bytes) is answered with records" \
  grep -q '^answer: records [1-9]' <<< "$out"

# Per-partition bytes: in on the leader that accepted the produce requests, out in fetch answers.
# A record as produced by the CLI is timestamp (varint) . key . value . header count: > 1,000 B.
bytes_in=$(metric_sum raftq_partition_bytes_in_total big)
bytes_out=$(metric_sum raftq_partition_bytes_out_total big)
echo "  bytes in $bytes_in, out $bytes_out (all nodes)"
# At least the records' bytes; a batch the CLI retried after a lost answer would count again.
check "raftq_partition_bytes_in_total counts what was produced" \
  [ "$bytes_in" -ge 2000000 -a "$bytes_in" -le 4200000 ]
check "raftq_partition_bytes_out_total counts the fetch answer" [ "$bytes_out" -gt 0 ]
metrics 1 > "$WORK/metrics1"
check "both are counters, labelled by topic and partition" \
  grep -q '^# TYPE raftq_partition_bytes_in_total counter' "$WORK/metrics1"
check "node 1 served the fetch: its series is nonzero" \
  grep -Eq '^raftq_partition_bytes_out_total\{group="[0-9]+",topic="big",partition="0"\} [1-9]' \
  "$WORK/metrics1"

# The RSS of node 1 sampled every 50 ms while a client does not read (bounded: at most 60 s).
rss_before=$(rss_kb)
sample_rss() {
  local i max=0 v
  for i in $(seq 1 1200); do
    v=$(rss_kb); [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
    echo "$max" > "$WORK/rss_max"
    [ -e "$WORK/rss_stop" ] && break
    sleep 0.05
  done
}
sample_rss & sampler=$!

overflows_before=$(metrics 1 | awk '/^raftq_net_client_overflows_total / {print $2}')
out=$(timeout 60 python3 "$NOREAD" 127.0.0.1 "$port1" big slow 2>&1); rc=$?
echo "  slow: $out"
check "a client reading nothing, one fetch at a time: the broker closes it" [ "$rc" -eq 0 ]
out=$(timeout 60 python3 "$NOREAD" 127.0.0.1 "$port1" big burst 2>&1); rc=$?
echo "  burst: $out"
check "2,000 fetches in one envelope, never read: closed too" [ "$rc" -eq 0 ]
touch "$WORK/rss_stop"; wait "$sampler"
rss_max=$(cat "$WORK/rss_max")
echo "  node 1 RSS: $rss_before KiB before, at most $rss_max KiB during (bound: +$RSS_GROWTH_MAX_KB KiB)"
check "RSS stayed within its bound" [ "$rss_max" -le $((rss_before + RSS_GROWTH_MAX_KB)) ]
check "the broker logged why" \
  until_ok 50 grep -q "client output over its bound (client not reading)" "$WORK/n1.log"
overflows=$(metrics 1 | awk '/^raftq_net_client_overflows_total / {print $2}')
check "raftq_net_client_overflows_total counted both" [ "$overflows" -ge $((overflows_before + 2)) ]

# Other clients are served: node 1 is alive, a produce and a consume with the CLI succeed, and
# node 1 answers a fetch.
check "node 1 is alive" node_alive 1
check "a topic is created" rq topic create after --partitions 1
check "a produce succeeds" rq produce after one-message
out=$(rq consume after --from-beginning --count 1)
check "and a consume reads it" [ "$out" = "one-message" ]
out=$(python3 "$NOREAD" 127.0.0.1 "$port1" big check 2>&1)
check "and node 1 still serves a fetch" grep -q '^answer: records [1-9]' <<< "$out"
finish
