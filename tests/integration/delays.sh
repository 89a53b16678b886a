#!/usr/bin/env bash
# Time on real processes. Delayed messages: produced with --delay, they are not delivered before
# their time; the partition's leader is killed (SIGKILL) while they wait, and the next leader
# delivers them after their time, after what was produced meanwhile; they survive the restart too.
# TTL: a message produced with --ttl is delivered before it expires and never after; a reserved
# header is refused.
. "$(dirname "$0")/lib.sh"
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s "$@"; }
values() { rq consume later --from-beginning 2>/dev/null | tr '\n' ' '; }

cluster_start
check "the cluster answers" until_ok 300 rq cluster status
check "a topic of one partition" rq topic create later --partitions 1
out=$(rq produce later --delay 4s d1 d2)
check "two messages held for later" grep -q "2 of 2 messages held for later delivery" <<< "$out"
check "one message now" rq produce later now1
check "before their time only the other one is delivered" [ "$(values)" = "now1 " ]
leader=$(rq --json topic describe later | grep -o '"leader":[0-9]*' | head -1 | cut -d: -f2)
check "the partition has a leader" [ -n "$leader" ]
node_kill "$leader" KILL
# Sent as two requests, the two delayed messages may be accepted, and so released, in either order.
released() { local v; v=$(values); echo "$v" > "$WORK/values"; [ "$v" = "now1 d1 d2 " -o "$v" = "now1 d2 d1 " ]; }
check "after their time, the next leader delivers them, after the other" until_ok 200 released
node_start "$leader"
check "the killed node comes back" until_ok 100 node_alive "$leader"
out=$(rq --json consume later --from-beginning)
check "each delayed message once, at its own offset" \
  [ "$(grep -o '"offset":[0-9]*,"timestamp_ms":[0-9]*,"key":null,"value":"d[12]"' <<< "$out" | wc -l)" -eq 2 ]
out=$(rq produce later --delay 0 x 2>&1); rc=$?
check "a zero delay is bad usage" [ "$rc" -eq 2 ]
out=$(rq produce later --delay 1s --idempotent x 2>&1); rc=$?
check "delay with --idempotent is bad usage, said why" [ "$rc" -eq 2 -a -n "$(grep 'not deduplicated' <<< "$out")" ]
# (the restarted node counts for replication once its first heartbeat lands: retried)
check "a topic for TTLs" until_ok 100 rq topic create ttl --partitions 1
check "a message that lives 1.5 s" rq produce ttl --ttl 1500ms short
check "and one that lives on" rq produce ttl long
check "before its expiry it is delivered" [ "$(rq consume ttl --from-beginning | tr '\n' ' ')" = "short long " ]
sleep 2
out=$(rq --json consume ttl --from-beginning)
check "after it, never: only the other, at its own offset" \
  [ "$(grep -o '"offset":[0-9]*' <<< "$out" | tr '\n' ' ')" = '"offset":1 ' ]
finish
