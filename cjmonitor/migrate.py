"""Alembic configuration built in code, so migrations run without an alembic.ini."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config

from cjmonitor.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.attributes["settings"] = settings
    return config


@cache
def _migrations_head() -> str:
    """The latest migration's revision: read from the migration scripts once per process (about 25 ms a time)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def ensure_schema(settings: Settings) -> None:
    """Refuse to work on a database whose schema is not at the latest migration, saying what to run.

    Here rather than in ``cjmonitor.pipeline`` (which re-exports it) so that light commands such as
    ``cjmonitor returns list`` check the schema without importing pandas and the statistics stack.
    """
    from alembic.runtime.migration import MigrationContext

    from cjmonitor.db import get_engine
    from cjmonitor.errors import ConfigError

    head = _migrations_head()
    with get_engine(settings).connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        state = "has no cjmonitor schema" if current is None else f"is at revision {current}, not {head}"
        raise ConfigError(f"the database {settings.database_url} {state}: run `cjmonitor db upgrade` first "
                          f"(`cjmonitor db upgrade --home {settings.home}` from another folder)")
