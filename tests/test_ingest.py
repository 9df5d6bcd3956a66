"""Landing, validation, quarantine and versioning of single returns."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.models import CrcRecord, Submission, ValidationIssue


@pytest.fixture
def world_home(migrated_home, generated_world):
    """A loaded reference world with an empty drop folder, and a folder of that world's generated returns
    (generated once per run and shared: read from it, copy before changing)."""
    settings = get_settings(migrated_home)
    world = build_world(seed=9, areas=5, months=24)
    load_world(settings, world)
    generated = generated_world(seed=9, areas=5, months=24) / "drop"
    settings.ensure_dirs()
    return settings, generated


def _drop(settings, source, name=None, frame=None):
    target = settings.drop_dir / (name or source.name)
    if frame is not None:
        frame.to_csv(target, index=False)
    else:
        target.write_bytes(source.read_bytes())
    os.utime(target, (datetime(2024, 2, 10, tzinfo=UTC).timestamp(),) * 2)
    return target


def test_bad_cells_are_listed_with_row_column_and_advice(world_home):
    settings, generated = world_home
    source = generated / "northstar-rehab_crc_caseload_2024-01.csv"
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame.loc[4, "start_date"] = "31/01/2024"
    frame.loc[7, "upw_hours_ordered"] = "lots"
    frame.loc[9, "sex"] = "X"
    frame.loc[11, "end_date"] = "2023-01-01"
    frame.loc[11, "outcome"] = "completed"
    _drop(settings, source, frame=frame)
    summary = pipeline.ingest(settings)
    assert summary.rejected == 1 and summary.accepted == 0
    with session_scope(settings) as session:
        issues = {(i.row, i.column, i.code) for i in session.exec(select(ValidationIssue)).all()}
        assert session.exec(select(CrcRecord)).first() is None, "a rejected return loads nothing"
    assert (6, "start_date", "bad_date") in issues
    assert (9, "upw_hours_ordered", "not_a_number") in issues
    assert (11, "sex", "not_allowed") in issues
    assert (13, "end_date", "date_order") in issues
    report = settings.out_dir / "data-quality" / "2024-01" / f"{source.name}.errors.csv"
    text = report.read_text()
    assert "'start_date' must be a date written YYYY-MM-DD; found '31/01/2024'" in text
    html = report.with_suffix(".html").read_text()
    assert "northstar-rehab_crc_caseload_2024-01_v2.csv" in html, "the page tells the clerk what to resend"


def test_missing_column_and_wrong_period(world_home):
    settings, generated = world_home
    source = generated / "northstar-rehab_crc_caseload_2024-01.csv"
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    _drop(settings, source, name="northstar-rehab_crc_caseload_2024-03.csv", frame=frame)
    _drop(settings, source, name="northstar-rehab_crc_caseload_2024-02.csv", frame=frame.drop(columns=["outcome"]))
    summary = pipeline.ingest(settings)
    assert summary.rejected == 2
    with session_scope(settings) as session:
        issues = session.exec(select(ValidationIssue)).all()
    codes = {(i.code, i.column) for i in issues}
    assert ("missing_column", "outcome") in codes
    assert ("wrong_period", "start_date") in codes


def test_same_bytes_twice_are_loaded_once_and_a_resubmission_is_a_new_current_version(world_home):
    settings, generated = world_home
    source = generated / "northstar-rehab_crc_caseload_2024-01.csv"
    _drop(settings, source)
    first = pipeline.ingest(settings)
    assert first.accepted == 1
    again = pipeline.ingest(settings)
    assert again.accepted == 0 and again.duplicate == 1
    frame = pd.read_csv(source, dtype=str, keep_default_na=False).iloc[:-5]
    _drop(settings, source, name="northstar-rehab_crc_caseload_2024-01_v2.csv", frame=frame)
    second = pipeline.ingest(settings)
    assert second.accepted == 1
    with session_scope(settings) as session:
        subs = session.exec(select(Submission).order_by(Submission.version)).all()
        assert [(s.version, s.is_current) for s in subs] == [(1, False), (2, True)]
        counts = [len(session.exec(select(CrcRecord).where(CrcRecord.submission_id == s.id)).all()) for s in subs]
    assert counts[1] == counts[0] - 5, "the earlier version stays queryable"
    archived = list(settings.raw_archive_dir.rglob("*.csv"))
    assert len(archived) == 2


def test_unrecognised_file_names_are_reported_not_guessed(world_home):
    settings, _generated = world_home
    (settings.drop_dir / "returns for january.csv").write_text("a,b\n1,2\n")
    (settings.drop_dir / "unknown-provider_crc_caseload_2024-01.csv").write_text("a,b\n1,2\n")
    summary = pipeline.ingest(settings)
    assert summary.unrecognised == 2 and summary.accepted == 0
    messages = " ".join(o["message"] for o in summary.outcomes)
    assert "<provider>_<return type>_<YYYY-MM>" in messages and "not configured" in messages


def test_contract_of_another_provider_is_rejected(world_home):
    settings, generated = world_home
    source = generated / "northstar-rehab_crc_caseload_2024-01.csv"
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame.loc[0, "contract_id"] = "CRC-E23000014"  # a Midshires contract
    _drop(settings, source, frame=frame)
    summary = pipeline.ingest(settings)
    assert summary.rejected == 1
    with session_scope(settings) as session:
        issue = session.exec(select(ValidationIssue).where(ValidationIssue.code == "unknown_contract")).one()
    assert issue.row == 2 and "northstar-rehab" in issue.message


def test_reoffending_cohort_spec_v3_custodial_column_is_optional_and_checked(world_home):
    from contracts.models import ReoffendingRecord

    settings, generated = world_home
    source = sorted(generated.glob("*_reoffending_cohort_*.csv"))[0]
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    assert "custodial_first" in frame.columns  # the demo writes spec v3
    offenders = frame["reoffended_12m"] == "1"
    assert (frame.loc[~offenders, "custodial_first"] == "").all() and frame.loc[offenders, "custodial_first"].isin(["0", "1"]).all()
    bad = frame.copy()
    row = int((~offenders).to_numpy().nonzero()[0][0])
    bad.loc[row, "custodial_first"] = "1"
    _drop(settings, source, frame=bad)
    assert pipeline.ingest(settings).rejected == 1
    with session_scope(settings) as session:
        issues = {(i.row, i.column, i.code) for i in session.exec(select(ValidationIssue)).all()}
    assert (row + 2, "custodial_first", "inconsistent") in issues
    # A v2 file (no custodial column at all) still loads, with the column blank.
    _drop(settings, source, name=source.name.replace(".csv", "_v2.csv"), frame=frame.drop(columns=["custodial_first"]))
    assert pipeline.ingest(settings).accepted == 1
    with session_scope(settings) as session:
        records = session.exec(select(ReoffendingRecord)).all()
    assert records and all(r.custodial_first is None for r in records)
    # The v3 file loads its values.
    _drop(settings, source, name=source.name.replace(".csv", "_v3.csv"), frame=frame)
    assert pipeline.ingest(settings).accepted == 1
    with session_scope(settings) as session:
        current = session.exec(select(ReoffendingRecord).join(Submission).where(Submission.is_current)).all()
    assert {r.custodial_first for r in current if r.reoffended_12m} == {True, False}
    assert all(r.custodial_first is None for r in current if not r.reoffended_12m)
