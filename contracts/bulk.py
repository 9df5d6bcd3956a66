"""Bulk load of a return's records into its table, inside the caller's transaction.

``load_records`` writes the rows of a records frame, or of its consecutive chunks as they are built
(``contracts.ingest._in_chunks`` over ``build_records`` or ``build_declared_records``), with the database's
own fast path, on the session's own connection, so the rows commit or roll back with the submission row:

- SQLite: one prepared ``INSERT`` run by the driver's ``executemany`` over tuples, chunk by chunk. No PRAGMA
  is changed: the WAL journal, ``synchronous`` (FULL, SQLite's default) and the foreign-key checks stay as
  ``cjmonitor.db`` sets them, so durability is as before.
- PostgreSQL (psycopg 3): ``COPY ... FROM STDIN`` in text format (``cursor.copy``), in the transaction that
  already holds the submission row; a writer thread sends each chunk while the next one is built.
- Any other database: SQLAlchemy's ``insert`` with ``record_dicts``, as before.

The values bound are the ones SQLAlchemy would bind for the same rows (``contracts.records.record_dicts``
followed by each column type's bind processor for the dialect); COPY writes them as psycopg's own text
dumpers do. Each non-text column is converted once per distinct value and mapped back, not row by row.
``tests/test_bulk.py`` checks that the bound values and the stored rows agree with SQLAlchemy's insert for
every return type, on both databases. A driver error is raised as SQLAlchemy's own exception class
(``IntegrityError``, ``OperationalError``), so ``cjmonitor.db.in_transaction`` retries a lost race as it
does for any other statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain

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


def _bound(series: pd.Series, processor) -> tuple[np.ndarray, np.ndarray | None]:
    """One column's DB-API values (``None`` for missing, then the type's bind processor, if any) as
    ``(values, None)``, row by row, for text, or as ``(distinct, codes)``: each distinct value converted once,
    the last entry of ``distinct`` standing for a missing value (code -1)."""
    if processor is None and _is_text(series):
        return series.to_numpy(dtype=object, na_value=None), None
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = [_as_bound(value) for value in uniques]
    if processor is not None:
        converted = [processor(value) for value in converted]
    distinct = np.empty(len(converted) + 1, dtype=object)
    distinct[: len(converted)] = converted
    distinct[-1] = processor(None) if processor is not None else None
    return distinct, codes


def column_values(series: pd.Series, processor) -> list:
    """The DB-API values of one column, row by row: ``None`` for missing, then the type's bind processor."""
    values, codes = _bound(series, processor)
    return (values if codes is None else values[codes]).tolist()


def _names(frame: pd.DataFrame, table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name != "id" and (c.name == "submission_id" or c.name in frame.columns)]


def _bound_columns(frame: pd.DataFrame, table: Table, dialect, submission_id: int) -> tuple[list[str], list]:
    names = _names(frame, table)
    columns = []
    for name in names:
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name == "submission_id":
            value = processor(submission_id) if processor is not None else submission_id
            columns.append((np.array([value], dtype=object), np.zeros(len(frame), dtype=np.intp)))
        else:
            columns.append(_bound(frame[name], processor))
    return names, columns


def bound_columns(frame: pd.DataFrame, table: Table, dialect, submission_id: int) -> tuple[list[str], list[list]]:
    """Column names in table order and, for each, its values row by row as the driver receives them."""
    names, columns = _bound_columns(frame, table, dialect, submission_id)
    return names, [(values if codes is None else values[codes]).tolist() for values, codes in columns]


def _driver_error(error: Exception, statement: str, dialect) -> exc.DBAPIError:
    return exc.DBAPIError.instance(statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect)


def chunks_of(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), CHUNK_ROWS):
        yield frame.iloc[start:start + CHUNK_ROWS]


