"""Production shape: Airflow's metadata database and the application database both on PostgreSQL,
and a real `airflow dags test` run of the monthly DAG against them (in a subprocess, as an operator runs it)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import generate_world, load_world
from cjmonitor.settings import get_settings
from cjmonitor.state import REPO_ROOT
from contracts.models import Artifact, Submission
from tests.airflow_processes import postgres_databases

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]


@pytest.fixture
def databases():
    with postgres_databases("airflow", "app") as urls:
        yield urls


def test_monthly_dag_runs_with_both_databases_on_postgres(databases, tmp_path):
    home = tmp_path / "home"
    settings = dataclasses.replace(get_settings(home), database_url=databases["app"])
    pipeline.upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=41, areas=5, months=24)
    load_world(settings, world)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "CJMONITOR_HOME": str(home), "CJMONITOR_DATABASE_URL": databases["app"]}
    env.pop("CJMONITOR_SMTP_HOST", None)
    airflow = [sys.executable, "-m", "airflow"]
    migrate = subprocess.run([*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    with create_engine(databases["airflow"]).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_name = 'dag_run'")).scalar() == 1
    run = subprocess.run([*airflow, "dags", "test", "cjmonitor_monthly", "-c", '{"period": "2024-12"}'], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    with create_engine(databases["airflow"]).connect() as connection:
        states = connection.execute(text("SELECT state FROM dag_run WHERE dag_id = 'cjmonitor_monthly'")).scalars().all()
    assert states == ["success"]
    with session_scope(settings) as session:
        accepted = session.exec(select(Submission).where(Submission.status == "accepted")).all()
        scorecards = session.exec(select(Artifact).where(Artifact.kind == "scorecard")).all()
    assert len(accepted) == len(world.files) - 3
    # Each contract's scorecard as HTML, PDF and XLSX.
    assert sorted(a.path.rsplit(".", 1)[1] for a in scorecards) == sorted(["html", "pdf", "xlsx"] * len(world.contracts))
    assert {a.contract_id for a in scorecards} == {c.id for c in world.contracts}

    # The other two DAGs on the same databases: the daily returns run for early January (the December returns
    # are all in and on time in this world, so the late-return alert passes and nothing new is loaded), and
    # a manual evidence pack with its parameters.
    contract_id = world.truth["failing_contracts"][0]
    for dag_id, extra in (("cjmonitor_returns", ["2025-01-07"]),
                          ("cjmonitor_evidence_pack", ["-c", json.dumps({"contract_id": contract_id, "as_of": "2024-12"})])):
        run = subprocess.run([*airflow, "dags", "test", dag_id, *extra], env=env, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, (dag_id, run.stdout[-3000:], run.stderr[-3000:])
        with create_engine(databases["airflow"]).connect() as connection:
            states = connection.execute(text("SELECT state FROM dag_run WHERE dag_id = :d"), {"d": dag_id}).scalars().all()
        assert states == ["success"], (dag_id, states)
    with session_scope(settings) as session:
        packs = session.exec(select(Artifact).where(Artifact.kind == "evidence_pack", Artifact.contract_id == contract_id)).all()
        assert len(session.exec(select(Submission)).all()) == len(world.files)  # the returns run loaded nothing twice
    assert sorted(a.path.rsplit(".", 1)[1] for a in packs) == ["html", "pdf", "xlsx"]
