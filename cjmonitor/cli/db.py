"""``cjmonitor db upgrade``."""

from __future__ import annotations

import click

from cjmonitor.cli.common import HOME_OPTION, _Group, _settings


@click.group(cls=_Group)
def db() -> None:
    """Manage the application database."""


@db.command("upgrade")
@HOME_OPTION
def db_upgrade(home: str | None) -> None:
    """Create or migrate the database schema to the latest revision (Alembic)."""
    from cjmonitor.pipeline import upgrade_db

    settings = _settings(home)
    upgrade_db(settings)
    click.echo(f"database at {settings.database_url} is up to date")
