"""Funnel data, breakdowns with disproportionality ratios, the value view and the equality-monitoring fields."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.benchmark import breakdowns, funnel
from contracts.models import CrcRecord, Finding, KpiValue, Submission, ValidationIssue
from contracts.value import value_view
from outcomes.proportions import funnel_limits, rate_ratio

CRC, AREA = "CRC-E23000005", "E23000005"

# Orders ending in March 2024 (v2 columns): completed E1, E3, E5 of E1-E6.
#   care leavers E1 (completed), E2 (breach), E4 (breach) -> 1/3; not care leavers E3, E5 completed, E6 unknown flag
#   ethnicity: Black E1, E2; White E3, E4, E5; blank E6 -> Not known
CRC_V2 = """contract_id,area_code,order_ref,person_id,order_type,start_date,first_appointment_date,sentence_plan_date,upw_hours_ordered,upw_hours_delivered,end_date,outcome,age_band,sex,risk_band,ethnicity_group,care_leaver
{c},{a},E1,P5,CO,2023-05-01,2023-05-02,2023-05-10,,,2024-03-15,completed,18-20,M,low,Black,Y
{c},{a},E2,P6,SSO,2023-06-01,2023-06-02,2023-06-10,,,2024-03-16,revoked_breach,21-24,M,low,Black,Y
{c},{a},E3,P7,LICENCE,2023-07-01,2023-07-03,2023-07-10,,,2024-03-17,completed,25-34,M,low,White,N
{c},{a},E4,P8,LICENCE,2023-08-01,2023-08-02,2023-08-10,,,2024-03-18,revoked_breach,21-24,F,low,White,Y
{c},{a},E5,P9,LICENCE,2023-09-01,2023-09-04,2023-09-10,,,2024-03-19,completed,35-49,M,low,White,N
{c},{a},E6,P10,CO,2023-09-01,2023-09-04,2023-09-10,,,2024-03-20,revoked_reoffence,50+,F,low,,
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    settings = get_settings(tmp_path_factory.mktemp("breakdown"))
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    settings.ensure_dirs()
    (settings.drop_dir / "northstar-rehab_crc_caseload_2024-03.csv").write_text(CRC_V2.format(c=CRC, a=AREA))
    summary = pipeline.ingest(settings)
    assert summary.accepted == 1, summary.outcomes
    pipeline.derive(settings)
    return settings


def test_equality_fields_are_stored_and_blank_means_not_known(small):
    with session_scope(small) as session:
        rows = {r.order_ref: r for r in session.exec(select(CrcRecord)).all()}
    assert rows["E1"].ethnicity_group == "Black" and rows["E1"].care_leaver is True
    assert rows["E3"].care_leaver is False and rows["E6"].ethnicity_group is None and rows["E6"].care_leaver is None


def test_breakdown_matches_the_hand_count(small):
    with session_scope(small) as session:
        table = breakdowns(session, "crc_orders_completed", "2024-03", alpha=0.05, months=1)
    rows = {(r.dimension, r.group): r for r in table.itertuples()}
    assert (rows[("care_leaver", "Care leaver")].numerator, rows[("care_leaver", "Care leaver")].denominator) == (1, 3)
    assert (rows[("care_leaver", "Not a care leaver")].numerator, rows[("care_leaver", "Not a care leaver")].denominator) == (2, 2)
    assert rows[("care_leaver", "Not known")].denominator == 1
    assert (rows[("ethnicity_group", "White")].numerator, rows[("ethnicity_group", "White")].denominator) == (2, 3)
    assert rows[("ethnicity_group", "Not known")].denominator == 1
    young = rows[("young_adult", "18-24 (young adult)")]  # E1 completed, E2 and E4 breach
    assert (young.numerator, young.denominator) == (1, 3)
    # Ratio against everyone else: care leavers 1/3 against the other 3 orders' 2/3 = 0.5.
    assert rows[("care_leaver", "Care leaver")].ratio == pytest.approx((1 / 3) / (2 / 3))
    # Each dimension's groups add up to the KPI's numerator and denominator for the month.
    with session_scope(small) as session:
        kpi = session.exec(select(KpiValue).where(KpiValue.contract_id == CRC, KpiValue.period == "2024-03",
                                                  KpiValue.measure_code == "crc_orders_completed")).one()
    for dimension, group in table.groupby("dimension"):
        assert (group["numerator"].sum(), group["denominator"].sum()) == (kpi.numerator, kpi.denominator), dimension


