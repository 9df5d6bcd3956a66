"""A declared local service end to end: its return validated and stored, its KPIs derived and judged.

Hand counts are worked out in the comments beside the data. Bank holidays in the data: Good Friday
29 March 2024 and Easter Monday 1 April 2024 (England and Wales).
"""

from __future__ import annotations

import copy
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.catalogue import MEASURES
from contracts.declared import parse_service, save_services
from contracts.declared_kpis import median_interval, poisson_interval
from contracts.judge import judge_frame, spc_columns
from contracts.models import (
    Area,
    Contract,
    Judgement,
    KpiValue,
    Measure,
    Provider,
    Submission,
    Target,
    ValidationIssue,
)
from contracts.workdays import working_days
from tests.test_declared_spec import WOMENS_CENTRE

PROVIDER = "harbour-womens-centre"
WC = "DOR-WC-2025"
TTG = "DOR-TTG-2025"
AREA = "E23000039"

SERVICE = copy.deepcopy(WOMENS_CENTRE)
SERVICE["kpis"] += [
    {"code": "wc_days_to_seen", "name": "Median days from referral to first appointment", "direction": "lower",
     "median_days": {"from": "referral_date", "to": "first_seen_date"}},
    {"code": "wc_referrals", "name": "Referrals received", "direction": "higher", "volume": {"all": True}},
    {"code": "wc_not_disengaged", "name": "Not disengaged", "direction": "higher",
     "denominator": {"column_not_null": "outcome"},
     "numerator": {"not": {"or": [{"column_in": {"column": "outcome", "values": ["disengaged"]}},
                                  {"column_in": {"column": "outcome", "values": ["ongoing"]}}]}}},
]

# A TTG-shaped local service declaring the built-in ttg_plan_5wd's rule (receptions in the month with a
# resettlement plan within 5 working days), to compare with the built-in SQL on the same rows.
TTG_LIKE = {
    "id": "ttg_local", "name": "Resettlement (declared)",
    "return": {"type": "ttg_local_receptions", "period_column": "reception_date", "unique": ["episode_ref"],
               "columns": [{"name": "contract_id", "type": "text", "required": True},
                           {"name": "episode_ref", "type": "text", "required": True},
                           {"name": "person_id", "type": "person_key", "required": True},
                           {"name": "reception_date", "type": "date", "required": True},
                           {"name": "resettlement_plan_date", "type": "date", "not_before": "reception_date"}]},
    "kpis": [{"code": "ttgl_plan_5wd", "name": "Plan within 5 working days", "direction": "higher",
              "denominator": {"all": True},
              "numerator": {"within_working_days": {"from": "reception_date", "to": "resettlement_plan_date",
                                                    "days": 5}}}],
}

HEADER = "contract_id,person_id,referral_date,first_seen_date,outcome\n"
# working days (England and Wales) / calendar days from referral to first seen:
ROWS = [
    (WC, "P1", "2024-03-04", "2024-03-11", "completed"),   # Mon to Mon: 5 wd (met), 7 days
    (WC, "P2", "2024-03-04", "2024-03-12", "disengaged"),  # 6 wd (not met), 8 days
    (WC, "P3", "2024-03-27", "2024-04-05", "ongoing"),     # Wed 27, Thu 28, Tue 2, Wed 3, Thu 4: 5 wd (met); 9 days
    (WC, "P4", "2024-03-28", "2024-04-08", "completed"),   # Thu 28, Tue 2 .. Fri 5: 5 wd (met); 11 days
    (WC, "P5", "2024-03-28", "2024-04-09", "completed"),   # 6 wd (not met); 12 days
    (WC, "P6", "2024-03-15", "", "disengaged"),            # not seen: not met, no days
    (WC, "P7", "2024-03-20", "2024-03-20", ""),            # same day: 0 wd (met); 0 days
]
EXPECTED = {
    "wc_seen_5wd": (4, 7),          # P1, P3, P4, P7 (without bank holidays P3 and P4 would be 7 wd: 2 of 7)
    "wc_completed": (3, 5),         # completed P1, P4, P5 of completed or disengaged P1, P2, P4, P5, P6
    "wc_not_disengaged": (3, 6),    # outcome filled in P1-P6; neither disengaged nor ongoing: P1, P4, P5
    "wc_referrals": (7, 1),
    "wc_days_to_seen": (6, 7),      # 6 rows with both dates of 7
}


