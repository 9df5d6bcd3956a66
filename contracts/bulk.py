"""Bulk load of a return's records into its table, inside the caller's transaction.

``load_records`` writes the rows of a records frame (``contracts.ingest.build_records`` or
``contracts.records.build_declared_records``) with the database's own fast path, on the session's own
connection, so the rows commit or roll back with the submission row:

- SQLite: one prepared ``INSERT`` run by the driver's ``executemany`` over tuples, in chunks (no PRAGMA
  is changed: the journal, ``synchronous`` and the foreign-key checks stay as ``cjmonitor.db`` sets them).
- PostgreSQL (psycopg 3): ``COPY ... FROM STDIN`` (``cursor.copy``), in the transaction that already holds
  the submission row.
- Any other database: SQLAlchemy's ``insert`` with ``record_dicts``, as before.

The values bound are the ones SQLAlchemy would bind for the same rows (``contracts.records.record_dicts``
followed by each column type's bind processor for the dialect): each column is converted once per distinct
value and mapped back, not row by row. ``tests/test_bulk.py`` checks the two agree for every return type.
A driver error is raised as SQLAlchemy's own exception class (``IntegrityError``, ``OperationalError``),
so ``cjmonitor.db.in_transaction`` retries a lost race as it does for any other statement.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import pandas as pd
from sqlalchemy import Integer, Table, exc, insert
from sqlmodel import Session

CHUNK_ROWS = 100_000


def _as_bound(value):
    """One value as ``record_dicts`` leaves it (numpy scalars as Python ones, Timestamps as datetimes)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or (
        series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"))


def column_values(series: pd.Series, processor) -> list:
    """The DB-API values of one column: ``None`` for missing, then the type's bind processor (if any)."""
    if processor is None and _is_text(series):
        values = series.to_numpy(dtype=object, na_value=None)
        return values.tolist()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = [_as_bound(value) for value in uniques]
    if processor is not None:
        converted = [processor(value) for value in converted]
    lookup = np.empty(len(converted) + 1, dtype=object)
    lookup[: len(converted)] = converted
    lookup[-1] = processor(None) if processor is not None else None  # code -1: missing
    return lookup[codes].tolist()


def _names(frame: pd.DataFrame, table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name != "id" and (c.name == "submission_id" or c.name in frame.columns)]


def bound_columns(frame: pd.DataFrame, table: Table, dialect, submission_id: int) -> tuple[list[str], list]:
    """Column names in table order and, for each, its values as the driver receives them."""
    names = _names(frame, table)
    columns = []
    for name in names:
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name == "submission_id":
            value = processor(submission_id) if processor is not None else submission_id
            columns.append(repeat(value, len(frame)))
        else:
            columns.append(column_values(frame[name], processor))
    return names, columns


def _driver_error(error: Exception, statement: str, dialect) -> exc.DBAPIError:
    return exc.DBAPIError.instance(statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect)


def load_records(session: Session, table: Table, frame: pd.DataFrame, submission_id: int) -> str:
    """Insert every row of ``frame`` into ``table`` in the session's transaction; returns the method used."""
    connection = session.connection()
    dialect = connection.dialect
    if frame.empty:
        return "none"
    if dialect.name == "sqlite":
        _load_sqlite(connection, table, frame, submission_id)
        return "sqlite executemany"
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _load_copy(connection, table, frame, submission_id)
        return "postgresql copy"
    from contracts.records import record_dicts

    for start in range(0, len(frame), CHUNK_ROWS // 5):
        connection.execute(insert(table), record_dicts(frame.iloc[start:start + CHUNK_ROWS // 5], table, submission_id))
    return "sqlalchemy insert"


def _load_sqlite(connection, table: Table, frame: pd.DataFrame, submission_id: int) -> None:
    dialect = connection.dialect
    names = _names(frame, table)
    statement = str(insert(table).compile(dialect=dialect, column_keys=names))
    compiled_order = [name for name in insert(table).compile(dialect=dialect, column_keys=names).positiontup]
    if compiled_order != names:
        raise AssertionError(f"the compiled insert binds {compiled_order}, not {names}")
    cursor = connection.connection.driver_connection.cursor()
    try:
        for start in range(0, len(frame), CHUNK_ROWS):
            _, columns = bound_columns(frame.iloc[start:start + CHUNK_ROWS], table, dialect, submission_id)
            try:
                cursor.executemany(statement, zip(*columns, strict=True))
            except dialect.loaded_dbapi.Error as error:
                raise _driver_error(error, statement, dialect) from error
    finally:
        cursor.close()


def _as_integer(value):
    """A bound parameter PostgreSQL would cast to an integer column (a whole float, a bool) as COPY needs it:
    COPY reads text, where "177.0" is not an integer. Floats round half to even, as PostgreSQL's cast does."""
    if value is None or type(value) is int:
        return value
    return int(round(value)) if isinstance(value, float) else int(value)


def _load_copy(connection, table: Table, frame: pd.DataFrame, submission_id: int) -> None:
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = _names(frame, table)
    integers = [isinstance(table.c[n].type, Integer) for n in names]
    statement = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    raw = connection.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(frame), CHUNK_ROWS):
                _, columns = bound_columns(frame.iloc[start:start + CHUNK_ROWS], table, dialect, submission_id)
                columns = [list(map(_as_integer, values)) if integer and not isinstance(values, repeat) else values
                           for values, integer in zip(columns, integers, strict=True)]
                write = copy.write_row
                for row in zip(*columns, strict=True):
                    write(row)
    except dialect.loaded_dbapi.Error as error:
        raise _driver_error(error, statement, dialect) from error
