#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the tests and benchmarks, from the binaries
# this machine ships (/usr/lib/postgresql/*/bin, newest first; else initdb on PATH; PGTEST_BIN
# overrides). As root the server runs as the `postgres` user (initdb refuses root); as any
# other user it runs as that user.
#   eval "$(scripts/pg-test-cluster.sh start)"   # exports PGTEST_DIR and BOSUN_TEST_PG_URL
#   scripts/pg-test-cluster.sh stop "$PGTEST_DIR"
# PGTEST_PORT picks the port (default: a free one).
set -euo pipefail

fail() {
  echo "pg-test-cluster: $*" >&2
  # Printed for `eval "$(... start)"`, which would otherwise succeed on empty output.
  echo "false  # no PostgreSQL started"
  exit 1
}

find_bin() {
  if [ -n "${PGTEST_BIN:-}" ]; then
    echo "$PGTEST_BIN"
  elif ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1
  elif command -v initdb >/dev/null; then
    dirname "$(command -v initdb)"
  fi
}

# Runs a command line as the server's user: `postgres` when we are root, else ourselves.
as_server() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $((40000 + RANDOM % 20000))
}

start() {
  local bin dir port
  bin=$(find_bin)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || fail "no PostgreSQL binaries found (looked in \
/usr/lib/postgresql/*/bin and PATH; install postgresql, or set PGTEST_BIN to its bin directory)"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    fail "running as root needs a 'postgres' user to run the server as (initdb refuses root)"
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bosun-pg.XXXXXX")
  # The paths go into command lines for su and into the server's options, unquoted.
  case "$dir$bin" in
  *[!A-Za-z0-9._/-]*) rm -rf "$dir"; fail "unusual characters in '$dir' or '$bin'" ;;
  esac
  echo "$bin" >"$dir/bin"
  mkdir "$dir/sock"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
  if ! as_server "$bin/initdb -D $dir/data -U postgres --auth=trust -E UTF8" >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    fail "initdb failed (its log is above)"
  fi
  # A port found free can be taken before the server binds it: try a few.
  for _ in 1 2 3; do
    port=${PGTEST_PORT:-$(free_port)}
    if as_server "$bin/pg_ctl -D $dir/data -l $dir/server.log -w start -o \
'-p $port -c listen_addresses=127.0.0.1 -k $dir/sock -c fsync=off -c max_connections=200'" \
      >/dev/null 2>&1; then
      if ! as_server "$bin/createdb -h 127.0.0.1 -p $port -U postgres bosun_test" >&2; then
        stop "$dir"
        fail "createdb failed"
      fi
      echo "export PGTEST_DIR=$dir BOSUN_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/bosun_test"
      return
    fi
    [ -z "${PGTEST_PORT:-}" ] || break
  done
  tail -n 20 "$dir/server.log" >&2 || true
  rm -rf "$dir"
  fail "the server did not start (its log is above)"
}

stop() {
  local dir=${1:-${PGTEST_DIR:-}} bin
  [ -n "$dir" ] || { echo "usage: $0 stop DIR (or PGTEST_DIR set)" >&2; exit 2; }
  # Removes only a directory this script made.
  if [ ! -f "$dir/bin" ] || [ ! -d "$dir/sock" ]; then
    echo "pg-test-cluster: $dir is not a cluster this script started" >&2
    exit 1
  fi
  if [ -d "$dir/data" ]; then
    bin=$(cat "$dir/bin")
    as_server "$bin/pg_ctl -D $dir/data -m fast -w stop" >/dev/null 2>&1 \
      || as_server "$bin/pg_ctl -D $dir/data -m immediate -w stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