def test_rate_ratio_and_funnel_limits_by_hand():
    ratio, low, high = rate_ratio([30], [100], [20], [100], 0.05)
    se = math.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 100)
    assert ratio[0] == pytest.approx(1.5) and low[0] == pytest.approx(1.5 * math.exp(-1.959964 * se), rel=1e-6)
    assert high[0] == pytest.approx(1.5 * math.exp(1.959964 * se), rel=1e-6)
    zero, zlow, zhigh = rate_ratio([0], [10], [5], [10], 0.05)  # Haldane: 0.5/10.5 over 5.5/10.5
    assert zero[0] == pytest.approx(0.5 / 5.5) and 0 < zlow[0] < zhigh[0] < 1.5
    low95, high95 = funnel_limits(0.8, [100, 400], 0.05)
    assert low95 == pytest.approx([0.8 - 1.959964 * 0.04, 0.8 - 1.959964 * 0.02], rel=1e-6)
    low998, high998 = funnel_limits(0.8, [100], 0.002)
    assert high998[0] == pytest.approx(0.8 + 3.090232 * 0.04, rel=1e-6) and high998[0] > high95[0]


def test_funnel_flags_the_persistently_failing_provider(demo_settings, demo_summary):
    measure = demo_summary["failing_measure"]
    with session_scope(demo_settings) as session:
        frame = funnel(session, measure, "2025-12")
        values = session.exec(select(KpiValue).where(KpiValue.measure_code == measure, KpiValue.period >= "2025-01",
                                                     KpiValue.period <= "2025-12")).all()
    pooled = pd.DataFrame([v.model_dump() for v in values]).groupby("contract_id")[["numerator", "denominator"]].sum()
    national = pooled["numerator"].sum() / pooled["denominator"].sum()
    assert frame["national"].iloc[0] == pytest.approx(national)
    row = frame.set_index("contract_id")
    for contract_id in demo_summary["failing_contracts"]:
        assert row.loc[contract_id, "numerator"] == pooled.loc[contract_id, "numerator"]
        assert row.loc[contract_id, "position"] == "below the 99.8% limits"
        assert row.loc[contract_id, "assessment"] == "worse than expected"
    half = 3.090232 * np.sqrt(national * (1 - national) / frame["denominator"])
    assert np.allclose(frame["high_99_8"], np.clip(national + half, 0, 1), rtol=1e-6)


def test_demo_care_leavers_complete_less_often_and_ethnic_groups_do_not_differ(demo_settings, demo_summary):
    effect = demo_summary["breakdown_effects"][0]
    with session_scope(demo_settings) as session:
        table = breakdowns(session, effect["measure"], "2025-12", alpha=0.05, months=36)
    rows = {(r.dimension, r.group): r for r in table.itertuples()}
    leavers = rows[("care_leaver", "Care leaver")]
    overall = table[table["dimension"] == "sex"][["numerator", "denominator"]].sum()
    overall_rate = overall["numerator"] / overall["denominator"]
    se = math.sqrt(leavers.rate * (1 - leavers.rate) / leavers.denominator)
    # Injected: care leavers complete 10 points less often than the contract-month rate.
    assert abs((leavers.rate - overall_rate) - effect["difference"]) < 3 * se
    assert leavers.ratio_high < 1 and "worse" in leavers.reading
    for group in ("Asian", "Black", "Mixed", "White"):  # no ethnic difference was injected
        assert rows[("ethnicity_group", group)].ratio_low < 1 < rows[("ethnicity_group", group)].ratio_high


