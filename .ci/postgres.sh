#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the PostgreSQL-marked tests.
# Usage: source .ci/postgres.sh   (exports CJMONITOR_TEST_POSTGRES_URL; call pg_stop to stop)
set -euo pipefail
PG_PORT="${PG_PORT:-55432}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_DIR="$(mktemp -d /tmp/cjmonitor-pg.XXXXXX)"
chown postgres "$PG_DIR"
su postgres -c "$PG_BIN/initdb -D $PG_DIR/data -A trust -U postgres" >/dev/null
su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1' -l $PG_DIR/log -w start" >/dev/null
export CJMONITOR_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/postgres"
export CJMONITOR_REQUIRE_POSTGRES=1
pg_stop() { su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data -m fast stop" >/dev/null || true; rm -rf "$PG_DIR"; }
echo "PostgreSQL on 127.0.0.1:${PG_PORT} (data in $PG_DIR)"
