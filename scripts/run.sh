#!/usr/bin/env bash
# make run: a three-node raftq cluster on 127.0.0.1 (ports 7001..7003), data under ./data, logs
# under ./data/nN.log; prints how to use it with build/raftq, and stops every node cleanly (SIGTERM,
# in-flight disk writes finish) on Ctrl-C. Run it again: the nodes recover from ./data.
set -uo pipefail
cd "$(dirname "$0")/.."
PEERS=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
mkdir -p data
pids=()
stop() {
  echo
  echo "stopping the cluster (SIGTERM)..."
  kill -TERM "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  echo "stopped; the data stays in ./data (make run again to restart from it)"
  exit 0
}
trap stop INT TERM
for id in 1 2 3; do
  build/raftqd --id "$id" --listen "127.0.0.1:700$id" --peers "$PEERS" --data-dir "data/n$id" \
    >> "data/n$id.log" 2>&1 &
  pids+=($!)
done
sleep 0.5
for i in 0 1 2; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "node $((i + 1)) did not start:"; tail -n 5 "data/n$((i + 1)).log"; stop
  fi
done
cat <<'USAGE'
raftq: a three-node cluster is running on 127.0.0.1:7001..7003 (data and logs in ./data).

  build/raftq cluster status
  build/raftq topic create orders
  build/raftq produce orders "hello" "world"          # or: seq 1 100 | build/raftq produce orders
  build/raftq consume orders --from-beginning
  build/raftq consume orders --follow                 # in another terminal; Ctrl-C to stop

Ctrl-C here stops all three nodes.
USAGE
wait "${pids[@]}"
echo "every node has exited (see ./data/nN.log)"
