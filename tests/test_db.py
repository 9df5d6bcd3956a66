"""Models and the Alembic migration on SQLite (PostgreSQL is exercised by the PostgreSQL-marked tests)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from cjmonitor.db import get_engine, session_scope
from cjmonitor.pipeline import upgrade_db
from cjmonitor.settings import get_settings
from contracts.models import Provider, Submission


@pytest.fixture
def settings(migrated_home):
    # a copy of the template database that `upgrade_db` migrated once for the run (tests/conftest.py)
    return get_settings(migrated_home)


def test_migration_creates_exactly_the_models(settings):
    engine = get_engine(settings)
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def _revision(settings) -> str | None:
    with get_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_is_idempotent(tmp_path):
    from alembic.script import ScriptDirectory

    from cjmonitor.migrate import alembic_config
    from tests.db_checksums import table_checksums

    settings = get_settings(tmp_path)
    assert _revision(settings) is None
    upgrade_db(settings)  # a real Alembic run from an empty database
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    assert _revision(settings) == head
    with session_scope(settings) as session:
        session.add(Provider(id="p1", name="Provider One", kind="private"))
        session.add(_submission())
    tables = set(inspect(get_engine(settings)).get_table_names())
    before = table_checksums(settings)
    upgrade_db(settings)
    upgrade_db(settings)
    assert _revision(settings) == head
    assert set(inspect(get_engine(settings)).get_table_names()) == tables
    assert table_checksums(settings) == before  # the rows stored survive, untouched
    assert before["provider"][0] == 1 and before["submission"][0] == 1


def _submission(**overrides) -> Submission:
    values = dict(provider_id="p1", return_type="crc_caseload", period="2024-01", version=1, file_name="f.csv",
                  source="test", sha256="a" * 64, received_at=datetime(2024, 2, 1, tzinfo=UTC), status="accepted")
    values.update(overrides)
    return Submission(**values)


def test_business_keys_are_unique(settings):
    with session_scope(settings) as session:
        session.add(Provider(id="p1", name="Provider One", kind="private"))
        session.add(_submission())
    with pytest.raises(IntegrityError), session_scope(settings) as session:
        session.add(_submission(sha256="b" * 64))  # same provider x type x period x version
    with pytest.raises(IntegrityError), session_scope(settings) as session:
        session.add(_submission(version=2))  # same bytes (sha256) twice
    with session_scope(settings) as session:
        session.add(_submission(version=2, sha256="c" * 64))


def test_session_scope_rolls_back_on_error(settings):
    with pytest.raises(RuntimeError), session_scope(settings) as session:
        session.add(Provider(id="p2", name="Provider Two", kind="private"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(settings) as session:
        assert session.get(Provider, "p2") is None


def test_homes_never_mix(tmp_path):
    a, b = get_settings(tmp_path / "a"), get_settings(tmp_path / "b")
    assert a.database_url != b.database_url
    assert a.out_dir != b.out_dir and a.drop_dir != b.drop_dir
    assert str(a.var_dir).startswith(str(tmp_path / "a"))
