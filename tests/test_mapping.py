"""Returns as providers really send them: per-provider mappings (issue #15 item 8).

Everything here is synthetic: a made-up resettlement provider in Dorset, made-up episodes and person ids.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from openpyxl import Workbook
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.mapping import (
    MappingSpecError,
    ReturnMapping,
    apply_mapping,
    header_score,
    load_mappings,
    parse_mapping,
    propose_mapping,
    save_mappings,
)
from contracts.models import Area, Contract, Provider, Submission, TtgRecord, ValidationIssue
from contracts.returns import SPECS

PROVIDER = "harbour-resettlement"
CONTRACT = "TTG-E23000039"
TTG = SPECS["ttg_resettlement"]
ACCOMMODATION_WORDS = {"settled": "Settled", "unsettled": "Unsettled", "homeless": "No fixed abode", "unknown": "Not known"}
ETE_WORDS = {"Y": "Yes", "N": "No", "": ""}


@pytest.fixture
def office(tmp_path):
    """A home with one area, one TTG provider and its one contract; no demo world."""
    return _office(get_settings(tmp_path / "home"))


def _office(settings):
    pipeline.upgrade_db(settings)
    settings.ensure_dirs()
    with session_scope(settings) as session:
        session.add(Area(code="E23000039", name="Dorset", region="South West", commissioner_type="PCC", population_m=0.8))
        session.add(Provider(id=PROVIDER, name="Harbour Resettlement CIC", kind="voluntary"))
        session.flush()
        session.add(Contract(id=CONTRACT, area_code="E23000039", provider_id=PROVIDER, service_type="ttg",
                             name="Through the gate: Dorset", start_date=date(2023, 4, 1), end_date=date(2026, 3, 31),
                             annual_value_gbp=250000))
    return settings


def _episodes() -> pd.DataFrame:
    """Twelve synthetic custody episodes received or released in January 2024 (template form)."""
    rows = []
    for i in range(12):
        reception = date(2024, 1, 2) + timedelta(days=2 * i)
        plan = reception + timedelta(days=3 + i % 4) if i % 5 else None
        release = reception + timedelta(days=20 + i) if i % 3 == 0 else None
        rows.append({
            "contract_id": CONTRACT, "area_code": "E23000039", "episode_ref": f"EP{1000 + i}",
            "person_id": f"P-{7000 + i}", "reception_date": reception.isoformat(),
            "resettlement_plan_date": plan.isoformat() if plan else "",
            "release_date": release.isoformat() if release else "",
            "accommodation_first_night": ["settled", "unsettled", "homeless", "unknown"][i % 4] if release else "",
            "ete_on_release": ("Y" if i % 2 else "N") if release else "",
            "age_band": ["18-20", "21-24", "25-34", "35-49", "50+"][i % 5], "sex": "MF"[i % 2],
        })
    return pd.DataFrame(rows, columns=list(TTG.column_names))


MESSY_HEADERS = ["Episode ref", "Person ID ", "Reception date", "Resettlement plan date", "Release date",
                 "First night accommodation", "ETE on release", "Age band", "Sex", "Area", "Keyworker"]


def _messy_workbook(frame: pd.DataFrame, *, epoch_1904: bool = False) -> bytes:
    """The same episodes as a provider's own export: a notes sheet first, a title and a blank row above
    human headers, real date cells and serial numbers, words for codes, no contract_id, a blank row and a TOTAL."""
    from openpyxl.utils.datetime import CALENDAR_MAC_1904, to_excel

    book = Workbook()
    if epoch_1904:
        book.epoch = CALENDAR_MAC_1904
    notes = book.active
    notes.title = "Notes"
    notes.append(["Resettlement return: notes for the commissioner"])
    notes.append(["Dates are reception dates. Figures checked by the data team."])
    data = book.create_sheet("Data")
    data.append(["Harbour Resettlement: January 2024"])
    data.append([])
    data.append(MESSY_HEADERS)
    for _, row in frame.iterrows():
        def as_date(text):
            return datetime.strptime(text, "%Y-%m-%d") if text else None
        plan = as_date(row["resettlement_plan_date"])
        data.append([
            row["episode_ref"], row["person_id"], as_date(row["reception_date"]),
            to_excel(plan, book.epoch) if plan else None,  # a serial number in a plain number cell
            as_date(row["release_date"]),
            ACCOMMODATION_WORDS[row["accommodation_first_night"]] if row["accommodation_first_night"] else None,
            ETE_WORDS[row["ete_on_release"]] or None, row["age_band"], row["sex"], row["area_code"], "K. Worker",
        ])
    for cells in data.iter_rows(min_row=4, min_col=3, max_col=5):
        for cell in cells:
            if isinstance(cell.value, datetime):
                cell.number_format = "dd/mm/yyyy"
    data.append([])
    data.append(["TOTAL", f"=COUNTA(B4:B{3 + len(frame)})"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


DECLARED = {
    "return_type": "ttg_resettlement",
    "sheet": {"name": "Data"},
    "header_row": 3,
    "columns": {"Episode ref": "episode_ref", "Person ID": "person_id", "Reception date": "reception_date",
                "Resettlement plan date": "resettlement_plan_date", "Release date": "release_date",
                "First night accommodation": "accommodation_first_night", "ETE on release": "ete_on_release",
                "Age band": "age_band", "Area": "area_code"},
    "values": {"accommodation_first_night": {"Settled": "settled", "Unsettled": "unsettled",
                                             "No fixed abode": "homeless", "Not known": "unknown"},
               "ete_on_release": {"Yes": "Y", "No": "N"}},
    "constants": {"contract_id": CONTRACT},
    "drop_rows": {"blank": True, "first_cell_matches": "^TOTAL$"},
}


def _drop(settings, name: str, data: bytes):
    target = settings.drop_dir / name
    target.write_bytes(data)
    os.utime(target, (datetime(2024, 2, 10, tzinfo=UTC).timestamp(),) * 2)
    return target


def _records(session, submission_id: int) -> list[dict]:
    rows = session.exec(select(TtgRecord).where(TtgRecord.submission_id == submission_id).order_by(TtgRecord.episode_ref)).all()
    return [{k: v for k, v in r.model_dump().items() if k not in ("id", "submission_id")} for r in rows]


def _clean_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# ------------------------------------------------------------------ the messy workbook, with and without a mapping


def test_messy_workbook_loads_through_a_declared_mapping_into_the_template_records(office):
    frame = _episodes()
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01.csv", _clean_csv(frame))
    assert pipeline.ingest(office).accepted == 1
    mapping = parse_mapping(DECLARED)
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [mapping])
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01_v2.xlsx", _messy_workbook(frame))
    summary = pipeline.ingest(office)
    assert summary.accepted == 1, summary.outcomes
    with session_scope(office) as session:
        clean, messy = session.exec(select(Submission).order_by(Submission.id)).all()
        assert (clean.mapping_sha256, clean.mapping_json) == ("", None)
        assert messy.mapping_json == mapping.canonical_json() and messy.mapping_sha256 == mapping.sha256
        assert json.loads(messy.mapping_json) == DECLARED
        assert messy.rows == 12 and messy.is_current and not clean.is_current
        template_rows, mapped_rows = _records(session, clean.id), _records(session, messy.id)
        notes = {i.code: i for i in session.exec(select(ValidationIssue).where(ValidationIssue.submission_id == messy.id)).all()}
    assert len(template_rows) == 12
    assert mapped_rows == template_rows  # the same records, field for field (dates, codes, person keys, derived columns)
    assert {"settled", "unsettled", "homeless", "unknown"} == {r["accommodation_first_night"] for r in mapped_rows} - {None}
    assert "16 (blank)" in notes["dropped_rows"].message and "17 ('TOTAL')" in notes["dropped_rows"].message
    assert "'Keyworker'" in notes["unmapped_column"].message and "'Sex'" not in notes["unmapped_column"].message
    result = CliRunner().invoke(cli, ["returns", "show", "--home", str(office.home), str(messy.id)])
    assert result.exit_code == 0, result.output
    assert f"read through the provider's mapping {mapping.sha256}" in result.output
    assert '"Person ID":"person_id"' in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["returns", "show", "--home", str(office.home), str(messy.id), "--json"]).output)
    assert json.loads(as_json["mapping_json"]) == DECLARED
    from reports.scorecard import render_scorecard

    with session_scope(office) as session:
        page = render_scorecard(session, office.out_dir, CONTRACT, "2024-01", alpha=0.05, code_version="test",
                                formats=("html",)).read_text()
    assert f"read through the provider's mapping <code>{mapping.sha256[:12]}</code>" in page, "the scorecard's provenance"


def test_without_a_mapping_the_workbook_is_refused_with_a_proposal_that_loads_once_completed(office):
    _refused_then_mapped(office)


@pytest.mark.postgres
def test_refused_then_mapped_on_postgres(tmp_path):
    """The same bytes stored twice (refused, then read through a mapping) under PostgreSQL's constraints."""
    import dataclasses
    import uuid

    from sqlalchemy import create_engine, text

    from cjmonitor.db import dispose_engines

    url = os.environ.get("CJMONITOR_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: set CJMONITOR_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"cj_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        settings = dataclasses.replace(get_settings(tmp_path / "home"), database_url=url.rsplit("/", 1)[0] + "/" + name)
        _refused_then_mapped(_office(settings))
    finally:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _refused_then_mapped(office):
    frame = _episodes()
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01.xlsx", _messy_workbook(frame))
    summary = pipeline.ingest(office)
    assert summary.rejected == 1 and summary.accepted == 0
    with session_scope(office) as session:
        submissions = session.exec(select(Submission)).all()
        assert len(submissions) == 1 and submissions[0].status == "rejected"
        assert session.exec(select(TtgRecord)).first() is None, "nothing of a refused file is loaded"
        issues = session.exec(select(ValidationIssue).order_by(ValidationIssue.id)).all()
    by_code: dict[str, list] = {}
    for issue in issues:
        by_code.setdefault(issue.code, []).append(issue)
    needed = by_code["mapping_needed"][0]
    assert needed.severity == "error" and needed.row == 3 and "sheet 'Data' row 3 looks like the return" in needed.message
    assert "no mapping" in needed.message and PROVIDER in needed.message
    guesses = {i.message.split("'")[1]: i.column for i in by_code["header_guess"] if i.column}
    assert guesses == {"Episode ref": "episode_ref", "Person ID": "person_id", "Reception date": "reception_date",
                       "Resettlement plan date": "resettlement_plan_date", "Release date": "release_date",
                       "First night accommodation": "accommodation_first_night", "ETE on release": "ete_on_release",
                       "Age band": "age_band", "Sex": "sex", "Area": "area_code"}
    assert any("'Keyworker' (column K) looks like no column" in i.message for i in by_code["header_guess"])
    assert any("contract_id" in i.message for i in by_code["header_guess"] if i.column is None)
    proposed = by_code["proposed_mapping"][0].message
    report = office.out_dir / "data-quality" / "2024-01" / f"{PROVIDER}_ttg_resettlement_2024-01.xlsx.errors.html"
    assert "the mapping that would read this file" in report.read_text()
    assert "header_row: 3" in report.read_text()
    # The proposal is valid YAML; value maps and the constant are only suggested, as comments.
    proposal = yaml.safe_load(proposed)["mappings"][0]
    assert proposal["sheet"] == {"name": "Data"} and proposal["header_row"] == 3
    assert proposal["drop_rows"] == {"first_cell_matches": "^TOTAL$"}
    assert "values" not in proposal and "constants" not in proposal
    assert '#     "Yes": "Y"' in proposed and '#     "No fixed abode": ?' in proposed and '#     "Settled": "settled"' in proposed
    assert "#   contract_id: <your contract id>" in proposed
    # The contract manager completes the proposal as the comments say, and drops the same file again.
    proposal["values"] = {"accommodation_first_night": {"Settled": "settled", "Unsettled": "unsettled",
                                                        "No fixed abode": "homeless", "Not known": "unknown"},
                          "ete_on_release": {"Yes": "Y", "No": "N"}}
    proposal["constants"] = {"contract_id": CONTRACT}
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [parse_mapping(proposal)])
    again = pipeline.ingest(office)
    assert again.accepted == 1 and again.duplicate == 0, again.outcomes
    third = pipeline.ingest(office)
    assert third.duplicate == 1 and third.accepted == 0, "read once through a mapping, the bytes are a duplicate"
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01_v3.csv", _clean_csv(frame))
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [])  # the clean template needs no mapping
    assert pipeline.ingest(office).accepted == 1
    with session_scope(office) as session:
        first, mapped, clean = session.exec(select(Submission).order_by(Submission.id)).all()
        assert (first.status, mapped.status, clean.status) == ("rejected", "accepted", "accepted")
        assert first.sha256 == mapped.sha256 and first.mapping_sha256 == "" and mapped.mapping_sha256
        assert _records(session, mapped.id) == _records(session, clean.id)


