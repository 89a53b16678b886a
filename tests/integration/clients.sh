#!/usr/bin/env bash
# The client port against bad input, and the CLI's commands end to end with their --json output:
# random bytes, a truncated frame and an oversized length close that connection and the broker
# serves on; topics are created, listed, described and deleted; messages produced and consumed;
# bad usage exits 2, an unreachable cluster 3, a refused operation 1 naming its error.
. "$(dirname "$0")/lib.sh"
rq() { "$RAFTQ" --bootstrap "$(bootstrap)" --timeout 20s "$@"; }
port1=$((BASE_PORT + 1))

cluster_start
check "the cluster answers" until_ok 300 rq cluster status

# Bad input on the client port: each connection is closed (the read ends), the broker goes on.
closed_after() {  # closed_after BYTES-COMMAND: sends its output, then waits for the close
  exec 3<> "/dev/tcp/127.0.0.1/$port1" || return 1
  "$@" >&3 2>/dev/null
  timeout 10 cat <&3 > /dev/null; local rc=$?
  exec 3<&-
  [ "$rc" -ne 124 ]   # 124: still open after 10 s
}
random_bytes() { head -c 4096 /dev/urandom; }
truncated_hello() { printf 'RQNH\001'; }
oversized_length() { printf 'RQNH\001\002\000\000\350\003\000\000\000\000\000\000\377\377\377\177\000\000\000\000'; }
check "random bytes: the connection is closed" closed_after random_bytes
# A frame cut short, then the client goes: the broker says so and closes its side. (A client that
# sends half a hello and then waits keeps its connection: no hello timeout is built.)
exec 3<> "/dev/tcp/127.0.0.1/$port1"; truncated_hello >&3; exec 3<&-
check "a truncated hello, then a close: logged and closed" \
  until_ok 100 grep -q "closed in the middle of a hello or an envelope" "$WORK/n1.log"
check "an oversized length: closed" closed_after oversized_length
check "and the broker serves on" rq cluster status

# Usage, reachability and refusals.
"$RAFTQ" topic create 2> /dev/null; rc=$?
check "bad usage exits 2" [ "$rc" -eq 2 ]
"$RAFTQ" --bootstrap "127.0.0.1:$((BASE_PORT + 7))" --timeout 1s cluster status > /dev/null 2>&1; rc=$?
check "an unreachable cluster exits 3" [ "$rc" -eq 3 ]
out=$(rq broker decommission 99 2>&1); rc=$?
check "a refused operation exits 1 naming its error" [ "$rc" -eq 1 -a -n "$(grep RQ_ENOENT <<< "$out")" ]

# Topics and messages, with --json output parsed.
out=$(rq --json topic create orders --partitions 2)
check "create: JSON names the topic" [ "$out" = '{"created":"orders","partitions":2,"replication":3}' ]
out=$(rq topic create orders 2>&1); rc=$?
check "create twice: RQ_ETOPICEXISTS" [ "$rc" -eq 1 -a -n "$(grep RQ_ETOPICEXISTS <<< "$out")" ]
check "list: JSON lists it" bash -c "$(declare -f rq bootstrap); RAFTQ=$RAFTQ BASE_PORT=$BASE_PORT NODES=$NODES; rq --json topic list | grep -q '{\"name\":\"orders\",\"partitions\":2}'"
out=$(rq --json topic describe orders)
check "describe: two partitions with three replicas each" \
  [ "$(grep -o '"replicas":\[[0-9],[0-9],[0-9]\]' <<< "$out" | wc -l)" -eq 2 ]
out=$(rq --json produce orders --key k one two three)
check "produce: three acknowledged offsets" [ "$(grep -c '"offset":[0-9]' <<< "$out")" -eq 3 ]
out=$(rq --json consume orders --from-beginning)
check "consume: the three values with their key" \
  [ "$(grep -o '"key":"k","value":"[a-z]*"' <<< "$out" | sed 's/.*"value"://' | sort | tr '\n' ' ')" = '"one" "three" "two" ' ]
check "delete" rq topic delete orders
check "list: gone" bash -c "$(declare -f rq bootstrap); RAFTQ=$RAFTQ BASE_PORT=$BASE_PORT NODES=$NODES; ! rq topic list | grep -qx orders"
finish
