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


def _env_file() -> dict[str, str]:
    pairs = {}
    for line in (REPO_ROOT / "config" / "airflow-local.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def _read(tmp_path, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_PORT": "1", **overrides})
    result = subprocess.run([str(SCRIPT), "exec", str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", READ_CONFIG],
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
