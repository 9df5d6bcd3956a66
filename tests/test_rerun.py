"""The monthly DAG on real `dag.test()` runs: the whole job, then a safe rerun and a safe backfill.

* The first run ingests, derives, judges, analyses, renders and emails each recipient once (a real
  SMTP server on loopback).

* Rerun: the finished monthly run for a period, run again, leaves every row of every application
  table (checksummed per table) as it was, every file under ``out/`` byte for byte as it was (documents
  carry the data's own cut, the latest accepted return, not the clock; chart ids come from the chart's
  content; PDF and XLSX dates are the data cut), so every artifact row keeps its sha256 and created_at,
  and nobody is emailed twice.
* Backfill: a past period's run writes that period's documents and leaves the latest period's
  documents, their artifact rows and the index untouched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlmodel import SQLModel, select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, generate_world, load_world
from cjmonitor.settings import get_settings
from cjmonitor.state import REPO_ROOT
from contracts.models import Artifact, Judgement, Submission
from tests.db_checksums import table_checksums, table_rows, unreferenced_surrogate_keys

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

LATEST, PAST = "2024-12", "2024-06"


def _files(out_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(out_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out_dir.rglob("*")) if p.is_file()}


def _monthly_dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags")).dags["cjmonitor_monthly"]


def _run(period: str):
    run = _monthly_dag().test(run_conf={"period": period})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), states
    return run


@pytest.fixture(scope="module")
def finished_run(airflow_db, tmp_path_factory):
    """A home after one complete monthly run for the latest period, with a real SMTP server on loopback."""
    from aiosmtpd.controller import Controller

    from cjmonitor.distribute import demo_recipients
    from tests.test_distribute import Mailbox, _free_port

    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("rerun-home")
    mp.setenv("CJMONITOR_HOME", str(home))
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=21, areas=5, months=24))
    world = generate_world(settings.drop_dir, settings.truth_path, seed=21, areas=5, months=24)
    with session_scope(settings) as session:
        n_recipients = demo_recipients(session)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    mp.setenv("CJMONITOR_SMTP_HOST", "127.0.0.1")
    mp.setenv("CJMONITOR_SMTP_PORT", str(controller.port))
    try:
        _run(LATEST)
        yield {"settings": settings, "world": world, "mailbox": mailbox, "n_recipients": n_recipients,
               "sent_by_first_run": len(mailbox.messages)}
    finally:
        controller.stop()
        mp.undo()


def test_monthly_dag_run_does_the_whole_job(finished_run):
    settings, world = finished_run["settings"], finished_run["world"]
    assert finished_run["sent_by_first_run"] == finished_run["n_recipients"], \
        "one email per recipient, sent by the mapped distribute tasks"
    with session_scope(settings) as session:
        submissions = session.exec(select(Submission)).all()
        judgements = session.exec(select(Judgement).where(Judgement.period == LATEST)).all()
        artifacts = session.exec(select(Artifact).where(Artifact.kind == "scorecard")).all()
    assert sum(s.status == "accepted" for s in submissions) == len(world.files) - 3
    assert sum(s.status == "rejected" for s in submissions) == 3
    assert len({(j.contract_id, j.measure_code) for j in judgements}) >= 20 * 3
    assert sorted(a.path.rsplit(".", 1)[1] for a in artifacts) == sorted(["html", "pdf", "xlsx"] * len(world.contracts))
    assert (settings.out_dir / "index.html").exists()
    for artifact in artifacts:
        suffix = artifact.path.rsplit(".", 1)[1]
        assert (settings.out_dir / "scorecards" / LATEST / f"{artifact.contract_id}.{suffix}").exists()


def test_recomputed_tables_have_no_referenced_ids():
    # The checksums leave out only the surrogate id of tables recomputed wholesale; that is safe while
    # nothing refers to those ids and each table has a unique business key.
    assert unreferenced_surrogate_keys() == {}


def test_rerunning_the_finished_monthly_run_changes_nothing(finished_run):
    settings = finished_run["settings"]
    before_tables, before_files = table_checksums(settings), _files(settings.out_dir)
    before_artifacts = table_rows(settings, "artifact")
    assert before_tables["judgement"][0] > 0 and before_tables["finding"][0] > 0 and before_tables["artifact"][0] > 0
    assert any(name.endswith(".pdf") for name in before_files) and any(name.endswith(".xlsx") for name in before_files)

    _run(LATEST)

    after_tables, after_files = table_checksums(settings), _files(settings.out_dir)
    changed = sorted(name for name in before_tables if before_tables[name] != after_tables[name])
    assert changed == [], f"tables changed by a rerun: {changed}"
    assert table_rows(settings, "artifact") == before_artifacts  # same sha256 and created_at: same bytes
    assert set(after_files) == set(before_files), "a rerun added or removed files"
    rewritten = sorted(name for name in before_files if before_files[name] != after_files[name])
    assert rewritten == [], f"a rerun changed the bytes of {len(rewritten)} files, e.g. {rewritten[:5]}"
    assert len(finished_run["mailbox"].messages) == finished_run["sent_by_first_run"], "a rerun emailed again"


def test_backfilling_a_past_period_leaves_the_latest_period_alone(finished_run):
    settings = finished_run["settings"]

    def latest_outputs():
        with session_scope(settings) as session:
            artifacts = sorted((a.kind, a.path, a.sha256, str(a.created_at)) for a in session.exec(
                select(Artifact).where(Artifact.period == LATEST)).all())
        files = {k: v for k, v in _files(settings.out_dir).items() if PAST not in k}
        return artifacts, files

    before = latest_outputs()
    tables_before = table_checksums(settings)
    deliveries_before = table_rows(settings, "delivery")

    _run(PAST)

    assert latest_outputs() == before, "the backfill changed the latest period's documents or their records"
    with session_scope(settings) as session:
        past = session.exec(select(Artifact).where(Artifact.period == PAST)).all()
    contracts = pipeline.contract_ids(settings)
    assert {a.contract_id for a in past if a.kind == "scorecard"} == set(contracts)
    assert sum(a.kind == "monthly_report" for a in past) >= len(pipeline.area_codes(settings))
    for contract_id in contracts:
        assert (settings.out_dir / "scorecards" / PAST / f"{contract_id}.html").exists()
    # The data themselves (returns, KPIs, judgements, findings) are not touched by rendering a past month;
    # the only new deliveries are the past month's documents, and the latest month's are as they were.
    tables_after = table_checksums(settings)
    assert {n for n in tables_before if n not in ("artifact", "delivery") and tables_before[n] != tables_after[n]} == set()
    periods = [c.name for c in SQLModel.metadata.tables["delivery"].columns].index("period")
    assert {r for r in table_rows(settings, "delivery") if r[periods] != PAST} == \
        {r for r in deliveries_before if r[periods] != PAST}
    assert any(r[periods] == PAST for r in table_rows(settings, "delivery"))
