"""Per-table checksums of the application database: every row of every table, in a stable order.

Used to prove that rerunning a pipeline step (or a whole DAG run) changes nothing.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import UniqueConstraint, select
from sqlmodel import SQLModel

from cjmonitor.db import get_engine
from cjmonitor.settings import Settings
from contracts import models  # noqa: F401  (registers every table in SQLModel.metadata)

# Tables that a step recomputes wholesale (delete, then insert) keep their rows' content but get new
# surrogate ``id`` values. That is harmless only because no foreign key points at these ids and each
# has a unique business key; `unreferenced_surrogate_keys` checks both, so the exclusion stays justified.
RECOMPUTED_TABLES = {"kpi_value", "judgement", "finding", "artifact"}


def unreferenced_surrogate_keys() -> dict[str, list[str]]:
    """For each recomputed table: the foreign keys that reference its id (must be none) -> problems found."""
    problems: dict[str, list[str]] = {}
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name in RECOMPUTED_TABLES:
                problems.setdefault(fk.column.table.name, []).append(f"{table.name}.{fk.parent.name}")
    for name in RECOMPUTED_TABLES:
        table = SQLModel.metadata.tables[name]
        if not any(isinstance(c, UniqueConstraint) for c in table.constraints):
            problems.setdefault(name, []).append("no unique business key")
    return problems


def _plain(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(round(value, 12))
    return str(value)


def table_rows(settings: Settings, name: str) -> list[tuple]:
    """Every row of a table as a tuple of plain values, sorted; ``id`` left out for recomputed tables only."""
    table = SQLModel.metadata.tables[name]
    columns = [c for c in table.columns if not (name in RECOMPUTED_TABLES and c.name == "id")]
    with get_engine(settings).connect() as connection:
        rows = connection.execute(select(*columns)).all()
    return sorted((tuple(_plain(v) for v in row) for row in rows), key=lambda r: json.dumps(r, default=str))


def table_checksums(settings: Settings) -> dict[str, tuple[int, str]]:
    """{table: (row count, sha256 of its sorted rows)} for every application table."""
    result = {}
    for table in SQLModel.metadata.sorted_tables:
        rows = table_rows(settings, table.name)
        digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
        result[table.name] = (len(rows), digest)
    return result
