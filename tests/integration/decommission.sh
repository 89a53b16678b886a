#!/usr/bin/env bash
# Three raftqd processes and the raftq CLI: broker 3 is decommissioned before any topic exists.
# `cluster status` shows it marked decommissioned, and `topic create` without a replication factor
# or a partition count counts only the two brokers left (before the fix it counted three, and the
# controller refused to place 3 replicas over 2 members). The topic works: produced, consumed.
. "$(dirname "$0")/lib.sh"
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 30s "$@"; }

cluster_start
check "the cluster answers" until_ok 300 rq cluster status
check "broker 3 is decommissioned" rq broker decommission 3
status=$(rq cluster status 2>&1)
echo "$status" | head -n 6 | sed 's/^/    /'
check "cluster status marks it" grep -qE '^  3  .*\(decommissioned\)$' <<< "$status"
check "and only it" [ "$(grep -c '(decommissioned)' <<< "$status")" -eq 1 ]
json=$(rq --json cluster status 2>&1 | head -n 1)
check "so does --json" grep -q '"id":3,"address":"[^"]*","decommissioned":true' <<< "$json"
created=$(rq --json topic create d 2>&1)
echo "    $created"
check "the defaults count the 2 members" \
  grep -q '"created":"d","partitions":2,"replication":2' <<< "$created"
check "the topic takes a message" bash -c "echo hello | $(printf '%q' "$RAFTQ") \
  --bootstrap $(bootstrap) --timeout 30s produce d --acks all"
check "and gives it back" \
  grep -qx hello <<< "$(rq consume d --from-beginning --count 1 2>/dev/null)"
finish
