"""The scale-out, run for real on loopback: the CeleryExecutor with Debian's redis-server as the broker, two Celery
workers, Airflow's metadata and the application database on PostgreSQL (the production shape), the monthly DAG end
to end, then the daily returns DAG and a manual evidence pack on the same processes and databases.

Every process is started with the commands of README, Scaling out (scripts/airflow-local.sh with
CJMONITOR_AIRFLOW_ENV=config/airflow-celery.env for the API server, scheduler and DAG processor, and its `exec` form
for each `airflow celery worker`), each in its own process group, killed at the end whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import generate_world, load_world
from cjmonitor.settings import get_settings
from contracts.models import Artifact, Submission
from tests.airflow_processes import (
    free_port,
    postgres_databases,
    request,
    stop_group,
    token,
    trigger_and_wait,
    wait_for,
)
from tests.conftest import REPO_ROOT
from tests.deps import need_redis_server

pytestmark = [pytest.mark.postgres, pytest.mark.airflow, pytest.mark.slow]

SCRIPT = REPO_ROOT / "scripts" / "airflow-local.sh"
DAG_ID = "cjmonitor_monthly"
PERIOD = "2024-12"
WORKERS = ("worker1", "worker2")


@pytest.fixture
def databases():
    with postgres_databases("airflow", "app") as urls:
        yield urls


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def redis_broker(tmp_path):
    """redis-server on 127.0.0.1 and a free port, without persistence (no RDB snapshots, no append-only file), in a
    folder of the test's own; stopped with its process group afterwards."""
    server = need_redis_server()
    folder = tmp_path / "redis"
    folder.mkdir()
    port = free_port()
    log = folder / "redis.log"
    process = _start([server, "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
                      "--save", "", "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"],
                     {"PATH": os.environ.get("PATH", "")}, log)
    try:
        def ping():
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16) == b"+PONG\r\n"
        wait_for("redis-server", ping, 30, log, interval=0.2)
        yield {"url": f"redis://127.0.0.1:{port}/0", "log": log, "folder": folder}
    finally:
        stop_group(process)


