"""Concurrent ingests on SQLite hold: every provider's files ingested at once by four processes (the LocalExecutor's
parallelism in config/airflow-local.env), twice in a row, and the same file dropped twice and loaded at the same
moment. No "database is locked", no submission lost or doubled, records counted against the submissions' rows.
"""

from __future__ import annotations

import multiprocessing
import shutil

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import dispose_engines, session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.models import Submission
from tests.conftest import copy_world

pytestmark = pytest.mark.slow

SEED, AREAS, MONTHS = 31, 5, 24


def _ingest(args):
    home, provider_id, paths = args
    dispose_engines()  # a fresh process's own connections, as a task process has
    summary = pipeline.ingest(get_settings(home), provider_id, paths=paths)
    return provider_id, summary.accepted, summary.rejected, summary.duplicate


def _counts(settings):
    with session_scope(settings) as session:
        subs = session.exec(select(Submission)).all()
        inspector = inspect(session.connection())
        tables = [t for t in inspector.get_table_names() if t != "validation_issue"
                  and "submission_id" in {c["name"] for c in inspector.get_columns(t)}]
        records = sum(session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables)
        # system measures (the LCJB's return) are stored by the submission they came from, tagged in `source`
        records += session.execute(text('SELECT count(*) FROM system_measure_value')).scalar_one()
    return subs, records


def test_parallel_ingests_twice_and_the_same_file_twice_at_once(migrated_home, generated_world, tmp_path):
    settings = get_settings(migrated_home)
    load_world(settings, build_world(seed=SEED, areas=AREAS, months=MONTHS))
    copy_world(generated_world(seed=SEED, areas=AREAS, months=MONTHS), settings.drop_dir)
    files = sorted(p for p in settings.drop_dir.rglob("*") if p.is_file())
    providers = pipeline.provider_ids(settings)
    assert len(providers) >= 4 and files
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as workers:
        first = workers.map(_ingest, [(migrated_home, p, None) for p in providers])
        second = workers.map(_ingest, [(migrated_home, p, None) for p in providers])
    subs, records = _counts(settings)
    loaded = sum(a + r for _, a, r, _ in first)
    assert len(subs) == loaded and loaded > 0
    assert sum(a + r for _, a, r, _ in second) == 0 and sum(d for *_, d in second) == loaded  # all duplicates
    assert len({(s.sha256, s.mapping_sha256) for s in subs}) == len(subs)
    assert records == sum(s.rows for s in subs if s.status == "accepted")

    # New bytes (a resubmission with one more blank line at the end), dropped twice and loaded by two processes
    # at the same moment: stored once, the other run sees a duplicate.
    accepted = [s for s in subs if s.status == "accepted"]
    original = next(p for p in files if p.name == accepted[-1].file_name)
    twins = []
    for n in (1, 2):
        folder = tmp_path / f"drop{n}"
        folder.mkdir()
        twin = folder / original.name
        twin.write_bytes(original.read_bytes() + b"\n")
        twins.append(twin)
    provider = accepted[-1].provider_id
    with context.Pool(2) as workers:
        both = workers.map(_ingest, [(migrated_home, provider, [t]) for t in twins])
    assert sorted((a + r, d) for _, a, r, d in both) == [(0, 1), (1, 0)], both
    subs_after, records_after = _counts(settings)
    assert len(subs_after) == len(subs) + 1
    assert records_after == sum(s.rows for s in subs_after if s.status == "accepted")
    shutil.rmtree(tmp_path / "drop1")


def _records_by_submission(settings) -> dict[int, int]:
    counts: dict[int, int] = {}
    with session_scope(settings) as session:
        inspector = inspect(session.connection())
        for t in inspector.get_table_names():
            if t != "validation_issue" and "submission_id" in {c["name"] for c in inspector.get_columns(t)}:
                for sid, n in session.execute(text(f'SELECT submission_id, count(*) FROM "{t}" GROUP BY 1')):
                    counts[sid] = counts.get(sid, 0) + n
    return counts


def test_an_ingest_killed_mid_task_leaves_the_database_consistent_and_the_retry_completes(migrated_home,
                                                                                         generated_world):
    import os
    import signal
    import sqlite3
    import time

    settings = get_settings(migrated_home)
    load_world(settings, build_world(seed=SEED, areas=AREAS, months=MONTHS))
    copy_world(generated_world(seed=SEED, areas=AREAS, months=MONTHS), settings.drop_dir)
    provider = max(pipeline.provider_ids(settings),
                   key=lambda p: sum(1 for f in settings.drop_dir.rglob(f"{p}_*") if f.is_file()))
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=_ingest, args=((migrated_home, provider, None),))
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once a few files are in, while it is loading the next ones
        subs, _ = _counts(settings)
        if len(subs) >= 3:
            break
        time.sleep(0.05)
    assert worker.is_alive(), "the ingest finished before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert worker.exitcode == -signal.SIGKILL
    with sqlite3.connect(settings.home / "var" / "cjmonitor.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    subs, _ = _counts(settings)
    by_submission = _records_by_submission(settings)
    # Every stored submission is whole: all its records or (rejected) none; nothing half-written.
    for s in subs:
        assert by_submission.get(s.id, 0) == (s.rows if s.status == "accepted" else 0), s
    killed_at = len(subs)
    # The retry (what Airflow runs after the task process died) loads the rest and nothing twice.
    _, accepted, rejected, duplicate = _ingest((migrated_home, provider, None))
    subs_after, _ = _counts(settings)
    assert duplicate == killed_at and len(subs_after) == killed_at + accepted + rejected > killed_at
    by_submission = _records_by_submission(settings)
    assert all(by_submission.get(s.id, 0) == (s.rows if s.status == "accepted" else 0) for s in subs_after)
