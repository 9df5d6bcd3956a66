"""The system-measures catalogue, the cjs_system_measures return's checks and its all-or-nothing storage."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import Session, select

from contracts.geography import AREAS
from contracts.models import Area, SystemMeasureValue
from contracts.system import (
    SPEC,
    SystemReturnError,
    load_catalogue,
    parse_catalogue,
    store_system_measures,
    validate_system_frame,
)

ISSUE_MEASURES = {
    ("police", "recorded_crime"), ("police", "charge_summons_rate"), ("police", "victim_does_not_support"),
    ("police", "days_offence_to_charge"), ("cps", "cps_charge_decisions"), ("cps", "conviction_rate"),
    ("police", "file_quality"), ("courts_magistrates", "first_hearing_effectiveness"),
    ("courts_crown", "cracked_trial_rate"), ("courts_crown", "ineffective_trial_rate"),
    ("courts_crown", "effective_trial_rate"), ("courts_crown", "outstanding_caseload"),
    ("courts_magistrates", "median_days_charge_to_completion"), ("courts_crown", "median_days_charge_to_completion"),
    ("prisons", "remand_population"), ("prisons", "releases_to_area"), ("probation", "recall_rate"),
}

GOOD = pd.DataFrame([
    {"area_code": "E23000039", "period": "2024-03", "agency": "police", "measure": "recorded_crime",
     "numerator": 7400, "denominator": None, "value": 7400, "unit": "count"},
    {"area_code": "E23000039", "period": "2024-03", "agency": "police", "measure": "file_quality",
     "numerator": 180, "denominator": 320, "value": 56.25, "unit": "percent"},
    {"area_code": "E23000039", "period": "2024-Q1", "agency": "courts_crown", "measure": "median_days_charge_to_completion",
     "numerator": None, "denominator": 210, "value": 301, "unit": "days"},
    {"area_code": "E23000039", "period": "2024-03", "agency": "cps", "measure": "conviction_rate",
     "numerator": 110, "denominator": 130, "value": 84.6, "unit": "percent", "breakdown": "sex", "group": "M"},
])


def test_catalogue_holds_every_measure_the_issue_lists():
    catalogue = load_catalogue()
    keys = set(catalogue.by_key)
    assert ISSUE_MEASURES <= keys
    for item in catalogue.measures:
        assert item.definition and item.source and item.level_note
        assert item.national > 0
        if item.unit == "percent":
            assert 0 < item.national < 100
    assert catalogue.get("police", "victim_does_not_support").secondary is True
    assert catalogue.get("police", "victim_does_not_support").national == 29.0  # domain-reference section 8


def test_a_bad_catalogue_entry_is_named():
    data = {"measures": [{"agency": "police", "measure": "x", "name": "X", "definition": "d", "unit": "furlongs",
                          "direction": "higher", "source": "s", "secondary": False, "national": 1, "level_note": "n"}]}
    with pytest.raises(SystemReturnError, match=r"measures\[0\]: unit 'furlongs'"):
        parse_catalogue(data)


def test_spec_columns():
    assert SPEC.return_type == "cjs_system_measures"
    assert SPEC.column_names == ("area_code", "period", "agency", "measure", "numerator", "denominator", "value",
                                 "unit", "breakdown", "group")


def test_a_clean_frame_passes_typed():
    issues, typed = validate_system_frame(GOOD)
    assert [i for i in issues if i.severity == "error"] == []
    assert list(typed["period_type"]) == ["month", "month", "quarter", "month"]
    assert typed.loc[3, "group"] == "M" and typed.loc[0, "breakdown"] == ""


@pytest.mark.parametrize("row, column, code, words", [
    ({"measure": "made_up"}, "measure", "unknown_measure", "not in the system-measures catalogue"),
    ({"agency": "prisons"}, "agency", "wrong_agency", "declares it for police"),
    ({"numerator": 400, "value": 125.0}, "numerator", "exceeds", "larger than the denominator"),
    ({"value": 60.0}, "value", "value_inconsistent", "not 100 x numerator / denominator"),
    ({"period": "2024-13"}, "period", "bad_period", "YYYY-MM or a quarter YYYY-Qn"),
    ({"period": "Q1 2024"}, "period", "bad_period", "'Q1 2024'"),
    ({"area_code": "E99999999"}, "area_code", "unknown_area", "E99999999"),
    ({"unit": "count"}, "unit", "wrong_unit", "catalogue's 'percent'"),
    ({"breakdown": "sex", "group": "X"}, "group", "not_allowed", "not a sex group"),
    ({"breakdown": "ethnic_group", "group": "White"}, "breakdown", "breakdown_not_declared", "no ethnic_group breakdown"),
    ({"numerator": None}, "numerator", "percent_needs_parts", "numerator and denominator"),
])
def test_each_bad_cell_is_named_by_row_and_column(row, column, code, words):
    frame = GOOD.copy()
    for name, value in row.items():
        if name not in frame:
            frame[name] = None
        frame.loc[1, name] = value  # the file-quality row: spreadsheet row 3
    issues, typed = validate_system_frame(frame)
    assert typed is None
    hits = [i for i in issues if i.code == code]
    assert hits, issues
    assert hits[0].row == 3 and hits[0].column == column and words in hits[0].message


def test_missing_column_and_duplicate_rows():
    issues, _ = validate_system_frame(GOOD.drop(columns=["unit"]))
    assert [(i.code, i.column) for i in issues if i.severity == "error"] == [("missing_column", "unit")]
    issues, _ = validate_system_frame(pd.concat([GOOD, GOOD.iloc[[0]]], ignore_index=True))
    assert [(i.code, i.row) for i in issues if i.severity == "error"] == [("duplicate_key", 6)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def session(request, tmp_path):
    import dataclasses
    import os
    import uuid

    from sqlalchemy import create_engine, text

    from cjmonitor.db import dispose_engines, get_engine
    from cjmonitor.pipeline import upgrade_db
    from cjmonitor.settings import get_settings

    settings = get_settings(tmp_path)
    admin = name = None
    if request.param == "postgres":
        url = os.environ.get("CJMONITOR_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("no PostgreSQL server: set CJMONITOR_TEST_POSTGRES_URL (see .ci/postgres.sh)")
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"cj_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        settings = dataclasses.replace(settings, database_url=url.rsplit("/", 1)[0] + "/" + name)
    upgrade_db(settings)
    with Session(get_engine(settings)) as session:
        session.add_all([Area(code=a.code, name=a.name, region=a.region, commissioner_type=a.commissioner_type,
                              population_m=a.population_m) for a in AREAS])
        session.commit()
        yield session
    if admin is not None:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_store_is_all_or_nothing_and_replaces_same_keys(session):
    outcome = store_system_measures(session, GOOD, source="test.csv")
    session.commit()
    assert outcome.rows == 4 and outcome.replaced == 0
    stored = session.exec(select(SystemMeasureValue)).all()
    assert len(stored) == 4
    assert {(r.measure, r.value) for r in stored} >= {("file_quality", 56.25), ("recorded_crime", 7400.0)}

    # A bad frame: nothing stored, nothing already stored lost.
    bad = GOOD.copy()
    bad.loc[0, "value"] = 1.0
    bad.loc[1, "numerator"] = 200
    bad.loc[1, "value"] = 62.5
    with pytest.raises(SystemReturnError, match="row 2, column value") as error:
        store_system_measures(session, bad, source="bad.csv")
    assert error.value.issues
    session.commit()
    assert session.exec(select(SystemMeasureValue).where(SystemMeasureValue.measure == "file_quality")).one().value == 56.25

    # A corrected resubmission replaces the same keys.
    fixed = GOOD.iloc[[1]].copy()
    fixed.loc[1, ["numerator", "value"]] = [200, 62.5]
    outcome = store_system_measures(session, fixed, source="fixed.csv")
    session.commit()
    assert outcome.replaced == 1
    assert len(session.exec(select(SystemMeasureValue)).all()) == 4
    assert session.exec(select(SystemMeasureValue).where(SystemMeasureValue.measure == "file_quality")).one().value == 62.5
