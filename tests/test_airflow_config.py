"""The one-machine Airflow configuration that `make airflow` uses (config/airflow-local.env) is what Airflow reads,
and the DAGs' database-heavy tasks run in the pool that the start script creates."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.airflow

SCRIPT = REPO_ROOT / "scripts" / "airflow-local.sh"
READ_CONFIG = """
import json
from airflow.configuration import conf
print(json.dumps({
    "executor": conf.get("core", "executor"),
    "parallelism": conf.getint("core", "parallelism"),
    "max_active_tasks_per_dag": conf.getint("core", "max_active_tasks_per_dag"),
    "users": conf.get("core", "simple_auth_manager_users"),
    "all_admins": conf.getboolean("core", "simple_auth_manager_all_admins"),
    "dags_folder": conf.get("core", "dags_folder"),
    "api_host": conf.get("api", "host"),
}))
"""


def _env_file(name: str = "airflow-local.env") -> dict[str, str]:
    pairs = {}
    for line in (REPO_ROOT / "config" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def _read(tmp_path, **overrides) -> dict:
    return _read_script(tmp_path, READ_CONFIG, **overrides)


def _read_script(tmp_path, script: str, **overrides) -> dict:
    """What ``script`` prints last (JSON), run through scripts/airflow-local.sh's `exec` with ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CJMONITOR_AIRFLOW_ENV"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_PORT": "1", **overrides})
    result = subprocess.run([str(SCRIPT), "exec", str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", script],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_airflow_reads_the_local_executor_settings(tmp_path):
    declared = _env_file()
    read = _read(tmp_path)
    assert read["executor"] == declared["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert read["parallelism"] == int(declared["AIRFLOW__CORE__PARALLELISM"]) == 4
    assert read["max_active_tasks_per_dag"] == int(declared["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"])
    assert read["users"] == "operator:op,viewer:viewer,admin:admin" and read["all_admins"] is False
    assert read["dags_folder"] == str(REPO_ROOT / "dags") and read["api_host"] == "127.0.0.1"
    # The environment wins over the file, so an operator can raise parallelism on a bigger machine.
    assert _read(tmp_path, AIRFLOW__CORE__PARALLELISM="16")["parallelism"] == 16


READ_CELERY_CONFIG = """
import json
from airflow.configuration import conf
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG as celery
print(json.dumps({
    "executor": conf.get("core", "executor"),
    "parallelism": conf.getint("core", "parallelism"),
    "users": conf.get("core", "simple_auth_manager_users"),
    "broker_url": celery["broker_url"],
    "worker_concurrency": celery["worker_concurrency"],
    "result_extended": celery.get("result_extended"),
    "visibility_timeout": celery["broker_transport_options"].get("visibility_timeout"),
    "result_backend": celery["result_backend"],
}))
"""


def test_airflow_reads_the_celery_settings_over_the_local_ones(tmp_path):
    # What the Celery app of the scheduler and of `airflow celery worker` is built from (tests/test_airflow_celery.py
    # runs them): config/airflow-celery.env first, config/airflow-local.env for the rest, the environment over both.
    declared = _env_file("airflow-celery.env")
    conn = "postgresql+psycopg://airflow@127.0.0.1:1/airflow"
    read = _read_script(tmp_path, READ_CELERY_CONFIG, CJMONITOR_AIRFLOW_ENV="config/airflow-celery.env",
                        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=conn)
    assert read["executor"] == declared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert read["broker_url"] == declared["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert read["worker_concurrency"] == int(declared["AIRFLOW__CELERY__WORKER_CONCURRENCY"])
    assert read["result_extended"] is True
    assert read["visibility_timeout"] == int(declared["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"])
    # Unset, Celery's results go to Airflow's metadata database.
    assert read["result_backend"] == f"db+{conn}"
    # The rest still comes from the one-machine file.
    assert read["parallelism"] == int(_env_file()["AIRFLOW__CORE__PARALLELISM"])
    assert read["users"] == _env_file()["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    moved = _read_script(tmp_path, READ_CELERY_CONFIG, CJMONITOR_AIRFLOW_ENV="config/airflow-celery.env",
                         AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=conn, AIRFLOW__CELERY__BROKER_URL="redis://10.0.0.5:6379/1")
    assert moved["broker_url"] == "redis://10.0.0.5:6379/1"


def test_a_missing_executor_file_stops_the_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_PORT": "1",
                "CJMONITOR_AIRFLOW_ENV": "config/no-such.env"})
    result = subprocess.run([str(SCRIPT), "exec", "true"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"CJMONITOR_AIRFLOW_ENV: no such file {REPO_ROOT}/config/no-such.env" in result.stderr


PARSE_POOLS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({f"{d}.{t.task_id}": t.pool for d, dag in bag.dags.items() for t in dag.tasks}))
"""


def _pools(tmp_path, **env_overrides) -> dict[str, str]:
    """The pool of every task, as a DAG processor started by scripts/airflow-local.sh (or not) parses them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CJMONITOR_DB_POOL")}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_PORT": "1", **env_overrides})
    command = [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", PARSE_POOLS, str(REPO_ROOT / "dags")]
    if "via_script" in env:
        command = [str(SCRIPT), "exec", *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_heavy_tasks_share_the_declared_pool(tmp_path):
    declared = _env_file()
    assert int(declared["CJMONITOR_DB_POOL_SLOTS"]) >= 1 and declared["CJMONITOR_DB_POOL"] == "cjmonitor_db"
    pools = _pools(tmp_path, via_script="1")
    for task in ("ingest_provider", "derive_kpis", "judge_kpis", "analyse_outcomes"):
        assert pools[f"cjmonitor_monthly.{task}"] == "cjmonitor_db"
    assert pools["cjmonitor_returns.ingest_provider"] == "cjmonitor_db"
    # Rendering is CPU-bound, not database-bound: it stays in the default pool, capped per run instead.
    assert pools["cjmonitor_monthly.render_area"] == "default_pool"
    # The schema check holds no slot of the database pool and cannot wait for one.
    assert pools["cjmonitor_monthly.check_database"] == "default_pool"
    # Without the start script (nothing created the pool), every task is in `default_pool`, which always exists:
    # no task can wait for ever on a pool that is not there.
    assert set(_pools(tmp_path).values()) == {"default_pool"}
