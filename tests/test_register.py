"""The register: the one front door for reference data (issue #15).

A bad-register corpus (each case one change to tests/register_cases/base.yaml) must give a specific
message at the right line and leave the database as it was; export then apply changes nothing (YAML,
JSON and XLSX); a target changed in the register becomes a dated variation and earlier months keep
their old terms; removing a contract closes it and keeps its data.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.models import Contract, ContractVariation, Judgement, KpiValue, PaymentTerms, Recipient, Target
from contracts.register import RegisterError, check_file, export_register, parse_yaml_text, to_yaml, validate
from tests.db_checksums import table_checksums

CASES_DIR = Path(__file__).parent / "register_cases"
BASE = (CASES_DIR / "base.yaml").read_text()
EFFECTIVE = date(2026, 1, 1)
TTG = "DOR-TTG-2024"

WV = '  - {id: wessex-resettlement, name: "Wessex Resettlement Trust", kind: voluntary}'
# (case id, text in base.yaml, its replacement, a fragment the message must hold, whether the line is the changed one)
CASES = [
    ("office_area_unknown", "areas: [E23000039, E23000036]", "areas: [E23000039, E2300036]", "unknown area code 'E2300036'", True),
    ("contract_area_not_in_office", "    area: E23000039\n    provider: wessex", "    area: E23000005\n    provider: wessex",
     "is not one of office.areas", True),
    ("contract_area_unknown", "    area: E23000039\n    provider: wessex", "    area: X23000039\n    provider: wessex",
     "unknown area code 'X23000039'", True),
    ("provider_missing", "provider: wessex-resettlement", "provider: wessex-resettlment", "no provider 'wessex-resettlment'", True),
    ("framework_kpi_missing", "{code: ttg_plan_5wd,", "{code: ttg_plan_5d,", "no KPI 'ttg_plan_5d'", True),
    ("kpi_of_another_service", "{code: ttg_plan_5wd,", "{code: em_tag_24h,", "no KPI 'em_tag_24h'", True),
    ("declared_kpi_missing", "{code: wc_completed, target", "{code: wc_complete, target", "no KPI 'wc_complete'", True),
    ("target_85_for_0_85", "target: 0.80, tolerance: 0.05, min_volume: 10", "target: 80, tolerance: 0.05, min_volume: 10",
     "write 0.8 for 80%", True),
    ("tolerance_in_points", "target: 0.80, tolerance: 0.05, min_volume: 10", "target: 0.80, tolerance: 5, min_volume: 10",
     "write 0.05 for 5 points", True),
    ("service_credit_over_100", "service_credit_pct: 2.0}", "service_credit_pct: 150}", "between 0 and 100", True),
    ("negative_min_volume", "min_volume: 10,", "min_volume: -3,", "cannot be negative", True),
    ("end_before_start", "end: 2027-03-31", "end: 2023-03-31", "on or before it starts", True),
    ("duplicate_contract_id", "  - id: DOR-TTG-2024", "  - id: DOR-WC-2025", "duplicate id 'DOR-WC-2025'", True),
    ("duplicate_provider_id", WV, WV.replace("wessex-resettlement", "harbour-womens-centre"), "duplicate id 'harbour-womens-centre'", True),
    ("duplicate_kpi", "      - {code: ttg_settled_accommodation, target: 0.80", "      - {code: ttg_plan_5wd, target: 0.80",
     "listed twice", True),
    ("numerator_column_missing", "to: first_seen_date, days: 5", "to: first_seen, days: 5", "no column 'first_seen'", True),
    ("date_compared_with_text", "to: first_seen_date, days: 5", "to: outcome, days: 5", "'outcome' is a text column", True),
    ("unknown_key", "    annual_value_gbp: 950000", "    annual_value: 950000", "did you mean 'annual_value_gbp'", True),
    ("missing_key", '    name: "Through the gate: Dorset"\n', "", "'name' is required", False),
    ("impossible_date", "start: 2024-04-01", "start: 2024-13-01", "write a date as YYYY-MM-DD", True),
    ("start_mid_month", "start: 2024-04-01", "start: 2024-04-15", "starts on the first of a month", True),
    ("unknown_service", "    service: ttg", "    service: tgg", "unknown service 'tgg'", True),
    ("unknown_framework", "framework: crc_sch9_2014", "framework: crc_sch9", "unknown framework 'crc_sch9'", True),
    ("framework_without_service", "framework: crc_sch9_2014", "framework: ems_2014", "has no KPIs for service ttg", True),
    ("variation_before_start", "      - date: 2025-04-01", "      - date: 2024-01-01", "after the contract's start", True),
    ("variation_mid_month", "      - date: 2025-04-01", "      - date: 2025-04-15", "takes effect from the first of a month", True),
    ("variation_kind_unknown", "        kind: renegotiation", "        kind: renegotiate", "unknown kind 'renegotiate'", True),
    ("variation_kpi_unknown", "kpis: [{code: ttg_settled_accommodation, target: 0.85}]",
     "kpis: [{code: ttg_settled, target: 0.85}]", "no KPI 'ttg_settled'", True),
    ("variation_target_percent", "kpis: [{code: ttg_settled_accommodation, target: 0.85}]",
     "kpis: [{code: ttg_settled_accommodation, target: 85}]", "write 0.85 for 85%", True),
    ("recipient_scope_unknown", 'scopes: ["area:E23000039"]', 'scopes: ["contract:DOR-XX"]', "no contract 'DOR-XX'", True),
    ("recipient_email_bad", "email: commissioning@dorset-pcc.example.org", "email: commissioning-dorset", "not an email address", True),
    ("bad_yaml", "areas: [E23000039, E23000036]", "areas: [E23000039, E23000036", "not valid YAML", False),
    ("return_mode_wrong", "return_mode: person}", "return_mode: people}", "'person' or 'aggregate'", True),
    ("duplicate_yaml_key", "    return_due_day: 10\n", "    return_due_day: 10\n    return_due_day: 12\n", "given twice", False),
    ("provider_id_underscore", WV, WV.replace("wessex-resettlement", "wessex_resettlement"), "lower case letters", True),
    ("mapping_bad", WV, WV[:-1] + ", mappings: [{return_type: ttg_resettlement, header_row: 0}]}", "header's row number", True),
    # Conflicts with what the database holds (the base register is applied): found by apply, and by check with a database.
    ("start_changed_after_apply", "start: 2024-04-01", "start: 2024-05-01", "start cannot change", True),
    ("area_changed_after_apply", "    area: E23000039\n    provider: wessex", "    area: E23000036\n    provider: wessex",
     "area cannot change", True),
    ("variation_history_rewritten", "kpis: [{code: ttg_settled_accommodation, target: 0.85}]",
     "kpis: [{code: ttg_settled_accommodation, target: 0.87}]", "history is not rewritten", True),
]


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    home = tmp_path_factory.mktemp("office")
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    (home / "register.yaml").write_text(BASE)
    pipeline.apply_register_file(settings, home / "register.yaml", effective=EFFECTIVE)
    return settings


def test_the_base_register_is_valid_and_applies_once(office):
    again = pipeline.apply_register_file(office, office.home / "register.yaml", effective=EFFECTIVE)
    assert (again["added"], again["changed"], again["closed"]) == (0, 0, 0)
    with session_scope(office) as session:
        terms = [(t.valid_from, t.valid_to, t.value) for t in session.exec(select(Target).where(
            Target.contract_id == TTG, Target.measure_code == "ttg_settled_accommodation").order_by(Target.valid_from)).all()]
        plan = session.exec(select(Target).where(Target.contract_id == TTG, Target.measure_code == "ttg_plan_5wd")).one()
    assert terms == [(date(2024, 4, 1), date(2025, 3, 31), 0.80), (date(2025, 4, 1), None, 0.85)]
    # Keys left out take the framework's defaults (ttg_plan_5wd: 20 cases, 1% credit).
    assert (plan.value, plan.min_volume, plan.service_credit_pct) == (0.90, 20, 1.0)


@pytest.mark.parametrize(("old", "new", "fragment", "line_is_changed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_register_gets_a_specific_message_and_changes_nothing(office, tmp_path, old, new, fragment, line_is_changed):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    path = tmp_path / "register.yaml"
    path.write_text(text)
    before = table_checksums(office)
    with pytest.raises(RegisterError) as caught:
        pipeline.apply_register_file(office, path, effective=EFFECTIVE)
    assert table_checksums(office) == before, "a refused register must leave the database as it was"
    matching = [p for p in caught.value.problems if fragment in p.message]
    assert matching, f"no problem says {fragment!r}: {caught.value}"
    problem = matching[0]
    assert problem.where.startswith(f"{path}:")
    if line_is_changed:
        line = BASE[: BASE.index(old)].count("\n") + 1
        lines = {line + i for i in range(new.count("\n") + 1)}
        assert int(problem.where.rsplit(":", 1)[1]) in lines, f"{problem} should point at line(s) {sorted(lines)}"
    # `register check` (with the database) reports the same, and exits 1 with --json.
    result = CliRunner().invoke(cli, ["register", "check", str(path), "--home", str(office.home), "--json",
                                      "--effective", "2026-01"])
    assert result.exit_code == 1, result.output
    assert any(fragment in p["message"] for p in json.loads(result.output)["problems"])


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


def _export_apply(settings, tmp_path, form: str):
    runner = CliRunner()
    target = tmp_path / f"export.{form}"
    args = ["register", "export", "--home", str(settings.home)]
    args += ["--xlsx", str(target)] if form == "xlsx" else ["-o", str(target)] + (["--json"] if form == "json" else [])
    assert runner.invoke(cli, args).exit_code == 0
    before = table_checksums(settings)
    result = runner.invoke(cli, ["register", "apply", str(target), "--home", str(settings.home), "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.output)
    assert (diff["added"], diff["changed"], diff["closed"]) == (0, 0, 0), diff["changes"]
    assert table_checksums(settings) == before
    return target


@pytest.mark.parametrize("form", ["yaml", "json", "xlsx"])
def test_export_then_apply_changes_nothing(office, tmp_path, form):
    _export_apply(office, tmp_path, form)


def test_export_then_apply_changes_nothing_for_the_demo_world(tmp_path):
    from cjmonitor.demo import build_world, load_world

    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=2, areas=5, months=24))
    for form in ("yaml", "xlsx"):
        _export_apply(settings, tmp_path, form)
    with session_scope(settings) as session:
        first = export_register(session)
    with session_scope(settings) as session:
        assert export_register(session) == first
        assert len(first["contracts"]) == 20  # recipients: 2 per area and 1 per provider (the LCJB, sender of system measures, has none)
    assert len(first["recipients"]) == 5 * 2 + len([p for p in first["providers"] if p["id"] != "lcjb"])


def test_xlsx_errors_name_sheet_row_and_column(office, tmp_path):
    from openpyxl import load_workbook

    path = _export_apply(office, tmp_path, "xlsx")
    book = load_workbook(path)
    sheet = book["kpis"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index("code")].value == "ttg_plan_5wd":
            row[header.index("target")].value = 90
            bad_row = row[0].row
    book["contracts"].cell(row=3, column=1 + [c.value for c in book["contracts"][1]].index("provider"), value="nobody")
    book.save(path)
    with pytest.raises(RegisterError) as caught:
        check_file(path)
    text = str(caught.value)
    assert f"sheet kpis, row {bad_row}, column target" in text and "write 0.9 for 90%" in text
    assert "sheet contracts, row 3, column provider" in text and "no provider 'nobody'" in text


def test_a_changed_target_becomes_a_variation_and_earlier_months_keep_the_old_terms(tmp_path):
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    register = tmp_path / "register.yaml"
    register.write_text(BASE)
    pipeline.apply_register_file(settings, register, effective=EFFECTIVE)
    # 70 of 100 each month: against 0.90 (tolerance 0.05) Red; against a restated 0.70, Green.
    with session_scope(settings) as session:
        for period in ("2026-01", "2026-02", "2026-03"):
            session.add(KpiValue(contract_id=TTG, measure_code="ttg_plan_5wd", period=period, numerator=70,
                                 denominator=100, value=0.7, source="derived"))
    register.write_text(BASE.replace("{code: ttg_plan_5wd, target: 0.90,", "{code: ttg_plan_5wd, target: 0.70,"))
    dry = CliRunner().invoke(cli, ["register", "apply", str(register), "--home", str(tmp_path), "--effective", "2026-03",
                                   "--dry-run"])
    assert dry.exit_code == 0 and "target 0.9 -> 0.7" in dry.output and "dry run" in dry.output
    result = CliRunner().invoke(cli, ["register", "apply", str(register), "--home", str(tmp_path), "--effective", "2026-03"])
    assert result.exit_code == 0, result.output
    assert "~ kpi DOR-TTG-2024 ttg_plan_5wd: from 2026-03-01: target 0.9 -> 0.7" in result.output
    again = pipeline.apply_register_file(settings, register, effective=date(2026, 4, 1))
    assert (again["added"], again["changed"], again["closed"]) == (0, 0, 0)  # idempotent, even a month later
    shown = CliRunner().invoke(cli, ["targets", "--contract", TTG, "--home", str(tmp_path), "--json"])
    history = json.loads(shown.output)
    plan = [t for t in history["targets"] if t["measure_code"] == "ttg_plan_5wd"]
    assert [(t["valid_from"], t["valid_to"], t["target"]) for t in plan] == [
        ("2024-04-01", "2026-02-28", 0.9), ("2026-03-01", None, 0.7)]
    assert any(v["effective_date"] == "2026-03-01" and v["kind"] == "renegotiation" and v["measure_code"] == "ttg_plan_5wd"
               and "target 0.9 -> 0.7" in v["description"] for v in history["variations"])
    pipeline.judge(settings)
    with session_scope(settings) as session:
        judged = {j.period: (j.target, j.rag) for j in session.exec(select(Judgement).where(
            Judgement.contract_id == TTG, Judgement.measure_code == "ttg_plan_5wd")).all()}
    assert judged == {"2026-01": (0.9, "Red"), "2026-02": (0.9, "Red"), "2026-03": (0.7, "Green")}


def test_a_payment_term_change_and_a_removed_contract(tmp_path):
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    register = tmp_path / "register.yaml"
    register.write_text(BASE)
    pipeline.apply_register_file(settings, register, effective=EFFECTIVE)
    with session_scope(settings) as session:
        session.add(KpiValue(contract_id="DOR-WC-2025", measure_code="wc_completed", period="2025-06", numerator=6,
                             denominator=10, value=0.6, source="derived"))
    start = BASE.index("  - id: DOR-WC-2025")
    without_wc = BASE[:start] + BASE[BASE.index("  - id: DOR-TTG-2024"):]
    without_wc = without_wc.replace("payment: {service_credit_cap_pct: 8}", "payment: {service_credit_cap_pct: 5}")
    without_wc = without_wc.replace(', "contract:DOR-WC-2025"', "")
    register.write_text(without_wc)
    result = pipeline.apply_register_file(settings, register, effective=date(2026, 2, 1))
    kinds = {(c["action"], c["kind"], c["id"]) for c in result["changes"]}
    assert ("closed", "contract", "DOR-WC-2025") in kinds and ("changed", "payment", TTG) in kinds
    with session_scope(settings) as session:
        closed = session.get(Contract, "DOR-WC-2025")
        assert closed.closed_on == date(2026, 2, 1)
        assert session.exec(select(KpiValue).where(KpiValue.contract_id == "DOR-WC-2025")).all()  # its data stay
        caps = [(p.valid_from, p.service_credit_cap_pct) for p in session.exec(
            select(PaymentTerms).where(PaymentTerms.contract_id == TTG).order_by(PaymentTerms.valid_from)).all()]
        assert caps == [(date(2024, 4, 1), 8.0), (date(2026, 2, 1), 5.0)]
        assert session.exec(select(ContractVariation).where(ContractVariation.contract_id == TTG,
                                                            ContractVariation.effective_date == date(2026, 2, 1))).one()
        assert all(r.active for r in session.exec(select(Recipient)).all())
    again = pipeline.apply_register_file(settings, register, effective=date(2026, 3, 1))
    assert (again["added"], again["changed"], again["closed"]) == (0, 0, 0)
    # The export keeps the closed contract (closed_on) and the variation: applying it changes nothing.
    _export_apply(settings, tmp_path, "yaml")


def test_validation_alone_needs_no_database():
    checked = validate(parse_yaml_text(BASE, "base.yaml"))
    assert checked.kpi_codes[TTG] == ["ttg_plan_5wd", "ttg_settled_accommodation"]
    assert to_yaml({"a": date(2025, 4, 1)}) == "a: 2025-04-01\n"


def test_init_makes_an_empty_home_whose_template_is_valid(tmp_path):
    home = tmp_path / "office"
    result = CliRunner().invoke(cli, ["init", str(home)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in home.iterdir()) == ["README.txt", "register.yaml", "sources.toml", "var"]
    assert not any((home / "var" / "drop").iterdir())
    readme = (home / "README.txt").read_text()
    assert "register check" in readme and "register apply" in readme and "cjmonitor run" in readme
    checked_cli = CliRunner().invoke(cli, ["register", "check", str(home / "register.yaml"), "--home", str(home)])
    assert checked_cli.exit_code == 0 and "valid" in checked_cli.output
    assert not (home / "var" / "cjmonitor.db").exists()  # check writes nothing, not even an empty database
    checked = check_file(home / "register.yaml")
    assert list(checked.services) == ["womens_centre"] and checked.kpi_codes["DOR-WC-2025"] == ["wc_seen_5wd", "wc_completed"]
    again = CliRunner().invoke(cli, ["init", str(home)])
    assert again.exit_code == 2 and "--force" in again.output
    schema = json.loads(CliRunner().invoke(cli, ["register", "schema"]).output)
    assert set(schema["properties"]) == {"office", "providers", "services", "contracts", "recipients"}
    assert "ContractIn" in schema["$defs"] and "target" in schema["$defs"]["KpiTermsIn"]["properties"]


def test_areas_lists_the_42_codes():
    rows = json.loads(CliRunner().invoke(cli, ["areas", "--json"]).output)
    assert len(rows) == 42 and {"code": "E23000039", "name": "Dorset"}.items() <= next(
        r for r in rows if r["code"] == "E23000039").items()


def test_frameworks_json_lists_versioned_official_codes():
    result = CliRunner().invoke(cli, ["frameworks", "--json"])
    frameworks = {f["id"]: f for f in json.loads(result.output)}
    assert {"crc_sch9_2014", "ems_2014", "probation_sl_2021", "crs_2021", "health_justice"} <= set(frameworks)
    first_contact = [k for k in frameworks["crc_sch9_2014"]["kpis"] if k["code"] == "crc_first_contact_5wd"]
    assert [(k["official_code"], k["valid_from"], k["valid_to"]) for k in first_contact] == [
        ("CRC SCH9 SL001", "2015-02-01", "2017-03-31"), ("CRC SCH9 SL001R", "2017-04-01", "2021-06-25")]
    assert next(k for k in frameworks["ems_2014"]["kpis"] if k["code"] == "em_tag_24h")["official_code"] == "EMS SL004A"
    for framework in frameworks.values():
        assert set(framework) >= {"id", "name", "era", "kpis"}
        for kpi in framework["kpis"]:
            assert set(kpi) >= {"code", "official_code", "name", "service", "valid_from", "valid_to"}
            assert kpi["service"] in ("crc", "ttg", "em", "health") and kpi["source"] in ("primary", "secondary")


def test_a_contract_on_the_2021_framework_gets_its_kpis_derived(tmp_path):
    """A framework KPI beyond the built-ins (CRS 2021) is derived and judged for the contract that names it."""
    text = BASE.replace("framework: crc_sch9_2014", "framework: crs_2021").replace(
        "{code: ttg_plan_5wd, target: 0.90, tolerance: 0.05}", "{code: crs_ete_on_release, target: 0.20, tolerance: 0.05}").replace(
        "ttg_settled_accommodation", "crs_accommodation_settled")
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    (tmp_path / "r.yaml").write_text(text)
    pipeline.apply_register_file(settings, tmp_path / "r.yaml", effective=EFFECTIVE)
    with session_scope(settings) as session:
        codes = {t.measure_code for t in session.exec(select(Target).where(Target.contract_id == TTG)).all()}
    assert codes == {"crs_ete_on_release", "crs_accommodation_settled"}
    # Five releases in 2025-06 (3 settled, 1 in ETE), loaded as an accepted submission, then derive and judge.
    from datetime import UTC, datetime

    from contracts.models import Provider, Submission, TtgRecord

    with session_scope(settings) as session:
        assert session.get(Provider, "wessex-resettlement") is not None
        submission = Submission(provider_id="wessex-resettlement", return_type="ttg_resettlement", period="2025-06",
                                version=1, file_name="x.csv", source="test", sha256="0" * 64,
                                received_at=datetime(2025, 7, 5, tzinfo=UTC), status="accepted", is_current=True, rows=5)
        session.add(submission)
        session.flush()
        for i, (accommodation, ete) in enumerate([("settled", "Y"), ("settled", "N"), ("settled", "N"),
                                                  ("homeless", "N"), ("other", "N")]):
            session.add(TtgRecord(submission_id=submission.id, contract_id=TTG, area_code="E23000039", episode_ref=f"E{i}",
                                  person_key=f"k{i}", reception_date=date(2025, 1, 6), reception_period="2025-01",
                                  release_date=date(2025, 6, 10), release_period="2025-06",
                                  accommodation_first_night=accommodation, ete_on_release=ete, age_band="25-34", sex="M"))
    pipeline.derive(settings)
    pipeline.judge(settings)
    with session_scope(settings) as session:
        values = {(v.measure_code, v.period): (v.numerator, v.denominator) for v in session.exec(
            select(KpiValue).where(KpiValue.contract_id == TTG)).all()}
        judged = {j.measure_code: j.target for j in session.exec(select(Judgement).where(Judgement.contract_id == TTG)).all()}
    assert values[("crs_accommodation_settled", "2025-06")] == (3, 5)
    assert values[("crs_ete_on_release", "2025-06")] == (1, 5)
    assert judged == {"crs_accommodation_settled": 0.85, "crs_ete_on_release": 0.20}
