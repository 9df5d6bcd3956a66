"""The same models, migrations, loads, KPI SQL and pipeline on a real PostgreSQL server (loopback).

`.ci/run` starts a throwaway cluster and sets CJMONITOR_TEST_POSTGRES_URL; without it these tests
skip locally, and fail when CJMONITOR_REQUIRE_POSTGRES=1 (as in CI) so a missing server is never silent.
"""

from __future__ import annotations

import dataclasses
import uuid

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel, select

from cjmonitor import pipeline
from cjmonitor.db import get_engine, session_scope
from cjmonitor.demo import generate_world, load_world
from cjmonitor.settings import get_settings
from contracts.models import Finding, KpiValue, Submission
from tests.deps import need_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url():
    url = need_postgres_url()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"cj_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + "/" + name
    from cjmonitor.db import dispose_engines

    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _world(settings):
    pipeline.upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=31, areas=5, months=24)
    load_world(settings, world)
    return world


def _steps(settings, analyse: bool = False) -> dict:
    """ingest, derive and judge (and analyse) as run_all does, without rendering."""
    summary = pipeline.ingest(settings)
    pipeline.derive(settings)
    judged = pipeline.judge(settings)
    if analyse:
        pipeline.analyse(settings)
    return {"ingest": summary.to_dict(), "judgements": judged.stored}


def _kpis(settings) -> pd.DataFrame:
    with session_scope(settings) as session:
        rows = [v.model_dump(exclude={"id", "submission_ids"}) for v in session.exec(select(KpiValue)).all()]
    return pd.DataFrame(rows).sort_values(["contract_id", "measure_code", "period", "source"]).reset_index(drop=True)


def test_migrations_match_the_models_on_postgres(postgres_url, tmp_path):
    settings = dataclasses.replace(get_settings(tmp_path), database_url=postgres_url)
    pipeline.upgrade_db(settings)
    with get_engine(settings).connect() as connection:
        assert connection.dialect.name == "postgresql"
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_full_pipeline_on_postgres_matches_sqlite(postgres_url, tmp_path):
    pg = dataclasses.replace(get_settings(tmp_path / "pg"), database_url=postgres_url)
    lite = get_settings(tmp_path / "lite")
    world = _world(pg)
    _world(lite)
    pg_result = pipeline.run_all(pg, "2024-12")
    lite_result = _steps(lite)  # SQLite is the reference for the tables; rendering is tested on PostgreSQL
    assert pg_result["ingest"]["accepted"] == len(world.files) - 3 == lite_result["ingest"]["accepted"]
    assert pg_result["ingest"]["rejected"] == 3
    pd.testing.assert_frame_equal(_kpis(pg), _kpis(lite), check_exact=False, rtol=1e-12)
    assert pg_result["judgements"] == lite_result["judgements"]
    with session_scope(pg) as session:
        findings = session.exec(select(Finding)).all()
        current = session.exec(select(Submission).where(Submission.is_current)).all()
    assert {f.method for f in findings} >= {"psm_nn_1to5_replacement", "synthetic_control"}
    assert len(current) == len(world.files) - 3
    assert len(pg_result["scorecards"]) == len(world.contracts)
    # Rerunning on PostgreSQL changes nothing.
    again = _steps(pg, analyse=True)  # rendering again reads the same tables: test_rerun compares its bytes
    assert again["ingest"]["accepted"] == 0 and again["ingest"]["duplicate"] == len(world.files)
    pd.testing.assert_frame_equal(_kpis(pg), _kpis(lite), check_exact=False, rtol=1e-12)
    # Breakdowns (named SQL with CASE in GROUP BY, boolean flags) and funnel data agree across the two databases.
    from contracts.benchmark import breakdowns, funnel

    for measure in ("crc_orders_completed", "reo_binary_12m"):
        with session_scope(pg) as session:
            on_pg = breakdowns(session, measure, "2024-12", alpha=0.05)
        with session_scope(lite) as session:
            on_lite = breakdowns(session, measure, "2024-12", alpha=0.05)
        assert not on_pg.empty and set(on_pg["dimension"]) == {"sex", "age_band", "young_adult", "ethnicity_group", "care_leaver"}
        key = ["dimension", "group"]
        pd.testing.assert_frame_equal(on_pg.sort_values(key).reset_index(drop=True),
                                      on_lite.sort_values(key).reset_index(drop=True), check_exact=False, rtol=1e-12)
    with session_scope(pg) as session:
        pg_funnel = funnel(session, "ttg_settled_accommodation", "2024-12")
    with session_scope(lite) as session:
        lite_funnel = funnel(session, "ttg_settled_accommodation", "2024-12")
    pd.testing.assert_frame_equal(pg_funnel, lite_funnel, check_exact=False, rtol=1e-12)