def test_value_view_by_hand(small):
    with session_scope(small) as session:
        for contract_id, estimate, low, high, matched in ((CRC, -0.2, -0.3, -0.1, 500), ("CRC-E23000014", 0.1, -0.1, 0.3, 100)):
            session.add(Finding(contract_id=contract_id, area_code=AREA, measure_code="reo_frequency_12m", cohort="2023-01",
                                method="psm_nn_1to5_replacement", estimate=estimate, ci_low=low, ci_high=high,
                                alpha=0.05, verdict="x", parameters=json.dumps({"n_matched": matched}), input_hash="h",
                                created_at=datetime.now(UTC)))
    with session_scope(small) as session:
        view = value_view(session, unit_cost_gbp=2000.0)
        only = value_view(session, unit_cost_gbp=2000.0, contract_id=CRC)
    lines = {line["contract_id"]: line for line in view["lines"]}
    # 0.2 x 500 = 100 reoffences avoided (50 to 150) x £2,000 = £200,000 (£100,000 to £300,000).
    assert lines[CRC]["reoffences_avoided"] == {"estimate": 100.0, "low": 50.0, "high": 150.0}
    assert lines[CRC]["value_gbp"] == {"estimate": 200_000.0, "low": 100_000.0, "high": 300_000.0}
    assert "may have avoided none" in lines["CRC-E23000014"]["sentence"]  # -10 (-30 to +10)
    # Total: 100 - 10 = 90; se = sqrt((50/1.96)^2 + (20/1.96)^2).
    se = math.sqrt((50 / 1.959964) ** 2 + (20 / 1.959964) ** 2)
    assert view["total"]["reoffences_avoided"]["estimate"] == 90.0
    assert view["total"]["reoffences_avoided"]["high"] == pytest.approx(90 + 1.959964 * se, abs=0.1)
    assert [line["contract_id"] for line in only["lines"]] == [CRC] and "Not a cash saving" in view["label"]


def test_demo_frequency_finding_covers_the_injected_effect(demo_settings, demo_summary):
    effect = demo_summary["reoffending_effects"][0]
    with session_scope(demo_settings) as session:
        finding = session.exec(select(Finding).where(Finding.contract_id == effect["contract_id"],
                                                     Finding.measure_code == "reo_frequency_12m")).one()
    assert finding.ci_low <= effect["frequency_att"] <= finding.ci_high
    parameters = json.loads(finding.parameters)
    assert parameters["n_matched"] > 100 and "proven reoffences were committed within a year" in parameters["headline"]
    assert parameters["headline"].startswith("For 100 typical people in the treatment group")


def test_commands(demo_home, demo_summary):
    runner = CliRunner()
    home = ["--home", str(demo_home)]
    result = runner.invoke(cli, ["funnel", *home, "--measure", demo_summary["failing_measure"], "--period", "2025-12", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {a["contract_id"] for a in data["areas"] if a["assessment"] == "worse than expected"} >= set(demo_summary["failing_contracts"])
    result = runner.invoke(cli, ["breakdowns", *home, "--measure", "crc_orders_completed", "--period", "2025-12"])
    assert result.exit_code == 0 and "Care leaver" in result.output and "Young adults" in result.output
    result = runner.invoke(cli, ["value", *home, "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["lines"]
    bad = runner.invoke(cli, ["breakdowns", *home, "--measure", "em_tag_24h", "--period", "2025-12"])
    assert bad.exit_code == 2 and "has no person-level breakdown" in bad.output
    bad = runner.invoke(cli, ["funnel", *home, "--measure", "nope", "--period", "2025-12"])
    assert bad.exit_code == 2 and "no measure 'nope'" in bad.output


def test_a_bad_ethnicity_value_names_row_and_column(tmp_path):
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    settings.ensure_dirs()
    bad = CRC_V2.format(c=CRC, a=AREA).replace(",White,N\n", ",white british,N\n", 1)
    (settings.drop_dir / "northstar-rehab_crc_caseload_2024-03.csv").write_text(bad)
    summary = pipeline.ingest(settings)
    assert summary.rejected == 1
    with session_scope(settings) as session:
        assert session.exec(select(Submission)).one().status == "rejected"
        assert not session.exec(select(CrcRecord)).all()
        issue = session.exec(select(ValidationIssue)).one()
    # E3 is the fourth line of the file: row 4 as the provider sees it in a spreadsheet.
    assert (issue.row, issue.column, issue.code) == (4, "ethnicity_group", "not_allowed")
    assert "must be one of Asian, Black, Mixed, White, Other, Not stated; found 'white british'" in issue.message
