#!/usr/bin/env bash
# A local Airflow for cjmonitor on 127.0.0.1: API server + UI, scheduler and DAG processor with the
# LocalExecutor (or the executor of CJMONITOR_AIRFLOW_ENV), the project's DAGs, the settings in
# config/airflow-local.env, the `cjmonitor_db` pool (CJMONITOR_DB_POOL), and simple-auth-manager users with passwords kept in
# $AIRFLOW_HOME/passwords.json (random, mode 600, printed at start).
#
#   scripts/airflow-local.sh              start (what `make airflow` runs); Ctrl-C stops everything
#   scripts/airflow-local.sh exec CMD...  run CMD in the same environment (e.g. `airflow config get-value core executor`)
#
# Environment: AIRFLOW_HOME (default var/airflow), AIRFLOW_PORT (default: a free port), CJMONITOR_HOME
# (default the checkout), CJMONITOR_AIRFLOW_ENV (a settings file read before config/airflow-local.env, e.g.
# config/airflow-celery.env for the CeleryExecutor: README, Scaling out), and any AIRFLOW__* variable to
# override the files. With the CeleryExecutor, start each worker with
#   scripts/airflow-local.sh exec airflow celery worker --celery-hostname NAME@%h --concurrency N --skip-serve-logs
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_BIN="${CJMONITOR_VENV_BIN:-$ROOT/.venv/bin}"
PY="$VENV_BIN/python"

# CJMONITOR_AIRFLOW_ENV (e.g. config/airflow-celery.env, relative to the checkout or absolute), then
# config/airflow-local.env, each without overriding anything already set (by the environment or the file before).
env_files=()
if [[ -n "${CJMONITOR_AIRFLOW_ENV:-}" ]]; then
  [[ "$CJMONITOR_AIRFLOW_ENV" == /* ]] && env_files+=("$CJMONITOR_AIRFLOW_ENV") || env_files+=("$ROOT/$CJMONITOR_AIRFLOW_ENV")
  [[ -f "${env_files[0]}" ]] || { echo "CJMONITOR_AIRFLOW_ENV: no such file ${env_files[0]}" >&2; exit 1; }
fi
env_files+=("$ROOT/config/airflow-local.env")
for env_file in "${env_files[@]}"; do
  while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    [[ -n "${!key+x}" ]] || export "$key=$value"
  done < "$env_file"
done

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
export CJMONITOR_HOME="${CJMONITOR_HOME:-$ROOT}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
AIRFLOW_PORT="${AIRFLOW_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW_PORT"
# Where task processes report (a Celery worker on another machine sets it to the API server's address).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW_PORT/execution/}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export PATH="$VENV_BIN:$PATH"
mkdir -p "$AIRFLOW_HOME"
# Airflow's local settings (config/airflow/airflow_local_settings.py): the scheduler and Celery workers import the
# application once, before they fork task processes. An AIRFLOW_HOME with its own local settings keeps them.
if [[ ! -e "$AIRFLOW_HOME/config/airflow_local_settings.py" ]]; then
  export PYTHONPATH="$ROOT/config/airflow${PYTHONPATH:+:$PYTHONPATH}"
fi

if [[ "${1:-start}" == exec ]]; then
  shift
  exec "$@"
fi

# One random password per configured user, created once and kept (only the owner can read the file).
"$PY" - "$AIRFLOW_HOME/passwords.json" "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" <<'PYEOF'
import json, os, secrets, sys
path, users = sys.argv[1], [u.split(":")[0] for u in sys.argv[2].split(",") if u]
known = json.load(open(path)) if os.path.exists(path) else {}
for user in users:
    known.setdefault(user, secrets.token_urlsafe(12))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(known, f, indent=1)
os.chmod(path, 0o600)
PYEOF

airflow db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/migrate.log"; exit 1; }
airflow pools set "$CJMONITOR_DB_POOL" "$CJMONITOR_DB_POOL_SLOTS" \
  "cjmonitor tasks that write to the application database (ingest, derive, judge, analyse)" >/dev/null

operator_password="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["operator"])' "$AIRFLOW_HOME/passwords.json")"
cat <<MSG
cjmonitor Airflow: http://127.0.0.1:$AIRFLOW_PORT/dags
  login: operator / $operator_password   (role op; other users and passwords in $AIRFLOW_HOME/passwords.json)
  executor $AIRFLOW__CORE__EXECUTOR, parallelism $AIRFLOW__CORE__PARALLELISM, pool $CJMONITOR_DB_POOL with $CJMONITOR_DB_POOL_SLOTS slots
  CJMONITOR_HOME=$CJMONITOR_HOME   (run \`make demo\` first for data); logs in $AIRFLOW_HOME/logs; Ctrl-C stops
MSG
# The three processes of `airflow standalone`, started by hand so that nothing listens beyond 127.0.0.1:
# standalone's scheduler and triggerer would serve logs on every interface (port 8793/8794), which the
# LocalExecutor does not need (the API server reads task logs from $AIRFLOW_HOME/logs). No triggerer:
# no cjmonitor task defers. When any process ends, the others are stopped.
pids=()
stop() { trap - EXIT INT TERM; kill "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop EXIT INT TERM
airflow api-server & pids+=("$!")
airflow scheduler --skip-serve-logs & pids+=("$!")
airflow dag-processor & pids+=("$!")
wait -n
