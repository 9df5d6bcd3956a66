"""Storage of declared returns: one table per declared return type, made from its spec.

Each declared return ``<type>`` is stored in ``declared_<type>``, created (or widened with new
columns) when the service is saved, never by a migration: key columns ``id, submission_id,
contract_id, period, person_key`` (indexed), every declared column with its own SQL type (person_key
columns hold the keyed hash), and for every pair of date columns ``a < b`` (by name) the days
``cd__a__b`` and the England and Wales working days ``wd__a__b`` from ``a`` to ``b``, worked out at
load, so KPI rules are plain column comparisons. ``benchmarks/declared.py`` measured this layout
against JSON per row (see ``benchmarks/results/declared.json``).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlmodel import Session

from contracts.workdays import calendar_days, working_days

_SQL_TYPES = {"text": Text, "person_key": lambda: String(32), "date": Date, "datetime": DateTime, "int": Integer,
              "float": Float, "yn": lambda: String(1)}


def table_name(return_type: str) -> str:
    return f"declared_{return_type}"


def date_pairs(spec) -> list[tuple[str, str]]:
    return list(combinations(sorted(spec.date_columns), 2))


def days_column(start: str, end: str, working: bool) -> tuple[str, int]:
    """The stored column holding days from ``start`` to ``end`` and the sign to apply (pairs are stored once)."""
    prefix = "wd" if working else "cd"
    if start < end:
        return f"{prefix}__{start}__{end}", 1
    return f"{prefix}__{end}__{start}", -1


def _columns(spec) -> list[Column]:
    columns = [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("submission_id", Integer, nullable=False, index=True),
        Column("contract_id", String(40), nullable=False, index=True),
        Column("period", String(7), nullable=True),
        Column("person_key", String(32), nullable=True),
    ]
    for column in spec.columns:
        if column.name == "contract_id":
            continue
        columns.append(Column(column.name, _SQL_TYPES[column.type](), nullable=True))
    for start, end in date_pairs(spec):
        columns.append(Column(days_column(start, end, False)[0], Integer, nullable=True))
        columns.append(Column(days_column(start, end, True)[0], Integer, nullable=True))
    return columns


def build_table(spec, metadata: MetaData | None = None) -> Table:
    name = table_name(spec.return_type)
    table = Table(name, metadata or MetaData(), *_columns(spec))
    Index(f"ix_{name}_sub_period", table.c.submission_id, table.c.period)
    return table


def ensure_table(session: Session, spec) -> Table:
    """Create the return's table, or add the columns a widened spec declares (existing rows read blank there)."""
    table = build_table(spec)
    connection = session.connection()
    inspector = inspect(connection)
    if not inspector.has_table(table.name):
        table.create(connection)
        return table
    existing = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
    present = set(existing)
    changed = [(column.name, _family(existing[column.name]), _family(column.type)) for column in table.columns
               if column.name in existing and _family(existing[column.name]) != _family(column.type)]
    if changed:
        from contracts.declared import ServiceSpecError

        raise ServiceSpecError([(f"services[{spec.id}].return.columns", f"column {name!r} is stored as {was}, not {now}: "
                                 "a column's type cannot change once returns are stored; declare a new column "
                                 "under another name") for name, was, now in changed])
    preparer = connection.dialect.identifier_preparer
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(column.name)} {kind}"))
    return table


def _family(kind) -> str:
    """The kind of a stored column, loose enough that SQLite's and PostgreSQL's reflected types compare."""
    name = type(kind).__name__.upper()
    for family, words in (("datetime", ("DATETIME", "TIMESTAMP")), ("date", ("DATE",)), ("int", ("INT",)),
                          ("float", ("FLOAT", "REAL", "DOUBLE", "NUMERIC"))):
        if any(word in name for word in words):
            return family
    return "text"


def build_declared_records(parsed: dict[str, pd.Series], spec, key: bytes) -> pd.DataFrame:
    """The stored columns of a declared return: typed values, period, day counts, pseudonymised person keys."""
    from contracts.ingest import pseudonymise

    frame = pd.DataFrame(parsed)
    for name in spec.person_columns:
        values = frame[name]
        hashed = pd.Series(pseudonymise(values.fillna(""), key), index=values.index, dtype=object)
        frame[name] = hashed.where(values.notna(), None)
    frame["person_key"] = frame[spec.person_columns[0]] if spec.person_columns else None
    frame["period"] = frame[spec.period_column].dt.strftime("%Y-%m").where(frame[spec.period_column].notna())
    for start, end in date_pairs(spec):
        frame[days_column(start, end, False)[0]] = calendar_days(frame[start], frame[end])
        frame[days_column(start, end, True)[0]] = working_days(frame[start], frame[end])
    for column in spec.columns:
        series = frame[column.name]
        if column.type == "date":
            frame[column.name] = series.dt.date.astype(object).where(series.notna(), None)
        elif column.type == "datetime":
            frame[column.name] = series.astype(object).where(series.notna(), None)
        elif column.type == "int":
            frame[column.name] = series.astype("Int64")
    return frame


def record_dicts(frame: pd.DataFrame, table: Table, submission_id: int) -> list[dict]:
    names = [c.name for c in table.columns if c.name != "id"]
    frame = frame.assign(submission_id=submission_id)
    frame = frame[[n for n in names if n in frame.columns]]
    frame = frame.astype(object).where(frame.notna(), None)
    records = frame.to_dict("records")
    for record in records:
        for name, value in record.items():
            if isinstance(value, np.generic):
                record[name] = value.item()
            elif isinstance(value, pd.Timestamp):
                record[name] = value.to_pydatetime()
    return records
