"""No silent hangs: `airflow dags test cjmonitor_monthly` as an operator runs it, on a home whose database was never
upgraded and on an Airflow with no `cjmonitor_db` pool. Each run is bounded: if a fix regresses (a retry loop, a task
waiting for a pool that is not there), the test fails at its deadline instead of hanging the suite.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _dags_test(home: Path, deadline: float, *extra: str) -> tuple[int, str, float]:
    """`airflow dags test cjmonitor_monthly` in its own process group, killed whole at ``deadline`` seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CJMONITOR_", "AIRFLOW__CORE__EXECUTOR"))}
    env["CJMONITOR_HOME"] = str(home)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "airflow", "dags", "test", "cjmonitor_monthly", *extra],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"`airflow dags test` still running after {deadline:.0f} s (a hang); output tail:\n{output[-3000:]}")
    return process.returncode, output, time.monotonic() - started


def _metadata(query: str, **params) -> list[tuple]:
    """Rows of Airflow's metadata database (the suite's, as `airflow` reads it from the environment): read
    directly, not through another `airflow` command, whose start-up would cost several seconds a call."""
    from airflow.configuration import conf
    from sqlalchemy import create_engine, text

    engine = create_engine(conf.get("database", "sql_alchemy_conn"))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query), params)]
    finally:
        engine.dispose()


def _states(output: str) -> dict[str, str]:
    """Each task's final state in the run that ``output`` (of `airflow dags test`) finished, from Airflow's metadata."""
    run_id = re.search(r"DagRun Finished: .*?run_id=(\S+?),", output)
    assert run_id, f"no finished run in the output:\n{output[-3000:]}"
    rows = _metadata("SELECT task_id, state FROM task_instance WHERE dag_id = 'cjmonitor_monthly' AND run_id = :run",
                     run=run_id.group(1))
    assert rows, f"no task instances stored for run {run_id.group(1)}"
    states: dict[str, set[str]] = {}
    for task_id, state in rows:
        states.setdefault(task_id, set()).add(state)
    return {task: "/".join(sorted(s)) for task, s in states.items()}


def test_unupgraded_database_fails_at_once_saying_what_to_run(airflow_db, tmp_path):
    home = tmp_path / "never-upgraded"
    home.mkdir()
    rc, output, seconds = _dags_test(home, 180)
    assert "run `cjmonitor db upgrade` first" in output, output[-3000:]
    assert "no such table" not in output, "a raw database error reached the operator"
    assert rc != 0 and "DagRun failed" in output
    # One task started (the check), one attempt, no retry; everything downstream is upstream_failed, unrun.
    assert output.count("Task started") == 1 and "new_state=up_for_retry" not in output
    states = _states(output)
    assert states.pop("check_database") == "failed"
    assert set(states.values()) == {"upstream_failed"}, states
    assert not (home / "out").exists()
    print(f"failed in {seconds:.1f} s")


def test_no_database_pool_still_runs_the_pooled_tasks(airflow_db, writable_demo_home):
    """This Airflow has no `cjmonitor_db` pool and CJMONITOR_DB_POOL is unset: the pooled tasks (ingest, derive) run
    in `default_pool`. Rendering and later steps are marked success unrun (`--mark-success-pattern`) to keep it short.
    """
    pools = [name for (name,) in _metadata("SELECT pool FROM slot_pool")]
    assert "default_pool" in pools and "cjmonitor_db" not in pools, pools
    skip = r"^(judge_kpis|analyse_outcomes|render_.*|list_areas|list_recipients|distribute_to)$"
    _, output, seconds = _dags_test(writable_demo_home, 300, "--mark-success-pattern", skip)
    # The run itself ends failed: the mapped renders cannot expand on the lists marked success unrun. What matters
    # is that it ended, and that the tasks of the database pool were scheduled and succeeded.
    states = _states(output)
    assert states["check_database"] == states["ingest_provider"] == states["derive_kpis"] == "success", states
    print(f"ran in {seconds:.1f} s")