def test_without_a_mapping_only_surrounding_whitespace_is_forgiven(office):
    frame = _episodes()
    spaced = frame.rename(columns={"person_id": " person_id  "})
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01.csv", _clean_csv(spaced))
    assert pipeline.ingest(office).accepted == 1
    cased = frame.rename(columns={"person_id": "Person_ID"})
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01_v2.csv", _clean_csv(cased))
    summary = pipeline.ingest(office)
    assert summary.rejected == 1
    with session_scope(office) as session:
        sub = session.exec(select(Submission).where(Submission.status == "rejected")).one()
        codes = {(i.code, i.column) for i in session.exec(select(ValidationIssue).where(ValidationIssue.submission_id == sub.id))}
    assert ("missing_column", "person_id") in codes and ("mapping_needed", None) in codes
    assert ("header_guess", "person_id") in codes


def test_first_sheet_is_not_read_silently_when_it_is_not_the_return(office, tmp_path):
    frame = _episodes()
    book = Workbook()
    book.active.title = "Notes"
    book.active.append(["read me first"])
    data = book.create_sheet("return")
    data.append(list(TTG.column_names))
    for row in frame.itertuples(index=False):
        data.append(list(row))
    path = tmp_path / f"{PROVIDER}_ttg_resettlement_2024-01.xlsx"
    book.save(path)
    _drop(office, path.name, path.read_bytes())
    assert pipeline.ingest(office).rejected == 1
    with session_scope(office) as session:
        needed = session.exec(select(ValidationIssue).where(ValidationIssue.code == "mapping_needed")).one()
        assert session.exec(select(TtgRecord)).first() is None
    assert "sheet 'return' row 1 looks like the return" in needed.message
    proposal = propose_mapping(path, TTG)
    assert proposal.mapping == {"return_type": "ttg_resettlement", "sheet": {"name": "return"}}
    assert all(g.score == 1.0 for g in proposal.guesses)


