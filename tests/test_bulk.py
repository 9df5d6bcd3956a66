"""The fast load path binds what SQLAlchemy's insert bound, and is all or nothing.

``contracts.bulk`` loads a return's records with SQLite's ``executemany`` on the session's own connection, or
PostgreSQL's COPY. These tests check that the values it hands the driver are, row for row, the ones
``record_dicts`` and each column type's bind processor give (the path it replaced), that the rows stored
read back the same as rows stored by SQLAlchemy's insert, and that a failure part-way through the load
leaves neither the submission nor any of its records (the rollback covers the raw connection's rows).
The shortcuts in reading and checking (``contracts.ingest``) are checked against the slow forms they stand for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import uuid
from itertools import product
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from cjmonitor import pipeline
from cjmonitor.db import dispose_engines, get_engine, session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts import bulk
from contracts.catalogue import MEASURES_BY_CODE
from contracts.ingest import (
    _as_dates,
    _check_cells_strictly,
    _matches_at_start,
    _may_have_stray_cells,
    _period_of,
    build_records,
    ingest_file,
    pseudonymise,
    read_return,
    validate,
)
from contracts.models import RECORD_TABLES, Contract, Submission
from contracts.records import record_dicts
from contracts.returns import RETURN_TYPES, parse_file_name
from tests.deps import need_postgres_url

KEY = b"test-key"
SEED, AREAS, MONTHS = 9, 5, 24


@pytest.fixture(scope="module")
def returns(tmp_path_factory):
    """One generated return of each built-in type, with its contracts, read and validated as ingest does."""
    from cjmonitor.demo import generate_world

    folder = tmp_path_factory.mktemp("bulk")
    world = generate_world(folder / "drop", folder / "truth.json", seed=SEED, areas=AREAS, months=MONTHS)
    contracts = {c.id: SimpleNamespace(provider_id=c.provider_id, service_type=c.service_type, area_code=c.area.code)
                 for c in world.contracts}  # validate reads these two attributes of a contract
    chosen = {}
    for name in sorted(world.files):
        parsed_name = parse_file_name(name)
        if parsed_name is None or parsed_name.return_type in chosen:
            continue
        frame, _ = read_return(folder / "drop" / name)
        mine = {k: v for k, v in contracts.items() if v.provider_id == parsed_name.provider_id}
        issues, parsed = validate(frame, parsed_name.return_type, parsed_name.period, mine, parsed_name.provider_id)
        if [i for i in issues if i.severity == "error"]:
            continue
        chosen[parsed_name.return_type] = (folder / "drop" / name, parsed_name, parsed)
    assert set(chosen) == set(RETURN_TYPES), sorted(chosen)
    return chosen


def _reference(records: pd.DataFrame, table, dialect, submission_id: int) -> list[tuple]:
    """What SQLAlchemy's insert bound: record_dicts, then each column type's bind processor."""
    dicts = record_dicts(records, table, submission_id)
    names = bulk._names(records, table)
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    return [tuple(p(d[n]) if p else d[n] for n, p in zip(names, processors, strict=True)) for d in dicts]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()], ids=["sqlite", "psycopg"])
def test_bound_values_are_those_sqlalchemy_bound(returns, dialect):
    for return_type, (_path, parsed_name, parsed) in returns.items():
        table = RECORD_TABLES[return_type].__table__
        records = build_records(parsed, return_type, parsed_name.period, KEY)
        names, columns = bulk.bound_columns(records, table, dialect, 17)
        assert names == bulk._names(records, table)
        rows = list(zip(*columns, strict=True))
        expected = _reference(records, table, dialect, 17)
        assert len(rows) == len(expected) == len(records) > 2, return_type
        assert rows == expected, return_type
        # the same Python types too (1 == 1.0 == True would hide a change of stored type)
        assert [tuple(type(v) for v in row) for row in rows] == [tuple(type(v) for v in row) for row in expected]


def test_bound_values_cover_missing_and_typed_cells():
    table = RECORD_TABLES["em_orders"].__table__
    frame = pd.DataFrame({
        "contract_id": pd.Series(["EM-1", None, "EM-1"], dtype=object),
        "curfew_hours": [1.5, np.nan, 12.0],
        "violations": pd.Series([3, pd.NA, 0], dtype="Int64"),
        "order_start": pd.Series(pd.to_datetime(["2023-02-01 10:00", None, "2023-02-01 10:00"]).tz_localize("UTC"),
                                 dtype=object).where(lambda s: s.notna(), None),
        "order_end": pd.Series([pd.Timestamp("2023-03-01").date(), None, None], dtype=object),
    })
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        _names, columns = bulk.bound_columns(frame, table, dialect, 5)
        assert list(zip(*columns, strict=True)) == _reference(frame, table, dialect, 5)
    _names, columns = bulk.bound_columns(frame, table, sqlite.dialect(), 5)
    rows = list(zip(*columns, strict=True))
    assert rows[1] == (5, None, None, None, None, None)
    assert rows[0][2] == "2023-02-01 10:00:00.000000" and rows[0][5] == "2023-03-01"


def _home(tmp_path, url=None):
    settings = get_settings(tmp_path / "home")
    if url:
        settings = dataclasses.replace(settings, database_url=url)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=SEED, areas=AREAS, months=MONTHS))
    settings.ensure_dirs()
    return settings


def _stored(settings, table) -> list[tuple]:
    columns = [c for c in table.columns if c.name not in ("id", "submission_id")]
    with get_engine(settings).connect() as connection:
        rows = connection.execute(select(*columns).order_by(table.c.id)).all()
    return [tuple(row) for row in rows]


def _load_both_ways(settings, returns) -> None:
    """Each return loaded by ingest (the fast path); then its records again through SQLAlchemy's insert, and
    the two sets of stored rows compared as read back."""
    for return_type, (path, parsed_name, parsed) in returns.items():
        table = RECORD_TABLES[return_type].__table__
        with session_scope(settings) as session:
            outcome = ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=KEY, source="test")
        assert outcome.status == "accepted", (return_type, outcome.message, outcome.issues[:3])
        fast = _stored(settings, table)
        records = build_records(parsed, return_type, parsed_name.period, KEY)
        with session_scope(settings) as session:
            session.execute(table.delete())
            session.execute(insert(table), record_dicts(records, table, outcome.submission_id))
        assert fast == _stored(settings, table), return_type
        assert len(fast) == outcome.rows > 2


@pytest.mark.parametrize("chunk_rows", [bulk.CHUNK_ROWS, 7])
def test_fast_path_stores_what_sqlalchemy_stored_on_sqlite(returns, tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", chunk_rows)  # 7: records built and written in many small chunks
    _load_both_ways(_home(tmp_path), returns)


def _failing_trigger_sqlite(connection, episode_ref: str) -> None:
    connection.execute(text(
        "CREATE TRIGGER fail_part_way BEFORE INSERT ON ttg_record "
        f"WHEN NEW.episode_ref = '{episode_ref}' BEGIN SELECT RAISE(ABORT, 'injected failure part-way'); END"))


def _big_ttg(returns, tmp_path, rows: int):
    path, parsed_name, _ = returns["ttg_resettlement"]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    big = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows].copy()
    big["episode_ref"] = [f"T{i:08d}" for i in range(rows)]
    target = tmp_path / path.name
    big.to_csv(target, index=False, lineterminator="\n")
    return target, big


def _counts(settings) -> tuple[int, int]:
    with Session(get_engine(settings)) as session:
        return (session.execute(select(func.count()).select_from(Submission)).scalar_one(),
                session.execute(select(func.count()).select_from(RECORD_TABLES["ttg_resettlement"])).scalar_one())


def test_a_failure_part_way_through_the_sqlite_load_leaves_nothing(returns, tmp_path, monkeypatch):
    settings = _home(tmp_path)
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 1_000)  # several executemany calls; the third one fails
    path, big = _big_ttg(returns, tmp_path, 3_000)
    with get_engine(settings).begin() as connection:
        _failing_trigger_sqlite(connection, big["episode_ref"].iloc[2_500])
    before = _counts(settings)
    with pytest.raises(IntegrityError, match="injected failure part-way"):
        with session_scope(settings) as session:
            ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=KEY, source="test")
    assert _counts(settings) == before == (0, 0)
    with get_engine(settings).begin() as connection:
        connection.execute(text("DROP TRIGGER fail_part_way"))
    with session_scope(settings) as session:
        outcome = ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=KEY, source="test")
    assert outcome.status == "accepted" and _counts(settings) == (1, 3_000)


# ------------------------------------------------------------------ PostgreSQL: COPY


@pytest.fixture
def postgres_home(tmp_path):
    url = need_postgres_url()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"cj_bulk_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _home(tmp_path, url.rsplit("/", 1)[0] + "/" + name)
    finally:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_copy_stores_what_sqlalchemy_stored_on_postgres(returns, postgres_home, monkeypatch):
    with session_scope(postgres_home) as session:
        assert bulk.load_records(session, RECORD_TABLES["kpi_aggregate"].__table__, pd.DataFrame(), 1) == "none"
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 7)
    _load_both_ways(postgres_home, returns)


@pytest.mark.postgres
def test_copy_escapes_what_its_text_format_must(returns, postgres_home):
    """Tabs, newlines, carriage returns and backslashes in a text cell survive COPY's text format."""
    _path, parsed_name, parsed = returns["ttg_resettlement"]
    records = build_records(parsed, "ttg_resettlement", parsed_name.period, KEY).iloc[:4].copy()
    odd = ["a\tb", "c\nd\re", "back\\slash \\N", "plain"]
    records["episode_ref"] = pd.Series(odd, index=records.index, dtype="str")
    records["accommodation_first_night"] = [None, "tab\there", None, "\\"]
    table = RECORD_TABLES["ttg_resettlement"].__table__
    with session_scope(postgres_home) as session:
        outcome = ingest_file(session, returns["ttg_resettlement"][0], archive_dir=postgres_home.raw_archive_dir,
                              key=KEY, source="test")
        session.execute(table.delete())
        assert bulk.load_records(session, table, records, outcome.submission_id) == "postgresql copy"
    with get_engine(postgres_home).connect() as connection:
        stored = connection.execute(select(table.c.episode_ref, table.c.accommodation_first_night).order_by(table.c.id)).all()
    assert [tuple(row) for row in stored] == list(zip(odd, [None, "tab\there", None, "\\"], strict=True))