def test_monthly_run_on_two_celery_workers(databases, redis_broker, tmp_path):
    started = time.monotonic()
    home = tmp_path / "home"
    settings = dataclasses.replace(get_settings(home), database_url=databases["app"])
    pipeline.upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=41, areas=5, months=24)
    load_world(settings, world)

    port = free_port()
    airflow_home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CJMONITOR_SMTP"))}
    env.update({
        "CJMONITOR_AIRFLOW_ENV": "config/airflow-celery.env",
        "AIRFLOW_HOME": str(airflow_home), "AIRFLOW_PORT": str(port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
        "AIRFLOW__CELERY__BROKER_URL": redis_broker["url"],
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{databases['airflow']}",
        "CJMONITOR_HOME": str(home), "CJMONITOR_DATABASE_URL": databases["app"],
        # Only the run triggered below: unpausing would otherwise also start the latest scheduled run.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    })
    logs = [tmp_path / "airflow.log", *(tmp_path / f"{name}.log" for name in WORKERS)]
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as processes:
        # API server, scheduler and DAG processor (the script migrates the metadata database and creates the pool).
        started_processes = [_start([str(SCRIPT)], env, logs[0])]
        processes.callback(stop_group, started_processes[0])
        wait_for("the API server", lambda: request(f"{url}/api/v2/monitor/health")[0] == 200, 240, logs[0],
                 processes=started_processes)
        # Two workers, one task process each (two cores here), without the log server (it would listen on every
        # interface; the API server reads the task logs from $AIRFLOW_HOME/logs on this machine).
        for name, log in zip(WORKERS, logs[1:], strict=True):
            started_processes.append(_start([str(SCRIPT), "exec", "airflow", "celery", "worker", "--celery-hostname",
                                             f"{name}@%h", "--concurrency", "1", "--skip-serve-logs"], env, log))
            processes.callback(stop_group, started_processes[-1])

        def ready() -> bool:  # Celery's "worker1@HOST ready." in each worker's log
            return all(re.search(rf"{name}@\S+ ready\.", log.read_text(errors="replace"))
                       for name, log in zip(WORKERS, logs[1:], strict=True))
        wait_for("both Celery workers to start", ready, 180, logs, interval=0.5, processes=started_processes)

        def both_listed() -> bool:  # the operator's check (README): both answer the broker
            listed = subprocess.run([str(SCRIPT), "exec", "airflow", "celery", "list-workers", "--output", "json"],
                                    env=env, capture_output=True, text=True, timeout=120)
            workers = json.loads(listed.stdout) if listed.returncode == 0 and listed.stdout.lstrip().startswith("[") else []
            return {w["worker_name"].split("@")[0] for w in workers} == set(WORKERS)
        wait_for("both Celery workers to answer `airflow celery list-workers`", both_listed, 120, logs, interval=1,
                 processes=started_processes)

        passwords = json.loads((airflow_home / "passwords.json").read_text())
        operator = token(url, "operator", passwords["operator"])

        def run_to_success(dag_id: str, body: dict) -> str:
            """Unpause ``dag_id``, trigger a run with ``body`` and wait for it to succeed; its run id."""
            wait_for(f"the DAG processor to serialise {dag_id}",
                     lambda: request(f"{url}/api/v2/dags/{dag_id}", token=operator)[0] == 200, 180, logs,
                     processes=started_processes)
            request(f"{url}/api/v2/dags/{dag_id}", method="PATCH", body={"is_paused": False}, token=operator)
            return trigger_and_wait(url, operator, dag_id, body, logs, processes=started_processes)

        triggered = time.monotonic()
        # The executor the scheduler runs, as its configuration says (the files, the environment over them); read
        # while the run goes.
        executor = subprocess.Popen([str(SCRIPT), "exec", "airflow", "config", "get-value", "core", "executor"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.callback(executor.kill)
        run_id = run_to_success(DAG_ID, {"logical_date": None, "conf": {"period": PERIOD}})
        run_seconds = time.monotonic() - triggered

        # The other two DAGs on the same scale-out and databases: the daily returns run for early January (the
        # December returns are all in and on time in this world, so the late-return alert passes and nothing new is
        # loaded), and a manual evidence pack with its parameters.
        contract_id = world.truth["failing_contracts"][0]
        run_to_success("cjmonitor_returns", {"logical_date": "2025-01-07T07:00:00Z"})
        run_to_success("cjmonitor_evidence_pack", {"logical_date": None,
                                                   "conf": {"contract_id": contract_id, "as_of": PERIOD}})

        out, err = executor.communicate(timeout=120)
        assert out.strip().splitlines()[-1:] == ["CeleryExecutor"], err[-2000:]

    with create_engine(databases["airflow"]).connect() as connection:
        tis = connection.execute(text(
            "SELECT task_id, map_index, state, external_executor_id FROM task_instance "
            "WHERE dag_id = :dag AND run_id = :run"), {"dag": DAG_ID, "run": run_id}).all()
        # Celery's result backend (the metadata database): one row per Celery task, naming the worker that ran it.
        results = dict(connection.execute(text("SELECT task_id, worker FROM celery_taskmeta WHERE status = 'SUCCESS'")).all())
    # Every task instance ran as a Celery task (its id is the task instance's external executor id, set by the
    # CeleryExecutor when it queued it) that one of the two workers ran to the end, and each worker ran some.
    # (distribute_to never runs: list_recipients skips it, no SMTP here.)
    assert {ti.task_id for ti in tis if ti.external_executor_id is None} == {"distribute_to"}, tis
    assert {ti.state for ti in tis if ti.task_id == "distribute_to"} == {"skipped"}, tis
    tis = [ti for ti in tis if ti.task_id != "distribute_to"]
    ran_on = {(ti.task_id, ti.map_index): results.get(ti.external_executor_id) for ti in tis}
    assert all(ran_on.values()), [key for key, worker in ran_on.items() if not worker]
    per_worker = Counter(worker.split("@")[0] for worker in ran_on.values())
    assert set(per_worker) == set(WORKERS), per_worker
    # The same from the workers' own logs: each received exactly the Celery tasks the result backend names it for.
    for name, log in zip(WORKERS, logs[1:], strict=True):
        received = log.read_text(errors="replace")
        for ti in tis:
            assert (f"execute_workload[{ti.external_executor_id}] received" in received) == \
                results[ti.external_executor_id].startswith(f"{name}@"), (name, ti.task_id, ti.map_index)
    # list_recipients skips itself (no SMTP here) and so distribution; everything else succeeded.
    assert {ti.state for ti in tis if ti.task_id != "list_recipients"} == {"success"}, tis
    assert {ti.state for ti in tis if ti.task_id == "list_recipients"} == {"skipped"}, tis
    assert {ti.task_id for ti in tis} >= {"check_database", "ingest_provider", "derive_kpis", "judge_kpis",
                                          "analyse_outcomes", "render_area", "render_index"}
    assert sum(ti.task_id == "render_area" for ti in tis) == 5
    # Each task process started with the application the worker imported before forking (cjmonitor/preload.py).
    task_logs = sorted((airflow_home / "logs").glob(f"dag_id={DAG_ID}/run_id=*/task_id=*/**/*.log"))
    assert len(task_logs) >= len(tis), task_logs
    cold = [str(p) for p in task_logs if "inherited from process" not in p.read_text(errors="replace")]
    assert cold == [], cold

    with session_scope(settings) as session:
        accepted = session.exec(select(Submission).where(Submission.status == "accepted")).all()
        scorecards = session.exec(select(Artifact).where(Artifact.kind == "scorecard")).all()
        reports = session.exec(select(Artifact).where(Artifact.kind == "monthly_report", Artifact.period == PERIOD)).all()
    assert len(accepted) == len(world.files) - 3
    assert sorted(a.path.rsplit(".", 1)[1] for a in scorecards) == sorted(["html", "pdf", "xlsx"] * len(world.contracts))
    assert {a.contract_id for a in scorecards} == {c.id for c in world.contracts}
    assert {a.area_code for a in reports} == {area.code for area in world.areas}, reports
    with session_scope(settings) as session:
        packs = session.exec(select(Artifact).where(Artifact.kind == "evidence_pack", Artifact.contract_id == contract_id)).all()
        assert len(session.exec(select(Submission)).all()) == len(world.files)  # the returns run loaded nothing twice
    assert sorted(a.path.rsplit(".", 1)[1] for a in packs) == ["html", "pdf", "xlsx"]
    for artifact in [*scorecards, *reports, *packs]:  # each recorded document is on disk, with the recorded checksum
        path = Path(artifact.path) if Path(artifact.path).is_absolute() else home / artifact.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256, artifact.path
    print(f"Celery: {dict(per_worker)} task instances per worker; the monthly run took {run_seconds:.0f} s, "
          f"the whole test {time.monotonic() - started:.0f} s")