# ------------------------------------------------------------------ Excel dates


@pytest.mark.parametrize("epoch_1904", [False, True])
def test_excel_date_cells_and_serial_numbers_read_as_dates(tmp_path, epoch_1904):
    frame = _episodes()
    path = tmp_path / "book.xlsx"
    path.write_bytes(_messy_workbook(frame, epoch_1904=epoch_1904))
    mapped = apply_mapping(path, parse_mapping(DECLARED), TTG)
    assert list(mapped.index) == list(range(4, 16))  # the sheet's own rows: header on 3, TOTAL dropped
    assert mapped.attrs["sheet"] == "Data" and mapped.attrs["header_row"] == 3
    assert list(mapped["reception_date"]) == list(frame["reception_date"])  # real date cells
    assert list(mapped["resettlement_plan_date"]) == list(frame["resettlement_plan_date"])  # serial numbers
    assert list(mapped["contract_id"]) == [CONTRACT] * 12


def test_text_dates_and_serials_as_text_through_date_formats(tmp_path):
    path = tmp_path / "uk.csv"
    frame = _episodes()
    frame["reception_date"] = pd.to_datetime(frame["reception_date"]).dt.strftime("%d/%m/%Y")
    frame["release_date"] = [str((pd.Timestamp(d) - pd.Timestamp("1899-12-30")).days) if d else "" for d in _episodes()["release_date"]]
    frame.to_csv(path, index=False)
    mapping = parse_mapping({"return_type": "ttg_resettlement",
                             "date_formats": {"reception_date": "%d/%m/%Y", "release_date": "excel_serial"}})
    mapped = apply_mapping(path, mapping, TTG)
    assert list(mapped["reception_date"]) == list(_episodes()["reception_date"])
    assert list(mapped["release_date"]) == list(_episodes()["release_date"])