def load_records(session: Session, table: Table, records: pd.DataFrame | Iterable[pd.DataFrame],
                 submission_id: int) -> str:
    """Insert every row of ``records`` (a frame, or the frames of its consecutive chunks, which may be built
    while the previous chunk is being written) into ``table`` in the session's transaction; returns the
    method used."""
    connection = session.connection()
    dialect = connection.dialect
    chunks = chunks_of(records) if isinstance(records, pd.DataFrame) else iter(records)
    first = next((chunk for chunk in chunks if not chunk.empty), None)
    if first is None:
        return "none"
    chunks = chain([first], (chunk for chunk in chunks if not chunk.empty))
    if dialect.name == "sqlite":
        _load_sqlite(connection, table, chunks, _names(first, table), submission_id)
        return "sqlite executemany"
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _load_copy(connection, table, chunks, _names(first, table), submission_id)
        return "postgresql copy"
    from contracts.records import record_dicts

    for chunk in chunks:
        connection.execute(insert(table), record_dicts(chunk, table, submission_id))
    return "sqlalchemy insert"


def _same_columns(chunk: pd.DataFrame, table: Table, names: list[str]) -> None:
    if _names(chunk, table) != names:
        raise AssertionError(f"a chunk of {table.name} has the columns {_names(chunk, table)}, not {names}")


def _load_sqlite(connection, table: Table, chunks: Iterator[pd.DataFrame], names: list[str], submission_id: int) -> None:
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    if list(compiled.positiontup) != names:
        raise AssertionError(f"the compiled insert binds {compiled.positiontup}, not {names}")
    statement = str(compiled)
    cursor = connection.connection.driver_connection.cursor()
    try:
        for chunk in chunks:
            _same_columns(chunk, table, names)
            _, columns = bound_columns(chunk, table, dialect, submission_id)
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


# COPY's text format: these characters are written as backslash escapes (as psycopg's own write_row does).
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
                              "\r": "\\r"})
COPY_SPECIALS = "\\\b\t\n\v\f\r"


def copy_fields(values: np.ndarray, codes: np.ndarray | None, integer: bool, transformer, encoding: str) -> list[str]:
    """One column as COPY text fields, row by row: each distinct value dumped once by psycopg's own text
    dumper (as ``write_row`` would dump it), ``\\N`` for missing; text written as it is unless it holds a
    character COPY escapes."""
    from psycopg.adapt import PyFormat

    if codes is None:
        fields = values.copy()
        fields[pd.isna(values)] = "\\N"
        joined = "".join(filter(None, values))
        if any(special in joined for special in COPY_SPECIALS):
            return [field if value is None else field.translate(COPY_ESCAPES) for field, value in zip(fields, values, strict=True)]
        return fields.tolist()
    texts = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        value = _as_integer(value) if integer else value
        if value is None:
            texts[i] = "\\N"
        else:
            dumped = transformer.get_dumper(value, PyFormat.TEXT).dump(value)
            texts[i] = bytes(dumped).decode(encoding).translate(COPY_ESCAPES)
    return texts[codes].tolist()


def _load_copy(connection, table: Table, chunks: Iterator[pd.DataFrame], names: list[str], submission_id: int) -> None:
    """COPY in text format. A writer thread sends each chunk while the next one is built and converted, so the
    server inserts (and checks keys) while this process works."""
    from psycopg.adapt import Transformer
    from psycopg.copy import QueuedLibpqWriter

    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    integers = [isinstance(table.c[n].type, Integer) for n in names]
    statement = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    raw = connection.connection.driver_connection
    encoding = raw.info.encoding
    try:
        with raw.cursor() as cursor:
            transformer = Transformer(cursor)
            with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
                for chunk in chunks:
                    _same_columns(chunk, table, names)
                    _, columns = _bound_columns(chunk, table, dialect, submission_id)
                    fields = [copy_fields(values, codes, integer, transformer, encoding)
                              for (values, codes), integer in zip(columns, integers, strict=True)]
                    copy.write(("\n".join(map("\t".join, zip(*fields, strict=True))) + "\n").encode(encoding))
    except dialect.loaded_dbapi.Error as error:
        raise _driver_error(error, statement, dialect) from error
