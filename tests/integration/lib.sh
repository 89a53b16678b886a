# Shared by the integration tests: a local cluster of raftqd processes on 127.0.0.1, under a
# temporary directory, every wait bounded. Source it; call cluster_stop_all at the end (a trap does
# it too). Ports come from the process id, so two runs on one machine do not collide.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RAFTQD=${RAFTQD:-$ROOT/build/raftqd}
RAFTQ=${RAFTQ:-$ROOT/build/raftq}
# A raftqd run in the foreground that is expected to fail at once: bounded, should it start.
raftqd_once() { timeout 20 "$RAFTQD" "$@"; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/raftq-it.XXXXXX")
# Below 32768, where Linux picks ephemeral ports (ip_local_port_range): a port there may be taken
# by any outgoing connection while a node is down, and its restart then fails "address in use".
BASE_PORT=$(( 20000 + ($$ % 1200) * 10 ))
NODES=3
PASSED=0 FAILED=0

peers() {
  local p="" i
  for i in $(seq 1 "$NODES"); do p="$p${p:+,}$i=127.0.0.1:$((BASE_PORT + i))"; done
  echo "$p"
}
bootstrap() {
  local b="" i
  for i in $(seq 1 "$NODES"); do b="$b${b:+,}127.0.0.1:$((BASE_PORT + i))"; done
  echo "$b"
}

node_start() {  # node_start ID [extra flags]: starts node ID in the background (LOG_LEVEL: warn)
  local id=$1; shift
  "$RAFTQD" --id "$id" --listen "127.0.0.1:$((BASE_PORT + id))" --peers "$(peers)" \
    --data-dir "$WORK/n$id" --log-level "${LOG_LEVEL:-warn}" "$@" >> "$WORK/n$id.log" 2>&1 &
  echo $! > "$WORK/n$id.pid"
}
node_pid() { cat "$WORK/n$1.pid" 2>/dev/null; }
node_alive() { local pid; pid=$(node_pid "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
node_kill() {  # node_kill ID SIGNAL: and waits (bounded) until the process is gone
  local id=$1 sig=$2 pid i
  pid=$(node_pid "$id") || return 0
  kill "-$sig" "$pid" 2>/dev/null
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  { wait "$pid"; } 2>/dev/null
}
node_exit_code() {  # node_exit_code ID: SIGTERM, then the exit code
  local id=$1 pid
  pid=$(node_pid "$id")
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
}
cluster_start() { local i; for i in $(seq 1 "$NODES"); do node_start "$i"; done; }
cluster_stop_all() {
  local i
  for i in $(seq 1 "$NODES"); do node_alive "$i" && node_kill "$i" TERM; done
  return 0
}
# The script's own exit only: a subshell inherits the trap, and one killed before it execs raftqd
# (node_start's, when a test kills a node that has just been started) would otherwise run it and
# stop every other node.
cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  cluster_stop_all
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# until TRIES COMMAND...: runs COMMAND every 0.1 s until it succeeds, at most TRIES times.
until_ok() {
  local tries=$1 i; shift
  for i in $(seq 1 "$tries"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

check() {  # check NAME COMMAND...: one assertion, counted
  local name=$1; shift
  if "$@"; then PASSED=$((PASSED + 1)); echo "  ok: $name"
  else FAILED=$((FAILED + 1)); echo "  FAILED: $name"; fi
}
finish() {
  echo "$(basename "$0"): $PASSED passed, $FAILED failed"
  if [ "$FAILED" -ne 0 ]; then   # what the nodes said, for the failure's reader
    local f
    for f in "$WORK"/n*.log; do echo "--- $f"; tail -n 15 "$f"; done
  fi
  [ "$FAILED" -eq 0 ]
}
