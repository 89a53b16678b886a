#!/usr/bin/env bash
# Three raftqd processes and the raftq CLI: a topic is created; 3,000 messages are produced with
# acks=all and idempotence while the leader of partition 0 is killed with SIGKILL three times and
# restarted; then everything is consumed: every acknowledged message is present exactly once, at
# the offset it was acknowledged with, and each partition's offsets are dense from 0. Then every
# node in turn is stopped with SIGTERM and restarted, and the data read again is the same.
. "$(dirname "$0")/lib.sh"
N=3000
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 30s "$@"; }
leader_of() {  # leader_of P: partition P's leader as the metadata says (empty: none)
  rq --json topic describe t 2>/dev/null |
    sed -nE "s/.*\"partition\":$1,\"leader\":([0-9]+).*/\1/p"
}

cluster_start
check "the cluster answers" until_ok 300 rq cluster status
check "a topic is created" rq topic create t --partitions 3 --replication 3

# The producer reads its messages from a slow pipe, so that the kills fall while it produces.
( for i in $(seq 0 $((N - 1))); do echo "m$i"; if [ $((i % 50)) -eq 0 ]; then sleep 0.05; fi; done |
  rq --json produce t --idempotent --acks all > "$WORK/acks.json" 2> "$WORK/produce.err";
  echo $? > "$WORK/produce.rc" ) &
producer=$!
for round in 1 2 3; do
  sleep 1
  l=$(leader_of 0)
  [ -n "$l" ] || { sleep 1; l=$(leader_of 0); }
  echo "  round $round: SIGKILL the leader of partition 0 (n${l:-?})"
  if [ -n "$l" ]; then node_kill "$l" KILL; sleep 0.5; node_start "$l"; fi
done
wait "$producer"
acked=$(grep -c '"offset":[0-9]' "$WORK/acks.json")
echo "  $acked of $N messages acknowledged (produce exit $(cat "$WORK/produce.rc"))"; head -n 3 "$WORK/produce.err"; grep -v "\"offset\":[0-9]" "$WORK/acks.json" | head -n 3
check "messages were acknowledged through the kills" [ "$acked" -gt $((N / 2)) ]
check "produce exits 0 exactly when every message was acknowledged" \
  [ "$(cat "$WORK/produce.rc")" = "$([ "$acked" -eq "$N" ] && echo 0 || echo 1)" ]

# message index -> partition, offset (acknowledged), then what the consumer read at each offset.
sed -nE 's/.*"message":([0-9]+),"partition":([0-9]+),"offset":([0-9]+).*/m\1 \2 \3/p' \
  "$WORK/acks.json" | sort > "$WORK/acked.txt"
read_all() {
  rq --json consume t --from-beginning |
    sed -nE 's/.*"partition":([0-9]+),"offset":([0-9]+).*"value":"([^"]*)".*/\3 \1 \2/p'
}
check "everything is consumed" until_ok 50 bash -c "$(declare -f rq bootstrap); RAFTQ=$RAFTQ BASE_PORT=$BASE_PORT NODES=$NODES; $(declare -f read_all); read_all > '$WORK/read.txt' && [ -s '$WORK/read.txt' ]"
sort "$WORK/read.txt" > "$WORK/read.sorted"
check "every acknowledged message at its offset" \
  [ -z "$(comm -23 "$WORK/acked.txt" "$WORK/read.sorted")" ]
check "no message twice (idempotence)" \
  [ -z "$(cut -d' ' -f1 "$WORK/read.txt" | sort | uniq -d)" ]
dense() {  # every partition's offsets 0, 1, 2, ... in the order read
  awk '{ if ($3 != next_[$2] + 0) bad = 1; next_[$2] = $3 + 1 } END { exit bad }' "$1"
}
check "offsets dense and in order per partition" dense "$WORK/read.txt"

status=$(rq --json cluster status)
check "cluster status names every replica's high watermark and lag" \
  [ "$(grep -o '"lag":[0-9]*' <<< "$status" | wc -l)" -eq 9 ]
for id in 1 2 3; do
  node_exit_code "$id" > /dev/null; node_start "$id"
  until_ok 300 rq cluster status
done
check "after every node's SIGTERM and restart, the same data" \
  until_ok 50 bash -c "$(declare -f rq bootstrap read_all); RAFTQ=$RAFTQ BASE_PORT=$BASE_PORT NODES=$NODES; read_all | sort | cmp -s - '$WORK/read.sorted'"
finish