# ------------------------------------------------------------------ the register form


def test_to_dict_round_trips_the_register_form_exactly():
    for form in (DECLARED, {"return_type": "em_orders"}, {"return_type": "crc_caseload", "sheet": {"find_header": True}},
                 {"return_type": "ttg_resettlement", "drop_rows": {"stop_at": "^Notes"}, "values": {"sex": {"Male": "M"}}}):
        mapping = parse_mapping(form)
        assert mapping.to_dict() == form
        assert list(mapping.to_dict()) == [k for k in ("return_type", "sheet", "header_row", "columns", "values",
                                                        "constants", "date_formats", "drop_rows") if k in form]
        from_canonical = parse_mapping(json.loads(mapping.canonical_json()))
        assert from_canonical.to_dict() == form and from_canonical.sha256 == mapping.sha256
    assert parse_mapping(DECLARED).sha256 != parse_mapping({**DECLARED, "header_row": 4}).sha256


BAD = [
    ("unknown-return-type", {"return_type": "ttg_resettlment"}, "m.return_type", "did you mean 'ttg_resettlement'"),
    ("no-return-type", {"columns": {"A": "person_id"}}, "m.return_type", "missing"),
    ("alias-to-unknown-column", {"return_type": "ttg_resettlement", "columns": {"Person": "persn_id"}},
     "m.columns.Person", "'persn_id' is not a column of the ttg_resettlement return (did you mean 'person_id'?)"),
    ("value-map-unknown-column", {"return_type": "ttg_resettlement", "values": {"first_night_accommodation": {"Settled": "Y"}}},
     "m.values.first_night_accommodation", "did you mean 'accommodation_first_night'"),
    ("value-not-allowed", {"return_type": "ttg_resettlement", "values": {"accommodation_first_night": {"Settled": "Y"}}},
     "m.values.accommodation_first_night.Settled", "maps to 'Y', which 'accommodation_first_night' does not allow"),
    ("yaml-boolean-key", {"return_type": "ttg_resettlement", "values": {"ete_on_release": {True: "Y"}}},
     "m.values.ete_on_release.True", "YAML read it as the boolean True"),
    ("bad-regex", {"return_type": "ttg_resettlement", "drop_rows": {"first_cell_matches": "(TOTAL"}},
     "m.drop_rows.first_cell_matches", "not a valid regular expression"),
    ("header-row-zero", {"return_type": "ttg_resettlement", "header_row": 0}, "m.header_row", "a whole number from 1"),
    ("header-row-text", {"return_type": "ttg_resettlement", "header_row": "3"}, "m.header_row", "found '3'"),
    ("unknown-key", {"return_type": "ttg_resettlement", "colums": {}}, "m.colums", "did you mean 'columns'"),
    ("sheet-as-text", {"return_type": "ttg_resettlement", "sheet": "Data"}, "m.sheet", "write the sheet as {name: Data}"),
    ("sheet-both", {"return_type": "ttg_resettlement", "sheet": {"name": "Data", "find_header": True}}, "m.sheet", "not both"),
    ("constant-not-allowed", {"return_type": "ttg_resettlement", "constants": {"sex": "X"}}, "m.constants.sex", "'X' is not allowed"),
    ("constant-person", {"return_type": "ttg_resettlement", "constants": {"person_id": "P1"}}, "m.constants.person_id",
     "identifies a person"),
    ("constant-and-alias", {"return_type": "ttg_resettlement", "columns": {"Contract": "contract_id"},
                            "constants": {"contract_id": CONTRACT}}, "m.constants.contract_id", "both a constant and"),
    ("duplicate-aliases", {"return_type": "ttg_resettlement", "columns": {"Person ID": "person_id", "person  id ": "person_id"}},
     "m.columns.person  id ", "the same header as 'Person ID'"),
    ("value-map-on-date", {"return_type": "ttg_resettlement", "values": {"release_date": {"N/A": ""}}},
     "m.values.release_date", "use date_formats" if False else "read its text dates with"),
    ("blank-for-required", {"return_type": "ttg_resettlement", "values": {"sex": {"?": ""}}}, "m.values.sex.?",
     "'sex' is required"),
    ("date-format-no-day", {"return_type": "ttg_resettlement", "date_formats": {"reception_date": "%m/%Y"}},
     "m.date_formats.reception_date", "does not hold a whole date"),
    ("date-format-not-date", {"return_type": "ttg_resettlement", "date_formats": {"sex": "%d/%m/%Y"}},
     "m.date_formats.sex", "not a date"),
    ("drop-unknown-key", {"return_type": "ttg_resettlement", "drop_rows": {"blanks": True}}, "m.drop_rows.blanks",
     "did you mean 'blank'"),
]


