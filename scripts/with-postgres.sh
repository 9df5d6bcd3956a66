#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL on 127.0.0.1, stopped and deleted afterwards (`make test` uses it).
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
# When CJMONITOR_TEST_POSTGRES_URL is already set, that server is used and nothing is started. When no server is
# installed the command runs without one: the PostgreSQL tests skip saying so, or fail under CI=true.
set -uo pipefail
if [ -z "${CJMONITOR_TEST_POSTGRES_URL:-}" ]; then
  source "$(dirname "$0")/postgres.sh"
  trap pg_stop EXIT INT TERM
  pg_start || echo "carrying on without PostgreSQL: its tests will skip (or fail under CI=true)" >&2
fi
"$@"
