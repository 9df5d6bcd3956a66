"""Alembic configuration built in code, so migrations run without an alembic.ini."""

from __future__ import annotations

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
