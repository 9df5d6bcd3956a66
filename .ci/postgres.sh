#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the PostgreSQL-marked tests (by hand; `make test` does
# this itself through scripts/with-postgres.sh).
# Usage: PG_PORT=55432 source .ci/postgres.sh   (exports CJMONITOR_TEST_POSTGRES_URL; call pg_stop to stop)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/postgres.sh"
pg_start
