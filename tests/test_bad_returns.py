"""A corpus of malformed returns: each gets a specific, actionable message, changes no loaded data,
and (when it was read at all) its raw bytes are kept in the archive.

The corpus is built from a real generated return of each type by one small, named change per case,
so every case is reproducible and the reason it fails is visible in this file.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, frame_bytes, generate_world, load_world
from cjmonitor.settings import get_settings
from contracts.models import RECORD_TABLES, Submission, ValidationIssue

SEED, AREAS, MONTHS = 13, 5, 24
TEMPLATES = {
    "crc": "northstar-rehab_crc_caseload_2023-02.csv",
    "em": "sentinel-monitoring_em_orders_2023-02.csv",
    "ttg": "gateway-resettlement_ttg_resettlement_2023-02.csv",
    "health": "riverside-health_health_referrals_2023-02.xlsx",
    "cohort": "northstar-rehab_reoffending_cohort_2023-01.csv",
    "agg": "cymru-health_kpi_aggregate_2023-02.csv",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    world = generate_world(folder / "drop", folder / "truth.json", seed=SEED, areas=AREAS, months=MONTHS)
    for template in TEMPLATES.values():
        assert template in world.files, template
    return folder / "drop"


def _frame(generated: Path, kind: str) -> pd.DataFrame:
    path = generated / TEMPLATES[kind]
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def _edit(kind: str, change):
    """A case whose bytes are the template of ``kind`` after ``change(frame)`` returns a new frame."""
    def build(generated: Path) -> bytes:
        frame = _frame(generated, kind).copy()
        return _csv(change(frame))
    return build


def _set(kind: str, row: int, column: str, value: str):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return _edit(kind, change)


def _raw(kind: str, transform):
    def build(generated: Path) -> bytes:
        return transform((generated / TEMPLATES[kind]).read_bytes())
    return build


def _zip_bomb(_generated: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as handle:
            chunk = b"\0" * (1 << 20)
            for _ in range(24):  # 24 MB of zeros: ~24 KB packed, over the test's 10 MB unpacked limit
                handle.write(chunk)
    return buffer.getvalue()


def _two_sheets(generated: Path) -> bytes:
    frame = _frame(generated, "health")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="return")
        pd.DataFrame({"note": ["checked by J"]}).to_excel(writer, index=False, sheet_name="notes")
    return buffer.getvalue()


def _xlsx_with_date_cells(generated: Path) -> bytes:
    frame = _frame(generated, "health")
    for column in ("referral_date", "assessed_date", "treatment_start_date"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="return")
    return buffer.getvalue()


# (case id, file name, bytes builder, expected status, expected issue code, expected column or None)
CASES = [
    ("missing-column", TEMPLATES["crc"], _edit("crc", lambda f: f.drop(columns=["outcome"])), "rejected", "missing_column", "outcome"),
    ("renamed-column", TEMPLATES["crc"], _edit("crc", lambda f: f.rename(columns={"start_date": "Start Date"})), "rejected", "missing_column", "start_date"),
    ("text-in-integer", TEMPLATES["em"], _set("em", 3, "violations", "two"), "rejected", "not_a_number", "violations"),
    ("fraction-in-integer", TEMPLATES["em"], _set("em", 3, "violations", "1.5"), "rejected", "not_a_number", "violations"),
    ("text-in-number", TEMPLATES["em"], _set("em", 2, "curfew_hours", "ten"), "rejected", "not_a_number", "curfew_hours"),
    ("impossible-date", TEMPLATES["crc"], _set("crc", 5, "start_date", "2023-02-30"), "rejected", "bad_date", "start_date"),
    ("date-in-uk-format", TEMPLATES["crc"], _set("crc", 5, "start_date", "03/02/2023"), "rejected", "bad_date", "start_date"),
    ("datetime-without-time", TEMPLATES["em"], _set("em", 1, "order_start", "2023-02-03"), "rejected", "bad_datetime", "order_start"),
    ("required-blank", TEMPLATES["crc"], _set("crc", 0, "order_ref", ""), "rejected", "required", "order_ref"),
    ("unknown-outcome", TEMPLATES["crc"], _set("crc", 0, "outcome", "done"), "rejected", "not_allowed", "outcome"),
    ("sex-as-word", TEMPLATES["crc"], _set("crc", 0, "sex", "Male"), "rejected", "not_allowed", "sex"),
    ("yes-instead-of-y", TEMPLATES["ttg"], _set("ttg", 0, "ete_on_release", "Yes"), "rejected", "not_allowed", "ete_on_release"),
    ("flag-two", TEMPLATES["cohort"], _set("cohort", 0, "served", "2"), "rejected", "not_allowed", "served"),
    ("negative-count", TEMPLATES["em"], _set("em", 0, "violations", "-1"), "rejected", "out_of_range", "violations"),
    ("curfew-over-max", TEMPLATES["em"], _set("em", 0, "curfew_hours", "20"), "rejected", "out_of_range", "curfew_hours"),
    ("responded-over-violations", TEMPLATES["em"], _set("em", 0, "violations_responded_in_time", "3"), "rejected", "exceeds", "violations_responded_in_time"),
    ("aggregate-numerator-over-denominator", TEMPLATES["agg"], _set("agg", 0, "numerator", "999999"), "rejected", "exceeds", "numerator"),
    ("aggregate-negative-denominator", TEMPLATES["agg"], _set("agg", 1, "denominator", "-4"), "rejected", "out_of_range", "denominator"),
    ("aggregate-unknown-measure", TEMPLATES["agg"], _set("agg", 0, "measure_code", "hl_happiness"), "rejected", "unknown_measure", "measure_code"),
    ("aggregate-row-for-another-month", TEMPLATES["agg"], _set("agg", 0, "period", "2023-03"), "rejected", "wrong_period", "period"),
    ("end-before-start", TEMPLATES["em"], _set("em", 0, "order_end", "2020-01-01"), "rejected", "date_order", "order_end"),
    ("rows-of-another-month", "northstar-rehab_crc_caseload_2023-05.csv", _raw("crc", lambda b: b), "rejected", "wrong_period", "start_date"),
    ("duplicate-order", TEMPLATES["crc"], _edit("crc", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True)), "rejected", "duplicate_key", "order_ref"),
    ("unknown-contract", TEMPLATES["crc"], _set("crc", 0, "contract_id", "CRC-X99"), "rejected", "unknown_contract", "contract_id"),
    ("wrong-area-for-contract", TEMPLATES["crc"], _set("crc", 0, "area_code", "E23000014"), "rejected", "wrong_area", "area_code"),
    ("formula-equals", TEMPLATES["crc"], _set("crc", 0, "order_ref", '=HYPERLINK("http://x","y")'), "rejected", "formula", "order_ref"),
    ("formula-plus", TEMPLATES["crc"], _set("crc", 0, "person_id", "+cmd|' /C calc'!A0"), "rejected", "formula", "person_id"),
    ("formula-at", TEMPLATES["crc"], _set("crc", 0, "risk_band", "@SUM(1+1)"), "rejected", "formula", "risk_band"),
    ("formula-minus", TEMPLATES["crc"], _set("crc", 0, "order_type", "-2+3+cmd"), "rejected", "formula", "order_type"),
    ("utf16", TEMPLATES["crc"], _raw("crc", lambda b: b.decode().encode("utf-16")), "rejected", "not_utf8", None),
    ("latin1", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b"PX", "PÉ".encode("latin-1"), 1)), "rejected", "not_utf8", None),
    ("semicolons", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b",", b";")), "rejected", "wrong_separator", None),
    ("tabs", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b",", b"\t")), "rejected", "wrong_separator", None),
    ("empty-file", TEMPLATES["crc"], lambda g: b"", "rejected", "empty_file", None),
    ("header-only", TEMPLATES["crc"], _raw("crc", lambda b: b.split(b"\n")[0] + b"\n"), "rejected", "no_rows", None),
    ("blank-first-line", TEMPLATES["crc"], _raw("crc", lambda b: b"\n" + b), "rejected", "no_header", None),
    ("duplicate-header", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b"risk_band", b"sex", 1)), "rejected", "duplicate_column", None),
    ("ragged-row", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b"\n", b",surprise\n", 3).replace(b",surprise\n", b"\n", 1)), "rejected", "ragged_row", None),
    ("unbalanced-quote", TEMPLATES["crc"], _raw("crc", lambda b: b + b'CRC-E23000003,"E23000003,broken\n'), "rejected", "malformed_csv", None),
    ("binary-garbage", TEMPLATES["crc"], lambda g: bytes(range(256)) * 4, "rejected", "not_utf8", None),
    ("nul-bytes", TEMPLATES["crc"], _raw("crc", lambda b: b.replace(b"\n", b"\x00\n", 1)), "rejected", "binary", None),
    ("truncated-xlsx", TEMPLATES["health"], _raw("health", lambda b: b[: len(b) // 2]), "rejected", "not_xlsx", None),
    ("csv-named-xlsx", TEMPLATES["health"], _raw("crc", lambda b: b), "rejected", "not_xlsx", None),
    ("zip-bomb-xlsx", TEMPLATES["health"], _zip_bomb, "rejected", "unpacks_too_large", None),
    ("too-large", TEMPLATES["crc"], _raw("crc", lambda b: b + b"x" * (2 * 1024 * 1024)), "refused", "too_large", None),
    ("unknown-provider", "nobody-we-know_crc_caseload_2023-02.csv", _raw("crc", lambda b: b), "unrecognised", None, None),
    ("odd-characters-in-name", "northstar rehab_crc_caseload_2023-02.csv", _raw("crc", lambda b: b), "unrecognised", None, None),
    ("bad-month-in-name", "northstar-rehab_crc_caseload_2023-13.csv", _raw("crc", lambda b: b), "unrecognised", None, None),
    ("right-to-left-override-in-name", "northstar-rehab_crc_caseload_2023-02\u202ecsv.xlsx", _raw("crc", lambda b: b), "unrecognised", None, None),
    ("wrong-return-for-provider", "northstar-rehab_em_orders_2023-02.csv", _raw("em", lambda b: b), "rejected", "unknown_contract", "contract_id"),
]
REJECTED_CASES = [c for c in CASES if c[3] != "accepted"]
assert len(REJECTED_CASES) >= 40


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CJMONITOR_MAX_FILE_MB", "1")
    settings = get_settings(tmp_path / "home")
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=SEED, areas=AREAS, months=MONTHS))
    settings.ensure_dirs()
    return settings


def _db_state(settings) -> dict:
    with session_scope(settings) as session:
        state = {name: session.exec(select(func.count()).select_from(table)).one() for name, table in RECORD_TABLES.items()}
        state["current"] = sorted(session.exec(select(Submission.id).where(Submission.is_current)).all())
    return state


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_return(case, generated, home):
    _case_id, name, build, status, code, column = case
    data = build(generated)
    path = home.drop_dir / name
    path.write_bytes(data)
    os.utime(path, (datetime(2023, 3, 5, tzinfo=UTC).timestamp(),) * 2)
    before = _db_state(home)
    summary = pipeline.ingest(home)
    (outcome,) = summary.outcomes
    assert outcome["status"] == status, outcome
    assert outcome["message"], "every outcome says what happened"
    assert _db_state(home) == before, "no loaded data changes"
    archived = home.raw_archive_dir / hashlib.sha256(data).hexdigest()[:2]
    if status == "rejected":
        with session_scope(home) as session:
            issues = session.exec(select(ValidationIssue).where(ValidationIssue.submission_id == outcome["submission_id"])).all()
        matching = [i for i in issues if i.code == code and (column is None or i.column == column)]
        assert matching, [(i.code, i.column, i.message) for i in issues]
        assert all(len(i.message) > 25 for i in matching)
        assert archived.is_dir(), "the raw bytes are kept"
        report = (home.out_dir / "data-quality" / outcome["period"] / f"{name}.errors.csv").read_text()
        assert code in report
        for line in report.splitlines()[1:]:
            for cell in line.split(","):
                assert not cell.startswith(("=", "+", "@")), "error reports never carry a live formula"
    elif status == "refused":
        assert code in outcome["message"] or "MB" in outcome["message"]
    else:
        assert "<provider>_<return type>_<YYYY-MM>" in outcome["message"] or "not configured" in outcome["message"]


def test_extra_column_and_extra_sheet_load_with_warnings(generated, home):
    frame = _frame(generated, "crc")
    frame["internal_notes"] = "x"
    (home.drop_dir / TEMPLATES["crc"]).write_bytes(_csv(frame))
    (home.drop_dir / TEMPLATES["health"]).write_bytes(_two_sheets(generated))
    summary = pipeline.ingest(home)
    assert summary.accepted == 2
    with session_scope(home) as session:
        codes = {i.code for i in session.exec(select(ValidationIssue)).all()}
    assert codes == {"unknown_column", "extra_sheets"}


def test_excel_date_cells_and_bom_are_read_as_the_provider_meant(generated, home):
    (home.drop_dir / TEMPLATES["health"]).write_bytes(_xlsx_with_date_cells(generated))
    (home.drop_dir / TEMPLATES["crc"]).write_bytes(b"\xef\xbb\xbf" + (generated / TEMPLATES["crc"]).read_bytes())
    summary = pipeline.ingest(home)
    assert summary.accepted == 2, summary.outcomes


def test_kill_during_load_leaves_the_database_unchanged_and_the_next_run_loads(generated, home, monkeypatch):
    monkeypatch.setenv("CJMONITOR_MAX_FILE_MB", "200")
    frame = _frame(generated, "ttg")
    big = pd.concat([frame] * 400, ignore_index=True)
    big["episode_ref"] = [f"T{i:08d}" for i in range(len(big))]
    name = TEMPLATES["ttg"]
    (home.drop_dir / name).write_bytes(frame_bytes(big, "csv"))
    env = {**os.environ, "CJMONITOR_HOME": str(home.home), "CJMONITOR_MAX_FILE_MB": "200"}
    child = subprocess.Popen([sys.executable, "-m", "cjmonitor.cli", "ingest"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(home.raw_archive_dir.rglob("*.csv")):
        time.sleep(0.05)
    time.sleep(1.0)  # well into validation and the insert
    assert child.poll() is None, "the load finished before it could be interrupted; make the file bigger"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    with session_scope(home) as session:
        assert session.exec(select(func.count()).select_from(Submission)).one() == 0
        assert session.exec(select(func.count()).select_from(RECORD_TABLES["ttg_resettlement"])).one() == 0
    summary = pipeline.ingest(get_settings(home.home))
    assert summary.accepted == 1
    with session_scope(home) as session:
        assert session.exec(select(func.count()).select_from(RECORD_TABLES["ttg_resettlement"])).one() == len(big)
