"""The DAGs: they import cleanly and fast, and a real `dag.test()` run does the monthly job."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, generate_world
from cjmonitor.settings import get_settings
from contracts.models import Artifact, Judgement, Submission

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata database (SQLite) in the suite's throwaway AIRFLOW_HOME."""
    airflow = [sys.executable, "-m", "airflow"]
    result = subprocess.run([*airflow, "db", "migrate"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_dag_folder_imports_without_errors_and_fast():
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(pipeline.REPO_ROOT / "dags"))
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert {"cjmonitor_monthly", "cjmonitor_returns", "cjmonitor_evidence_pack"} <= set(bag.dags)
    assert elapsed < 2.0, f"parsing the DAG folder took {elapsed:.2f} s"
    dag = bag.dags["cjmonitor_monthly"]
    assert {t.task_id for t in dag.tasks} >= {"ingest_provider", "derive_kpis", "judge_kpis", "analyse_outcomes", "render_scorecard", "render_index"}


def test_monthly_dag_run_does_the_whole_job(airflow_db, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CJMONITOR_HOME", str(home))
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    world = build_world(seed=21, areas=5, months=24)
    pipeline.load_world_reference(settings, world)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=21, areas=5, months=24)
    from cjmonitor.distribute import demo_recipients
    from tests.test_distribute import Mailbox, _free_port

    with session_scope(settings) as session:
        n_recipients = demo_recipients(session)
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    monkeypatch.setenv("CJMONITOR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CJMONITOR_SMTP_PORT", str(controller.port))

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(pipeline.REPO_ROOT / "dags")).dags["cjmonitor_monthly"]
    try:
        run = dag.test(run_conf={"period": "2024-12"})
    finally:
        controller.stop()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert len(mailbox.messages) == n_recipients, "one email per recipient, sent by the mapped distribute tasks"

    with session_scope(settings) as session:
        submissions = session.exec(select(Submission)).all()
        judgements = session.exec(select(Judgement).where(Judgement.period == "2024-12")).all()
        artifacts = session.exec(select(Artifact).where(Artifact.kind == "scorecard")).all()
    assert sum(s.status == "accepted" for s in submissions) == len(world.files) - 3
    assert sum(s.status == "rejected" for s in submissions) == 3
    assert len({(j.contract_id, j.measure_code) for j in judgements}) >= 20 * 3
    assert sorted(a.path.rsplit(".", 1)[1] for a in artifacts) == sorted(["html", "pdf", "xlsx"] * len(world.contracts))
    assert (settings.out_dir / "index.html").exists()
    for artifact in artifacts:
        suffix = artifact.path.rsplit(".", 1)[1]
        assert (settings.out_dir / "scorecards" / "2024-12" / f"{artifact.contract_id}.{suffix}").exists()


def test_returns_dag_loads_publishes_and_names_late_providers(airflow_db, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    home = tmp_path / "home"
    monkeypatch.setenv("CJMONITOR_HOME", str(home))
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=21, areas=5, months=24)
    pipeline.load_world_reference(settings, build_world(seed=21, areas=5, months=24))
    late = world.truth["late_returns"][0]
    run_month = pd.Period(late["period"], "M") + 1  # the run in the month after the late return's period

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(pipeline.REPO_ROOT / "dags")).dags["cjmonitor_returns"]
    run = dag.test(logical_date=datetime(run_month.year, run_month.month, 20, 7, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert "failed" in states["late_returns_alert"], states
    assert "success" in states["publish_if_new"]
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    overdue = pipeline.overdue_returns(settings, late["period"])
    expected = {(r["provider_id"], r["return_type"]) for r in world.truth["late_returns"] if r["period"] == late["period"]}
    assert {(r["provider_id"], r["return_type"]) for r in overdue} == expected
    with session_scope(settings) as session:
        assert sum(s.status == "accepted" for s in session.exec(select(Submission)).all()) == len(world.files) - 3
    # A rerun loads nothing new, so the asset is not updated and the monthly DAG is not triggered again.
    rerun = dag.test(logical_date=datetime(run_month.year, run_month.month, 21, 7, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in rerun.get_task_instances()}
    assert "skipped" in states["publish_if_new"], states


def test_evidence_pack_dag_writes_the_pack(airflow_db, demo_home, tmp_path, monkeypatch):
    import sqlite3

    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    monkeypatch.setenv("CJMONITOR_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(pipeline.REPO_ROOT / "dags")).dags["cjmonitor_evidence_pack"]
    run = dag.test(run_conf={"contract_id": "TTG-E23000005", "as_of": "2025-12"})
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    for name in ("pack.html", "pack.pdf", "annex.xlsx"):
        assert (home / "out" / "packs" / "TTG-E23000005" / "2025-12" / name).stat().st_size > 1000
