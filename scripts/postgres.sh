#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the PostgreSQL tests. Source it, then:
#   pg_start   initdb in a temporary folder, start on $PG_PORT (default: a free port), export
#              CJMONITOR_TEST_POSTGRES_URL and CJMONITOR_REQUIRE_POSTGRES=1; returns 1 when no server is installed
#   pg_stop    stop the cluster and delete its folder
# As root the cluster runs as the postgres user (PostgreSQL refuses to run as root).
pg_start() {
  local initdb_path
  initdb_path="$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)"
  [ -n "$initdb_path" ] || initdb_path="$(command -v initdb 2>/dev/null)"
  if [ -z "$initdb_path" ]; then
    echo "no PostgreSQL server installed (scripts/system-deps.sh installs one)" >&2
    return 1
  fi
  PG_BIN="$(dirname "$initdb_path")"
  PG_PORT="${PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  PG_DIR="$(mktemp -d /tmp/cjmonitor-pg.XXXXXX)"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    as=(su postgres -c)
  else
    as=(bash -c)
  fi
  PG_AS=("${as[@]}")
  "${as[@]}" "$PG_BIN/initdb -D $PG_DIR/data -A trust -U postgres" >/dev/null || return 1
  "${as[@]}" "$PG_BIN/pg_ctl -D $PG_DIR/data -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1' -l $PG_DIR/log -w start" >/dev/null || {
    cat "$PG_DIR/log" >&2; return 1; }
  export CJMONITOR_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/postgres"
  export CJMONITOR_REQUIRE_POSTGRES=1
  echo "PostgreSQL on 127.0.0.1:${PG_PORT} (data in $PG_DIR)" >&2
}
pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_AS[@]}" "$PG_BIN/pg_ctl -D $PG_DIR/data -m fast stop" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
