"""What the application database holds, for the steps and the document renderers alike.

The schema check, the code version stamped on every document, the ids the steps iterate over, and the
helper that keeps rows' first creation times across reruns. ``cjmonitor.pipeline`` re-exports these;
``cjmonitor.documents`` imports them from here, so neither module imports the other at load.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path

from sqlalchemy import select as select_rows
from sqlalchemy import update
from sqlmodel import Session, select

from cjmonitor.db import session_scope
from cjmonitor.errors import NotFoundError
from cjmonitor.migrate import ensure_schema  # noqa: F401  (one schema check, re-exported here)
from cjmonitor.settings import Settings
from contracts.models import Area, Artifact, Contract, Finding, Judgement, Provider

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


@cache
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    version = metadata.version("cjmonitor")
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git commit unavailable: %s", exc)
        commit = ""
    return f"{version}+{commit}" if commit else version


@contextmanager
def keep_creation_times(session: Session, model: type[Finding] | type[Artifact]) -> Iterator[None]:
    """Rows that a step deletes and writes again with the same content keep their first ``created_at``.

    Findings and artifacts are replaced (delete, insert) on every run; without this a rerun that changes
    nothing would still restamp every row. A row whose content changed (another estimate, a document with
    other bytes) gets its new time.
    """
    table = model.__table__

    def content(row) -> tuple:
        return tuple((k, str(v)) for k, v in sorted(row.items()) if k not in ("id", "created_at"))

    connection = session.connection()
    first_seen: dict[tuple, datetime] = {}
    for row in connection.execute(select_rows(table)).mappings():
        first_seen.setdefault(content(row), row["created_at"])
    yield
    session.flush()
    for row in connection.execute(select_rows(table)).mappings().all():
        earlier = first_seen.get(content(row))
        if earlier is not None and row["created_at"] != earlier:
            session.execute(update(table).where(table.c.id == row["id"]).values(created_at=earlier))


def latest_period(settings: Settings) -> str:
    ensure_schema(settings)
    with session_scope(settings) as session:
        periods = session.exec(select(Judgement.period).distinct()).all()
    monthly = sorted(p for p in periods)
    if not monthly:
        raise NotFoundError("no judged KPI values yet: run ingest, derive and judge first (or `cjmonitor demo`)")
    return monthly[-1]


def contract_ids(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.exec(select(Contract.id).order_by(Contract.id)).all())


def provider_ids(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.exec(select(Provider.id).order_by(Provider.id)).all())


def recipient_ids(settings: Settings) -> list[int]:
    from contracts.models import Recipient

    with session_scope(settings) as session:
        return list(session.exec(select(Recipient.id).where(Recipient.active).order_by(Recipient.id)).all())


def area_codes(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.exec(select(Area.code).order_by(Area.code)).all())