def _csv(rows, header=HEADER) -> str:
    return header + "".join(",".join(row) + "\n" for row in rows)


@pytest.fixture
def home(tmp_path):
    return _make_home(get_settings(tmp_path))


def _make_home(settings):
    pipeline.upgrade_db(settings)
    with session_scope(settings) as session:
        session.add(Area(code=AREA, name="Dorset", region="South West", commissioner_type="PCC", population_m=0.78))
        session.add(Provider(id=PROVIDER, name="Harbour Women's Centre CIC", kind="voluntary"))
        for m in MEASURES:  # the built-in catalogue, as the register's apply writes it
            session.add(Measure(code=m.code, service_type=m.service_type, name=m.name, definition=m.definition,
                                numerator=m.numerator, denominator=m.denominator, direction=m.direction,
                                unit=m.unit, sql_name=m.sql_name))
        session.flush()
        for contract_id, service in ((WC, "womens_centre"), (TTG, "ttg"), ("DOR-TTGL-2025", "ttg_local")):
            session.add(Contract(id=contract_id, area_code=AREA, provider_id=PROVIDER, service_type=service,
                                 name=contract_id, start_date=date(2024, 1, 1), end_date=date(2027, 12, 31),
                                 annual_value_gbp=420000))
        save_services(session, [parse_service(SERVICE), parse_service(TTG_LIKE, "services[1]")])
        session.flush()
        for code, value, tolerance in (("wc_seen_5wd", 0.85, 0.05), ("wc_completed", 0.6, 0.05),
                                       ("wc_not_disengaged", 0.5, 0.05), ("wc_days_to_seen", 10, 2),
                                       ("wc_referrals", 12, 3)):
            session.add(Target(contract_id=WC, measure_code=code, valid_from=date(2024, 1, 1), value=value,
                               tolerance=tolerance, min_volume=5))
    return settings


def _drop(settings, name: str, body: str):
    path = settings.home / name
    path.write_text(body)
    return pipeline.ingest(settings, paths=[path])


def test_working_days_skip_england_and_wales_bank_holidays():
    start = pd.Series(pd.to_datetime(["2024-03-28", "2024-03-28", "2024-12-24", "2023-05-05"]))
    end = pd.Series(pd.to_datetime(["2024-04-08", "2024-04-02", "2024-12-30", "2023-05-09"]))
    # Thu 28 Mar to Mon 8 Apr 2024: Thu 28, Tue 2, Wed 3, Thu 4, Fri 5 (Good Friday, Easter Monday off) = 5;
    # to Tue 2 Apr: Thu 28, Mon 1 is Easter Monday -> 1; Tue 24 Dec to Mon 30 Dec: Tue 24, Fri 27 = 2;
    # Fri 5 May 2023 to Tue 9 May: Mon 8 May 2023 was the coronation bank holiday -> Fri 5 = 1.
    assert working_days(start, end).tolist() == [5, 1, 2, 1]