@pytest.mark.postgres
def test_a_copy_that_fails_part_way_leaves_nothing(returns, postgres_home, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 1_000)  # rows stream to the server in several chunks before the failure
    path, big = _big_ttg(returns, tmp_path, 3_000)
    with get_engine(postgres_home).begin() as connection:
        connection.execute(text(
            "CREATE FUNCTION fail_part_way() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.episode_ref = '{big['episode_ref'].iloc[2_500]}' THEN "
            "RAISE EXCEPTION 'injected failure part-way'; END IF; RETURN NEW; END $$"))
        connection.execute(text("CREATE TRIGGER fail_part_way BEFORE INSERT ON ttg_record "
                                "FOR EACH ROW EXECUTE FUNCTION fail_part_way()"))
    methods = []
    real = bulk.load_records

    def spy(*args, **kwargs):
        methods.append(real(*args, **kwargs))
        return methods[-1]

    monkeypatch.setattr("contracts.ingest.load_records", spy)
    with pytest.raises(DBAPIError, match="injected failure part-way"):
        with session_scope(postgres_home) as session:
            ingest_file(session, path, archive_dir=postgres_home.raw_archive_dir, key=KEY, source="test")
    assert _counts(postgres_home) == (0, 0), "neither the submission nor any record is left"
    with get_engine(postgres_home).begin() as connection:
        connection.execute(text("DROP TRIGGER fail_part_way ON ttg_record"))
    with session_scope(postgres_home) as session:
        outcome = ingest_file(session, path, archive_dir=postgres_home.raw_archive_dir, key=KEY, source="test")
    assert outcome.status == "accepted" and _counts(postgres_home) == (1, 3_000)
    assert methods == ["postgresql copy"]