@pytest.mark.parametrize("case,form,key,fragment", BAD, ids=[c[0] for c in BAD])
def test_bad_mappings_say_what_is_wrong_and_where(case, form, key, fragment):
    with pytest.raises(MappingSpecError) as caught:
        parse_mapping(form, key="m")
    problems = dict(caught.value.problems)
    assert key in problems, caught.value.problems
    assert fragment in problems[key]


def test_every_problem_of_a_mapping_is_reported_at_once():
    with pytest.raises(MappingSpecError) as caught:
        parse_mapping({"return_type": "ttg_resettlement", "header_row": -1, "columns": {"A": "nope"},
                       "drop_rows": {"stop_at": "["}}, key="providers[2].mappings[0]")
    assert [k for k, _ in caught.value.problems] == ["providers[2].mappings[0].header_row", "providers[2].mappings[0].columns.A",
                                                     "providers[2].mappings[0].drop_rows.stop_at"]


def test_mappings_are_saved_replaced_and_removed_per_provider(office):
    ttg = parse_mapping(DECLARED)
    em = parse_mapping({"return_type": "em_orders", "header_row": 2})
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [ttg, em])
    with session_scope(office) as session:
        assert load_mappings(session, PROVIDER) == {"ttg_resettlement": ttg, "em_orders": em}
        changed = parse_mapping({**DECLARED, "header_row": 4})
        save_mappings(session, PROVIDER, [changed])
    with session_scope(office) as session:
        assert load_mappings(session, PROVIDER) == {"ttg_resettlement": changed}
        with pytest.raises(MappingSpecError, match="already has a mapping for ttg_resettlement"):
            save_mappings(session, PROVIDER, [ttg, changed])
    assert isinstance(changed, ReturnMapping) and changed.header_row == 4