def test_a_declared_return_loads_pseudonymised_and_its_kpis_equal_hand_counts(home):
    summary = _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(ROWS))
    assert summary.accepted == 1, summary.to_dict()
    pipeline.derive(home)
    with session_scope(home) as session:
        stored = session.execute(text("SELECT person_id, person_key, period, wd__first_seen_date__referral_date AS wd "
                                      "FROM declared_womens_referrals ORDER BY id")).mappings().all()
        values = {v.measure_code: v for v in session.exec(select(KpiValue).where(KpiValue.contract_id == WC)).all()}
    assert len(stored) == 7 and all(row["period"] == "2024-03" for row in stored)
    assert all(len(row["person_key"]) == 32 and row["person_key"] == row["person_id"] for row in stored)
    assert not {row["person_id"] for row in stored} & {"P1", "P2", "P3", "P4", "P5", "P6", "P7"}
    # stored as first_seen - referral with the sign of the pair (first_seen_date < referral_date by name)
    assert [row["wd"] for row in stored] == [-5, -6, -5, -5, -6, None, 0]
    for code, (numerator, denominator) in EXPECTED.items():
        assert (values[code].period, values[code].numerator, values[code].denominator) == (
            "2024-03", numerator, denominator), code
    assert values["wc_seen_5wd"].value == pytest.approx(4 / 7) and values["wc_seen_5wd"].kind == "proportion"
    median = values["wc_days_to_seen"]
    # days sorted 0, 7, 8, 9, 11, 12: median 8.5; n = 6 -> ranks 1 and 6 (P(Bin(6, .5) = 0) = 1/64 <= .025)
    assert (median.kind, median.value, median.ci_low, median.ci_high) == ("median", 8.5, 0, 12)
    volume = values["wc_referrals"]
    low, high = poisson_interval([7], [1])
    assert (volume.kind, volume.value) == ("count", 7) and (volume.ci_low, volume.ci_high) == pytest.approx((low[0], high[0]))

    pipeline.judge(home)
    with session_scope(home) as session:
        judged = {j.measure_code: j for j in session.exec(select(Judgement).where(Judgement.contract_id == WC)).all()}
    assert judged["wc_seen_5wd"].rag == "Red"  # 57% against 85% with 5 points of tolerance
    assert judged["wc_completed"].rag == "Green" and judged["wc_completed"].value == pytest.approx(0.6)
    # median 8.5 days against 10 (lower is better): green; interval 0..12 straddles 10: inconclusive
    assert (judged["wc_days_to_seen"].rag, judged["wc_days_to_seen"].verdict) == ("Green", "inconclusive")
    assert judged["wc_days_to_seen"].kind == "median"
    # 7 referrals against a contracted 12 (tolerance 3): red; Poisson 95% interval 2.8..14.4 holds 12: inconclusive
    assert (judged["wc_referrals"].rag, judged["wc_referrals"].verdict, judged["wc_referrals"].value) == (
        "Red", "inconclusive", 7)
    assert judged["wc_referrals"].ci_high == pytest.approx(14.42, abs=0.01)


def test_a_bad_declared_return_is_rejected_with_row_and_column_messages(home):
    rows = [
        (WC, "P1", "2024-03-04", "2024-03-01", "completed"),   # row 2: seen before referral (not_before)
        (WC, "P2", "04/03/2024", "", "disengaged"),            # row 3: not a YYYY-MM-DD date
        (WC, "P3", "2024-03-05", "", "complete"),              # row 4: not an allowed outcome
        (WC, "P3", "2024-03-05", "", "ongoing"),               # row 5: same person and referral date as row 4
        (WC, "", "2024-03-06", "", "ongoing"),                 # row 6: person_id required
        ("DOR-TTG-2025", "P9", "2024-03-06", "", "ongoing"),   # row 7: a TTG contract in a women's centre return
        (WC, "P8", "2024-02-27", "", "ongoing"),               # row 8: February in the March return
    ]
    summary = _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(rows))
    assert summary.rejected == 1
    with session_scope(home) as session:
        issues = {(i.row, i.column, i.code): i.message for i in session.exec(select(ValidationIssue)).all()}
        count = session.execute(text("SELECT COUNT(*) FROM declared_womens_referrals")).scalar_one()
    assert count == 0
    assert "'first_seen_date' is before 'referral_date'" in issues[(2, "first_seen_date", "date_order")]
    assert "must be a date written YYYY-MM-DD; found '04/03/2024'" in issues[(3, "referral_date", "bad_date")]
    assert "must be one of completed, disengaged, ongoing; found 'complete'" in issues[(4, "outcome", "not_allowed")]
    assert "same person_id and referral_date" in issues[(5, "person_id", "duplicate_key")]
    assert "'person_id' is required and is blank" in issues[(6, "person_id", "required")]
    assert "is not a womens_centre contract" in issues[(7, "contract_id", "wrong_service")]
    assert "move the row to the return for its own period" in issues[(8, "referral_date", "wrong_period")]


