#!/usr/bin/env bash
# raftqd as a process: bad flags exit 2 naming the flag; a data directory in use and a port in use
# exit 1 naming them; three nodes elect a controller and stay up; SIGTERM stops a node with exit 0
# and it comes back from its disk; a node killed with SIGKILL comes back too. The metrics endpoint
# answers, with per-partition bytes out for a fetch the node served.
. "$(dirname "$0")/lib.sh"

out=$(raftqd_once --id 0 2>&1); rc=$?
check "a bad id exits 2 naming it" [ "$rc" -eq 2 -a -n "$(grep -e '--id' <<< "$out")" ]
out=$(raftqd_once --id 1 --listen 127.0.0.1:1 --peers 1=127.0.0.1:1 --data-dir "$WORK/x" --bogus 1 2>&1); rc=$?
check "an unknown flag exits 2 naming it" [ "$rc" -eq 2 -a -n "$(grep -e 'unknown flag .--bogus' <<< "$out")" ]

cluster_start
# Nodes log warnings only; the controller's election shows at info: restart one node with it.
node_kill 3 TERM; rm -f "$WORK/n3.log"; LOG_LEVEL=info node_start 3
check "the controller elects a leader" until_ok 300 grep -q "leader" "$WORK/n3.log"
check "every node is up" until_ok 50 bash -c "kill -0 $(node_pid 1) && kill -0 $(node_pid 2) && kill -0 $(node_pid 3)"

out=$(raftqd_once --id 1 --listen "127.0.0.1:$((BASE_PORT + 9))" --peers "$(peers)" --data-dir "$WORK/n1" 2>&1); rc=$?
check "a data directory in use exits 1 naming it" [ "$rc" -eq 1 -a -n "$(grep 'in use by another raftqd' <<< "$out")" ]
mkdir -p "$WORK/spare"
out=$(raftqd_once --id 1 --listen "127.0.0.1:$((BASE_PORT + 1))" --peers "$(peers)" --data-dir "$WORK/spare" 2>&1); rc=$?
check "a port in use exits 1" [ "$rc" -eq 1 -a -n "$(grep -i 'address already in use' <<< "$out")" ]

# The metrics endpoint: node 3 again, with --metrics on a free port.
node_kill 3 TERM; LOG_LEVEL=info node_start 3 --metrics "127.0.0.1:$((BASE_PORT + 8))"
http_get() {  # http_get PATH: the whole answer, over bash's /dev/tcp
  exec 3<> "/dev/tcp/127.0.0.1/$((BASE_PORT + 8))" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: raftq\r\n\r\n' "$1" >&3
  timeout 5 cat <&3
  exec 3<&-
}
check "GET /metrics answers in Prometheus's format" \
  until_ok 100 bash -c "$(declare -f http_get); BASE_PORT=$BASE_PORT; http_get /metrics | grep -q '^raftq_raft_term{group=\"1\"'"
check "another path is 404" bash -c "$(declare -f http_get); BASE_PORT=$BASE_PORT; http_get /nothing | head -n 1 | grep -q ' 404 '"
garbage() {  # 6,000 bytes without a blank line: over the request bound
  exec 3<> "/dev/tcp/127.0.0.1/$((BASE_PORT + 8))" || return 1
  head -c 6000 /dev/zero | tr '\0' 'x' >&3
  timeout 5 cat <&3
  exec 3<&-
}
check "an oversized request is 400, and the endpoint goes on" bash -c "$(declare -f garbage http_get); BASE_PORT=$BASE_PORT; garbage | head -n 1 | grep -q ' 400 ' && http_get /metrics | grep -q raftq_wal_fsyncs_total"
# Per-partition bytes: a fetch node 3 answers (noread.py asks any replica: from_follower 2) shows
# in its raftq_partition_bytes_out_total; bytes in count on the leader only (noread.sh sums them
# over every node), so here the family is only required to list the partition.
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s "$@"; }
# Node 3 just restarted: the controller counts it live again once its first heartbeat lands, and
# until then a topic of replication 3 is refused (RQ_EINVAL), so the create is retried.
check "a topic for the byte counters" until_ok 100 rq topic create m --partitions 1 --replication 3
check "produced into" rq produce m one two three
fetched_at_3() { python3 "$ROOT/tests/integration/noread.py" 127.0.0.1 $((BASE_PORT + 3)) m check | grep -q '^answer: records 3'; }
check "node 3 answers a fetch with the three records" until_ok 100 fetched_at_3
http_get /metrics > "$WORK/metrics3"
check "raftq_partition_bytes_out_total: nonzero on node 3" \
  grep -Eq '^raftq_partition_bytes_out_total\{group="[0-9]+",topic="m",partition="0"\} [1-9]' "$WORK/metrics3"
check "raftq_partition_bytes_in_total: the partition is listed" \
  grep -Eq '^raftq_partition_bytes_in_total\{group="[0-9]+",topic="m",partition="0"\} [0-9]' "$WORK/metrics3"
node_exit_code 2; rc=$?
check "SIGTERM stops a node with exit 0" [ "$rc" -eq 0 ]
node_start 2
check "it comes back from its disk" until_ok 50 node_alive 2
node_kill 1 KILL
node_start 1
check "a node killed with SIGKILL comes back" until_ok 50 node_alive 1
sleep 1
check "and stays up" node_alive 1
finish