@pytest.mark.postgres
def test_a_duplicate_key_in_copy_is_sqlalchemys_integrity_error(postgres_home):
    """A driver error during COPY reaches the caller as SQLAlchemy's class, which in_transaction retries."""
    table = RECORD_TABLES["kpi_aggregate"].__table__
    with session_scope(postgres_home) as session:
        contract_id = session.execute(select(Contract.id)).scalars().first()
    frame = pd.DataFrame({"contract_id": [contract_id] * 2, "measure_code": [next(iter(MEASURES_BY_CODE))] * 2, "period": ["2023-01"] * 2,
                          "numerator": [1, 1], "denominator": [2, 2]})
    with pytest.raises(IntegrityError):
        with session_scope(postgres_home) as session:
            submission = Submission(provider_id=session.get(Contract, contract_id).provider_id, return_type="kpi_aggregate",
                                    period="2023-01", version=1, file_name="x.csv", source="test", sha256="0" * 64,
                                    received_at=pd.Timestamp("2023-02-01", tz="UTC").to_pydatetime(), status="accepted",
                                    is_current=True, is_late=False, rows=2, errors=0, warnings=0)
            session.add(submission)
            session.flush()
            bulk.load_records(session, table, frame, submission.id)
    assert _counts(postgres_home)[0] == 0