def test_a_declared_return_missing_a_column_is_told_the_template(home):
    summary = _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv",
                    "contract_id,person_id,referral_date\n" + f"{WC},P1,2024-03-04\n")
    assert summary.rejected == 1
    with session_scope(home) as session:
        issue = session.exec(select(ValidationIssue).where(ValidationIssue.code == "missing_column")).first()
    assert "the womens_referrals template has: contract_id, person_id, referral_date, first_seen_date, outcome" in issue.message


def test_an_undeclared_return_type_is_named(home):
    summary = _drop(home, f"{PROVIDER}_mens_referrals_2024-03.csv", _csv(ROWS))
    assert summary.unrecognised == 1
    assert "'mens_referrals' is neither a built-in return type" in summary.outcomes[0]["message"]


def test_declared_and_built_in_give_identical_values_for_the_same_rule(home):
    from tests.test_kpis import TTG_ROWS

    built_in = TTG_ROWS.format(c=TTG, a=AREA)
    _drop(home, f"{PROVIDER}_ttg_resettlement_2024-03.csv", built_in)
    # The same episodes received in March (the declared return holds the receptions only).
    frame = pd.read_csv(pd.io.common.StringIO(built_in), dtype=str, keep_default_na=False)
    march = frame[frame["reception_date"].str.startswith("2024-03")]
    declared = march.assign(contract_id="DOR-TTGL-2025")[
        ["contract_id", "episode_ref", "person_id", "reception_date", "resettlement_plan_date"]]
    summary = _drop(home, f"{PROVIDER}_ttg_local_receptions_2024-03.csv", declared.to_csv(index=False))
    assert summary.accepted == 1, summary.to_dict()
    pipeline.derive(home)
    with session_scope(home) as session:
        values = {(v.contract_id, v.measure_code): (v.period, v.numerator, v.denominator, v.value)
                  for v in session.exec(select(KpiValue)).all()}
    assert values[(TTG, "ttg_plan_5wd")] == ("2024-03", 1, 4, 0.25)
    assert values[("DOR-TTGL-2025", "ttgl_plan_5wd")] == values[(TTG, "ttg_plan_5wd")]


def test_a_sql_file_kpi_runs_from_the_home_with_the_same_bind_parameters(home):
    spec = copy.deepcopy(SERVICE)
    spec["kpis"].append({"code": "wc_seen_sql", "name": "Seen at all (analyst's SQL)", "direction": "higher",
                         "sql": "kpis/wc_seen.sql"})
    (home.home / "kpis").mkdir()
    (home.home / "kpis" / "wc_seen.sql").write_text(
        "SELECT r.contract_id, s.period, s.id AS submission_id,\n"
        "       SUM(CASE WHEN r.first_seen_date IS NOT NULL THEN 1 ELSE 0 END) AS numerator, COUNT(*) AS denominator\n"
        "FROM declared_womens_referrals r JOIN submission s ON s.id = r.submission_id\n"
        "WHERE s.is_current AND s.status = 'accepted' AND s.period BETWEEN :first_period AND :last_period\n"
        "GROUP BY r.contract_id, s.period, s.id\n")
    with session_scope(home) as session:
        save_services(session, [parse_service(spec)])
    _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(ROWS))
    pipeline.derive(home)
    with session_scope(home) as session:
        value = session.exec(select(KpiValue).where(KpiValue.measure_code == "wc_seen_sql")).one()
        assert session.exec(select(Submission)).one().status == "accepted"
    assert (value.numerator, value.denominator) == (6, 7)
    (home.home / "kpis" / "wc_seen.sql").unlink()
    from contracts.errors import DeclaredKpiError

    with pytest.raises(DeclaredKpiError, match="SQL file kpis/wc_seen.sql not found"):
        pipeline.derive(home)


