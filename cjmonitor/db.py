"""The one engine factory and the one ``session_scope`` that commits or rolls back."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from cjmonitor.settings import Settings

_ENGINES: dict[str, Engine] = {}
log = logging.getLogger(__name__)
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine(settings: Settings) -> Engine:
    """One engine per database URL for the life of the process."""
    url = settings.database_url
    engine = _ENGINES.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _ENGINES[url] = engine
    return engine


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error; the only place that commits."""
    session = Session(get_engine(settings), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _is_lock(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock detected" in text \
        or "could not serialize" in text


def in_transaction(settings: Settings, work: Callable[[Session], T], *, what: str, attempts: int = 6) -> T:
    """Run ``work(session)`` in one ``session_scope`` transaction, again from the start when it lost a race.

    Retried: SQLite's "database is locked" (in WAL mode a read transaction that another writer overtook cannot
    become a write one, whatever the busy timeout) and PostgreSQL's deadlocks and serialisation failures, with
    jittered backoff; and, once, a unique-key violation, which means a concurrent task stored the same thing
    first: the retry reads it and decides again (for an ingest: "duplicate"). Each attempt is all or nothing.
    """
    unique_retried = False
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(settings) as session:
                return work(session)
        except OperationalError as exc:
            if not _is_lock(exc) or attempt == attempts:
                raise
            log.warning("%s: the database was locked (attempt %d of %d); retrying", what, attempt, attempts)
        except IntegrityError:
            if unique_retried:
                raise
            unique_retried = True
            log.warning("%s: a concurrent task stored the same row first; reading it again", what)
        time.sleep(min(5.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