# ------------------------------------------------------------------ the reading and checking shortcuts


def _stray_cell_corpus() -> list[bytes]:
    header = b"a,b,c"
    rows = [b"1,2,3", b"1,2", b"", b"1,2,3,", b"1,2,3, ", b"1,2,3,x", b"1,2,3,,", b'1,"2",3', b'1,"2"x,3',
            b'1,"2,3', b"1,2\r3", b" , ,", "1,\u00e9,3".encode()]
    corpus = []
    for first, second, ending in product(rows, rows, (b"\n", b"\r\n", b"")):
        corpus.append(header + b"\n" + first + b"\n" + second + ending)
    corpus.append(header + b"\n" + b"x" * 140_000 + b"\n")  # a field over the csv module's limit
    return corpus


def test_the_strict_csv_pass_is_skipped_only_when_it_would_find_nothing():
    skipped = 0
    for raw in _stray_cell_corpus():
        text_ = raw.decode("utf-8")
        if _may_have_stray_cells(raw, 3):
            continue
        skipped += 1
        _check_cells_strictly(text_, 3)  # must not raise: the skip was safe
    assert skipped > 50
    for raw in (b"a,b,c\n1,2,3,x\n", b'a,b,c\n1,"2"x,3\n', b"a,b,c\n1,2\r3\n", b"a,b,c\n" + b"x" * 140_000 + b"\n"):
        assert _may_have_stray_cells(raw, 3)
        with pytest.raises(Exception, match="ragged_row|could not be parsed|cells but"):
            try:
                _check_cells_strictly(raw.decode(), 3)
            except Exception as problem:
                raise Exception(getattr(problem, "code", "") + " " + str(problem)) from None


def test_reading_strips_cells_as_str_strip_did(tmp_path):
    path = tmp_path / "x_crc_caseload_2023-01.csv"
    path.write_bytes("a , b\n 1,x\u00a0\n2 ,\ty\n3,z\n".encode())
    frame, _ = read_return(path)
    expected = pd.read_csv(io.StringIO(path.read_text()), dtype=str, keep_default_na=False)
    expected.columns = [c.strip() for c in expected.columns]
    for column in expected.columns:
        expected[column] = expected[column].str.strip()
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["b"].tolist() == ["x", "y", "z"]


def test_shortcuts_equal_the_slow_forms():
    values = pd.Series(["ok", "=SUM(1)", "+1", "-1", "-x", "@a", "\tx", "", "-.5", "- 1", "x=1", "-"], dtype="str")
    clean = pd.Series(["a", "b c", "", "1.5"], dtype="str")  # no cell starts with a formula character
    false_alarm = pd.Series(["a\n=b", "x"], dtype="str")  # "\n=" inside a cell, not at its start
    for pattern, series in product((r"^[=+\-@\t\r]", r"^[=+@\t\r]|^-[^0-9.]"), (values, clean, false_alarm)):
        assert _matches_at_start(series, pattern).tolist() == series.str.match(pattern).tolist()
    dates = pd.Series(pd.to_datetime(["2023-01-31", None, "1999-12-01", "2023-01-01"]))
    pd.testing.assert_series_equal(_period_of(dates), dates.dt.strftime("%Y-%m").where(dates.notna()))
    london = pd.Series(pd.to_datetime(["2023-03-31 23:30", None]).tz_localize("UTC")).dt.tz_convert("Europe/London")
    assert _period_of(london).tolist()[0] == "2023-04"
    assert _as_dates(dates).tolist() == dates.dt.date.astype(object).where(dates.notna(), None).tolist()
    ids = pd.Series(["P1", "P2", "P1", "é", "", "x" * 200])
    for key in (KEY, b"", b"k" * 64, b"long key " * 20):  # a key over SHA-256's block is hashed first, as hmac does
        assert pseudonymise(ids, key) == [hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32] for v in ids]