def test_an_edited_sql_file_rederives_and_a_query_reading_other_months_is_refused(home):
    """Incremental derive (contracts.incremental): the analyst's SQL file is part of the KPI's definition, and a
    month may only be derived from its own returns (what makes skipping the unchanged months safe)."""
    spec = copy.deepcopy(SERVICE)
    spec["kpis"].append({"code": "wc_seen_sql", "name": "Seen at all (analyst's SQL)", "direction": "higher",
                         "sql": "kpis/wc_seen.sql"})
    sql = home.home / "kpis" / "wc_seen.sql"
    sql.parent.mkdir()
    query = ("SELECT r.contract_id, s.period, s.id AS submission_id,\n"
             "       SUM(CASE WHEN r.{column} IS NOT NULL THEN 1 ELSE 0 END) AS numerator, COUNT(*) AS denominator\n"
             "FROM declared_womens_referrals r JOIN submission s ON s.id = r.submission_id\n"
             "WHERE s.is_current AND s.status = 'accepted' AND s.period BETWEEN :first_period AND :last_period\n"
             "GROUP BY r.contract_id, s.period, s.id\n")
    sql.write_text(query.format(column="first_seen_date"))
    with session_scope(home) as session:
        save_services(session, [parse_service(spec)])
    _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(ROWS))
    april = [(WC, "P8", "2024-04-02", "", "ongoing")]
    assert _drop(home, f"{PROVIDER}_womens_referrals_2024-04.csv", _csv(april)).accepted == 1

    def seen():
        with session_scope(home) as session:
            return {v.period: (v.numerator, v.denominator) for v in session.exec(
                select(KpiValue).where(KpiValue.measure_code == "wc_seen_sql")).all()}

    assert pipeline.derive(home).computed == 2 and seen() == {"2024-03": (6, 7), "2024-04": (0, 1)}
    assert pipeline.derive(home).computed == 0
    sql.write_text(query.format(column="outcome"))  # the analyst changes the rule: every month is derived again
    counts = pipeline.derive(home)
    assert (counts.computed, counts.skipped) == (2, 0) and seen() == {"2024-03": (6, 7), "2024-04": (1, 1)}
    # A query that counts March's returns into April would make April depend on March: refused, nothing written.
    sql.write_text("SELECT r.contract_id, :last_period AS period, s.id AS submission_id, COUNT(*) AS numerator,\n"
                   "       COUNT(*) AS denominator\n"
                   "FROM declared_womens_referrals r JOIN submission s ON s.id = r.submission_id\n"
                   "WHERE s.is_current AND s.status = 'accepted' AND s.period BETWEEN :first_period AND :last_period\n"
                   "GROUP BY r.contract_id, s.id\n")
    from contracts.errors import DeclaredKpiError

    with pytest.raises(DeclaredKpiError, match="which are not current accepted returns of 2024-04"):
        pipeline.derive(home)
    assert seen() == {"2024-03": (6, 7), "2024-04": (1, 1)}


def test_median_interval_by_order_statistics():
    # n = 20 at 95%: ranks 6 and 15 (P(Bin(20, .5) <= 5) = 0.0207 <= 0.025 < P(<= 6) = 0.0577), Conover table A3
    x = np.arange(1, 21, dtype=float) * 2
    assert median_interval(x) == (21.0, 12.0, 30.0)
    # too few for a distribution-free 95% interval
    median, low, high = median_interval([3, 1, 2, 5, 4])
    assert median == 3 and np.isnan(low) and np.isnan(high)
    # coverage over repeated samples from a skewed distribution with a known median (exponential: ln 2)
    rng = np.random.default_rng(5)
    covered = [low <= np.log(2) <= high for low, high in
               (median_interval(rng.exponential(size=25))[1:] for _ in range(2000))]
    assert 0.95 <= np.mean(covered) <= 0.99  # exact coverage for n = 25 is 0.9567