# ------------------------------------------------------------------ a mapping that does not fit the file


@pytest.mark.parametrize("change,code,fragment", [
    ({"sheet": {"name": "Return"}}, "sheet_not_found", "no sheet named 'Return' (it has 'Notes', 'Data')"),
    ({"sheet": {"find_header": True}, "header_row": None, "columns": {"Person ID": "person_id"}}, "header_not_found",
     "the closest is sheet 'Data' row 3, which has no header for area_code, episode_ref, reception_date"),
    ({"columns": {**DECLARED["columns"], "Keyworker": "person_id"}}, "duplicate_column",
     "'Person ID ' (column B) and 'Keyworker' (column K) both read as person_id"),
    ({"constants": {"contract_id": CONTRACT, "sex": "M"}}, "constant_in_file",
     "row 3: the file has a 'Sex' column, but the mapping sets sex as a constant"),
])
def test_a_mapping_that_does_not_fit_the_file_refuses_it_and_loads_nothing(office, change, code, fragment):
    form = {**DECLARED, **change}
    form = {k: v for k, v in form.items() if v is not None}
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [parse_mapping(form)])
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01.xlsx", _messy_workbook(_episodes()))
    assert pipeline.ingest(office).rejected == 1
    with session_scope(office) as session:
        issue = session.exec(select(ValidationIssue).where(ValidationIssue.code == code)).one()
        assert session.exec(select(TtgRecord)).first() is None
        assert session.exec(select(Submission)).one().mapping_json == parse_mapping(form).canonical_json()
    assert fragment in issue.message


