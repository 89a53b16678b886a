#!/usr/bin/env bash
# Consumer groups on real processes: three members of a queue group share a topic's partitions;
# one is killed (SIGKILL) and its partitions move to the others after its session: every message
# is delivered, none lost; members that stop cleanly commit, so the next member of the group
# starts after them; reset-offsets moves the group back; pub/sub members each get everything.
. "$(dirname "$0")/lib.sh"
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s "$@"; }
member_start() {  # member_start NAME [flags]: a --follow member in the background, JSON records
  local name=$1; shift
  # raftq itself in the background (not the rq function's subshell), so that signals reach it
  "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s --json consume jobs --follow --from-beginning \
    --session 2s "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  echo $! > "$WORK/$name.pid"
}
member_stop() { kill "-$2" "$(cat "$WORK/$1.pid")" 2>/dev/null; { wait "$(cat "$WORK/$1.pid")"; } 2>/dev/null; }
values() { cat "$@" 2>/dev/null | grep -o '"value":"[a-z0-9-]*"' | sort -u | wc -l; }
has_all() { [ "$(values "${@:2}")" -ge "$1" ]; }

cluster_start
check "the cluster answers" until_ok 300 rq cluster status
check "a topic of three partitions" rq topic create jobs --partitions 3
produce_keyed() {  # produce_keyed FIRST LAST: m-FIRST..m-LAST, each keyed by itself (spread)
  local i; for i in $(seq "$1" "$2"); do rq produce jobs --key "k$i" "m-$i" > /dev/null || return 1; done
}
check "30 messages, keyed over the partitions" produce_keyed 1 30

member_start a --group workers
member_start b --group workers
member_start c --group workers
check "the three members get all 30 between them" until_ok 300 has_all 30 "$WORK"/a.out "$WORK"/b.out "$WORK"/c.out
out=$(rq --json group describe workers)
check "describe: three members" [ "$(grep -o '"member":[0-9]*' <<< "$out" | wc -l)" -eq 3 ]
check "each partition is held by exactly one member" \
  [ "$(grep -o '"partitions":\[[0-9,]*\]' <<< "$out" | grep -o '[0-9]' | sort | tr -d '\n')" = 012 ]

member_stop a KILL
check "60 messages in all" produce_keyed 31 60
check "the killed member's partitions move: the other two get every new message" \
  until_ok 300 bash -c "[ \$(cat '$WORK/a.out' '$WORK/b.out' '$WORK/c.out' | grep -o '\"value\":\"m-[0-9]*\"' | sort -u | wc -l) -ge 60 ]"
check "describe: two members hold the three partitions" until_ok 100 bash -c \
  "$(declare -f rq bootstrap); RAFTQ=$RAFTQ BASE_PORT=$BASE_PORT NODES=$NODES; rq --json group describe workers | grep -o '\"partitions\":\[[0-9,]*\]' | grep -o '[0-9]' | sort | tr -d '\n' | grep -qx 012"
messages_after_kill=$(cat "$WORK/b.out" "$WORK/c.out" | grep -o '"value":"m-[0-9]*"' | sed 's/.*m-//; s/"//' | awk '$1 > 30' | sort -un | wc -l)
check "no message produced after the kill is lost" [ "$messages_after_kill" -eq 30 ]

member_stop b TERM
member_stop c TERM
out=$(rq --json group describe workers --topic jobs)
check "stopped members committed: no lag on any partition" \
  [ "$(grep -o '"lag":0' <<< "$out" | wc -l)" -eq 3 ]
out=$(rq --json consume jobs --group workers --from-beginning)
check "a new member resumes after the committed offsets: nothing to read" [ -z "$(grep '"value"' <<< "$out")" ]

check "reset-offsets --to-earliest" rq group reset-offsets workers --topic jobs --to-earliest
out=$(rq --json group describe workers --topic jobs)
check "describe: committed 0 everywhere" [ "$(grep -o '"committed":0' <<< "$out" | wc -l)" -eq 3 ]
out=$(rq --json consume jobs --group workers --count 60)
check "the group reads all 60 again" [ "$(grep -o '"value":"m-[0-9]*"' <<< "$out" | sort -u | wc -l)" -eq 60 ]

out1=$(rq --json consume jobs --group audit --mode pubsub --member one --from-beginning)
out2=$(rq --json consume jobs --group audit --mode pubsub --member two --from-beginning)
check "pub/sub: member one gets all 60" [ "$(grep -o '"value":"m-[0-9]*"' <<< "$out1" | sort -u | wc -l)" -eq 60 ]
check "pub/sub: member two gets all 60 too" [ "$(grep -o '"value":"m-[0-9]*"' <<< "$out2" | sort -u | wc -l)" -eq 60 ]
out=$(rq --json group describe audit --member one --topic jobs)
check "pub/sub: member one's own cursor is committed at the end" [ "$(grep -o '"lag":0' <<< "$out" | wc -l)" -eq 3 ]
finish