def test_median_interval_agrees_with_a_bootstrap():
    rng = np.random.default_rng(11)
    days = rng.gamma(2.0, 4.0, size=400).round()
    median, low, high = median_interval(days)
    boot = np.median(rng.choice(days, size=(4000, days.size), replace=True), axis=1)
    b_low, b_high = np.percentile(boot, [2.5, 97.5])
    assert median == np.median(days)
    assert abs(low - b_low) <= 1 and abs(high - b_high) <= 1


def test_poisson_interval_matches_published_exact_limits():
    low, high = poisson_interval([0, 100, 120], [1, 1, 1])
    # Garwood (1936) exact limits: 0 -> (0, 3.689); 100 -> (81.36, 121.63)
    assert low[0] == 0 and high[0] == pytest.approx(3.689, abs=1e-3)
    assert (low[1], high[1]) == pytest.approx((81.36, 121.63), abs=0.01)
    # a quarter of 3 months with 360 starts: rate 120 a month, interval a third of that for 360
    q_low, q_high = poisson_interval([360], [3])
    one_low, one_high = poisson_interval([360], [1])
    assert (q_low[0], q_high[0]) == pytest.approx((one_low[0] / 3, one_high[0] / 3))


def test_volume_series_are_judged_on_an_xmr_chart():
    rng = np.random.default_rng(3)
    counts = np.concatenate([rng.poisson(120, 18), rng.poisson(80, 8)]).astype(float)  # starts fall from month 19
    periods = [str(p) for p in pd.period_range("2023-01", periods=len(counts), freq="M")]
    frame = pd.DataFrame({"contract_id": WC, "measure_code": "wc_referrals", "period": periods,
                          "numerator": counts, "denominator": 1.0, "kind": "count", "target": 120.0,
                          "tolerance": 12.0, "min_volume": 20, "direction": "higher"})
    judged = spc_columns(judge_frame(frame, 0.05))
    assert (judged["verdict"].iloc[:18] != "insufficient volume").all()
    assert judged["value"].tolist() == counts.tolist()
    late = judged.iloc[18:]
    assert (late["spc_variation"] == "special cause concerning").sum() >= 6
    assert not (judged.iloc[:12]["spc_variation"] == "special cause concerning").any()
    assert (late["verdict"] == "not met").all()  # 80 a month: the whole Poisson interval lies below 120


def test_specs_cover_the_declared_return_and_its_kpis(home, tmp_path):
    import json

    from click.testing import CliRunner

    from cjmonitor.cli import cli

    out = tmp_path / "specs"
    result = CliRunner().invoke(cli, ["specs", "--home", str(home.home), "--write", str(out)])
    assert result.exit_code == 0, result.output
    columns = ["contract_id", "person_id", "referral_date", "first_seen_date", "outcome"]
    assert (out / "womens_referrals_template.csv").read_text().strip().split(",") == columns
    assert list(pd.read_excel(out / "womens_referrals_template.xlsx", sheet_name="return").columns) == columns
    html = (out / "womens_referrals.html").read_text()
    assert "<code>wc_seen_5wd</code>" in html and "first_seen_date within 5 working days of referral_date" in html
    assert "replaced by a keyed hash when loaded" in html and "first_seen_date is not before referral_date." in html
    assert "womens_referrals.html" in (out / "index.html").read_text()
    assert "| `wc_days_to_seen` | Median days from referral to first appointment | median days | lower |" in (
        out / "womens_referrals.md").read_text()
    result = CliRunner().invoke(cli, ["specs", "womens_referrals", "--home", str(home.home), "--json"])
    assert result.exit_code == 0, result.output
    (spec,) = json.loads(result.output)
    assert spec["key"] == ["person_id", "referral_date"] and [k["code"] for k in spec["kpis"]][:2] == [
        "wc_seen_5wd", "wc_completed"]
    # A home without a database lists only the built-in returns.
    result = CliRunner().invoke(cli, ["specs", "--home", str(tmp_path / "empty"), "--json"])
    assert [s["return_type"] for s in json.loads(result.output)][-1] == "kpi_aggregate"