def test_validation_problems_name_the_files_own_rows(office):
    frame = _episodes()
    frame.loc[4, "sex"] = "X"
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [parse_mapping(DECLARED)])
    _drop(office, f"{PROVIDER}_ttg_resettlement_2024-01.xlsx", _messy_workbook(frame))
    assert pipeline.ingest(office).rejected == 1
    with session_scope(office) as session:
        issue = session.exec(select(ValidationIssue).where(ValidationIssue.code == "not_allowed")).one()
    assert (issue.row, issue.column) == (8, "sex")  # fifth record, under a header on row 3


def test_header_scores_rank_human_headers():
    assert header_score("Person ID ", "person_id") == 1.0
    assert header_score("First night accommodation", "accommodation_first_night") == 1.0
    assert header_score("Reception date", "reception_date") > header_score("Reception date", "release_date")
    assert header_score("Keyworker", "episode_ref") < 0.6


def test_cells_under_no_header_are_reported_not_swallowed(tmp_path):
    frame = _episodes()
    text = frame.to_csv(index=False).splitlines()
    text[3] += ",stray note"  # the third record has a cell right of the header
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(text) + "\n")
    mapped = apply_mapping(path, parse_mapping({"return_type": "ttg_resettlement"}), TTG)
    assert len(mapped) == 12
    notes = dict(mapped.attrs["notes"])
    assert notes["unnamed_cells"].startswith("row 4 has cells under no header")


def test_json_schema_of_a_mapping_agrees_with_the_parser():
    import jsonschema

    from contracts.mapping import mapping_json_schema

    schema = mapping_json_schema()
    jsonschema.validate(DECLARED, schema)
    for _case, form, _key, _fragment in BAD:
        if _case in ("no-return-type", "header-row-zero", "header-row-text", "unknown-key", "sheet-as-text", "sheet-both",
                     "drop-unknown-key"):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(form, schema)


def test_cli_proposes_a_mapping_then_reads_through_the_stored_one(office, tmp_path):
    path = tmp_path / f"{PROVIDER}_ttg_resettlement_2024-01.xlsx"
    path.write_bytes(_messy_workbook(_episodes()))
    runner = CliRunner()
    proposed = runner.invoke(cli, ["returns", "mapping", "--home", str(office.home), str(path)])
    assert proposed.exit_code == 0, proposed.output
    assert "sheet 'Data' row 3 looks like the ttg_resettlement header" in proposed.output
    assert "header 'Reception date' (column C) looks like reception_date (score 1.00)" in proposed.output
    assert yaml.safe_load(proposed.output.split("\n\n", 1)[1])["mappings"][0]["header_row"] == 3
    with session_scope(office) as session:
        save_mappings(session, PROVIDER, [parse_mapping(DECLARED)])
    read = runner.invoke(cli, ["returns", "mapping", "--home", str(office.home), str(path), "--json"])
    assert read.exit_code == 0, read.output
    data = json.loads(read.output)
    assert (data["sheet"], data["header_row"], data["records"]) == ("Data", 3, 12)
    assert data["mapping_sha256"] == parse_mapping(DECLARED).sha256
    with session_scope(office) as session:
        assert session.exec(select(Submission)).first() is None, "trying a file stores nothing"


def test_the_readme_example_mapping_is_valid_and_documents_every_key():
    from pathlib import Path

    from contracts.mapping import MAPPING_KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("**Returns as providers really send them: mappings.**", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    form = yaml.safe_load(block)["providers"][0]["mappings"][0]
    mapping = parse_mapping(form, key="providers[0].mappings[0]")
    assert set(form) == set(MAPPING_KEYS) and mapping.to_dict() == form
    assert mapping.value_maps["ete_on_release"] == {"Yes": "Y", "No": "N"}