def test_a_declared_contract_shows_on_its_scorecard_monthly_report_pack_and_credits(home):
    from contracts.credits import monthly_credits
    from reports import evidence, monthly_report
    from reports.scorecard import render_scorecard

    _drop(home, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(ROWS))
    pipeline.derive(home)
    pipeline.judge(home)
    from contracts.catalogue import MEASURES_BY_CODE

    for code in EXPECTED:  # a fresh process knows only the built-in KPIs until the views load the declared ones
        MEASURES_BY_CODE.pop(code, None)
    with session_scope(home) as session:
        target = session.exec(select(Target).where(Target.measure_code == "wc_seen_5wd")).one()
        target.service_credit_pct = 1.0
    with session_scope(home) as session:
        path = render_scorecard(session, home.out_dir, WC, "2024-03", alpha=0.05, code_version="test", formats=("html",))
        credits = {line["measure"]: line for line in monthly_credits(session, session.get(Contract, WC), "2024-03")}
        report = monthly_report.gather(session, AREA, "2024-03", 0.05)
        pack = evidence.gather(session, WC, "2024-03", 0.05)
    html = path.read_text()
    assert "Seen within 5 working days of referral" in html and "57.1%" in html  # 4 of 7
    assert "8.5 days" in html and "10.0 days or less" in html and "0.0 days to 12.0 days" in html
    assert "Referrals received" in html and ">7<" in html.replace(" ", "")
    assert credits["wc_seen_5wd"]["rag"] == "Red" and credits["wc_seen_5wd"]["amount"] == round(420000 / 12 * 0.01, 2)
    assert "Seen within 5 working days of referral" in str(report)
    names = {k["code"]: k for k in pack["kpis"]}
    assert names["wc_days_to_seen"]["pooled_value"] is None and names["wc_referrals"]["pooled_value"] == 7


@pytest.mark.postgres
def test_declared_returns_and_kpis_on_postgres(tmp_path):
    import dataclasses
    import os
    import uuid

    from sqlalchemy import create_engine

    url = os.environ.get("CJMONITOR_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CJMONITOR_REQUIRE_POSTGRES") == "1":
            pytest.fail("CJMONITOR_REQUIRE_POSTGRES=1 but CJMONITOR_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server: set CJMONITOR_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"cj_declared_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        settings = _make_home(dataclasses.replace(get_settings(tmp_path), database_url=url.rsplit("/", 1)[0] + "/" + name))
        assert _drop(settings, f"{PROVIDER}_womens_referrals_2024-03.csv", _csv(ROWS)).accepted == 1
        wider = copy.deepcopy(SERVICE)
        wider["return"]["columns"].append({"name": "closed_date", "type": "date"})
        with session_scope(settings) as session:  # widening the spec adds columns to the populated table
            save_services(session, [parse_service(wider)])
        pipeline.derive(settings)
        pipeline.judge(settings)
        with session_scope(settings) as session:
            values = {v.measure_code: v for v in session.exec(select(KpiValue).where(KpiValue.contract_id == WC)).all()}
            judged = {j.measure_code: j for j in session.exec(select(Judgement).where(Judgement.contract_id == WC)).all()}
        for code, (numerator, denominator) in EXPECTED.items():
            assert (values[code].numerator, values[code].denominator) == (numerator, denominator), code
        assert (values["wc_days_to_seen"].value, values["wc_days_to_seen"].ci_high) == (8.5, 12)
        assert judged["wc_referrals"].kind == "count" and judged["wc_seen_5wd"].rag == "Red"
    finally:
        from cjmonitor.db import dispose_engines

        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rolling_windows_pool_volumes_and_leave_medians_out():
    from contracts.judge import rolling_judgements

    periods = ["2024-01", "2024-02", "2024-03"]
    monthly = pd.DataFrame({
        "contract_id": WC, "period": periods * 2, "measure_code": ["wc_referrals"] * 3 + ["wc_days_to_seen"] * 3,
        "numerator": [100.0, 110.0, 150.0, 30, 40, 50], "denominator": [1.0, 1.0, 1.0, 35, 45, 55],
        "kind": ["count"] * 3 + ["median"] * 3, "target": [120.0] * 3 + [10.0] * 3, "tolerance": [12.0] * 3 + [2.0] * 3,
        "min_volume": 20, "direction": ["higher"] * 3 + ["lower"] * 3})
    rolled = rolling_judgements(monthly, "2024-03", 0.05, {"quarter": 3})
    assert list(rolled["measure_code"]) == ["wc_referrals"]
    (row,) = rolled.to_dict("records")
    low, high = poisson_interval([360], [3])
    assert (row["value"], row["rag"]) == (120.0, "Green")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low[0], high[0]))
    assert row["verdict"] == "inconclusive"


def test_every_column_type_is_checked_and_stored(home):
    service = {
        "id": "iom", "name": "Integrated offender management",
        "return": {"type": "iom_cohort", "period_column": "joined_date", "unique": ["case_ref"],
                   "columns": [{"name": "contract_id", "type": "text", "required": True},
                               {"name": "case_ref", "type": "text", "required": True},
                               {"name": "person_id", "type": "person_key", "required": True},
                               {"name": "joined_date", "type": "date", "required": True},
                               {"name": "first_contact_at", "type": "datetime"},
                               {"name": "contacts", "type": "int", "min": 0, "max": 100},
                               {"name": "risk_score", "type": "float", "min": 0, "max": 1},
                               {"name": "housed", "type": "yn"}]},
        "kpis": [{"code": "iom_housed", "name": "Housed", "direction": "higher", "denominator": {"all": True},
                  "numerator": {"column_in": {"column": "housed", "values": ["Y"]}}}],
    }
    with session_scope(home) as session:
        session.add(Contract(id="DOR-IOM", area_code=AREA, provider_id=PROVIDER, service_type="iom", name="IOM",
                             start_date=date(2024, 1, 1), end_date=date(2027, 12, 31), annual_value_gbp=1))
        save_services(session, [parse_service(service)])
    header = "contract_id,case_ref,person_id,joined_date,first_contact_at,contacts,risk_score,housed\n"
    bad = header + "DOR-IOM,C1,P1,2024-03-01,2024-03-02,2.5,1.5,yes\n"
    assert _drop(home, f"{PROVIDER}_iom_cohort_2024-03.csv", bad).rejected == 1
    with session_scope(home) as session:
        codes = {(i.column, i.code) for i in session.exec(select(ValidationIssue)).all()}
    assert codes == {("first_contact_at", "bad_datetime"), ("contacts", "not_a_number"),
                     ("risk_score", "out_of_range"), ("housed", "not_allowed")}
    good = header + "DOR-IOM,C1,P1,2024-03-01,2024-03-02 09:30,3,0.25,Y\nDOR-IOM,C2,P2,2024-03-04,,,,N\n"
    assert _drop(home, f"{PROVIDER}_iom_cohort_2024-03_v2.csv", good).accepted == 1
    pipeline.derive(home)
    with session_scope(home) as session:
        rows = session.execute(text("SELECT first_contact_at, contacts, risk_score, housed FROM declared_iom_cohort "
                                    "ORDER BY case_ref")).all()
        value = session.exec(select(KpiValue).where(KpiValue.measure_code == "iom_housed")).one()
    assert str(rows[0][0]).startswith("2024-03-02 09:30") and rows[0][1:] == (3, 0.25, "Y")
    assert rows[1] == (None, None, None, "N")
    assert (value.numerator, value.denominator) == (1, 2)
