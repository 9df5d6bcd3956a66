"""Service credits (with the quarterly cap) and payment by results, on worked examples and on the demo."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import delete
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.credits import statement, statements
from contracts.models import Finding, Judgement, PaymentTerms

TTG, CRC = "TTG-E23000005", "CRC-E23000005"  # Greater Manchester: TTG fee £3,480,000 a year = £290,000 a month


@pytest.fixture
def settings(tmp_path):
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    return settings


def _judge(session, month, measure, rag, verdict="not met", denominator=100):
    session.add(Judgement(contract_id=TTG, measure_code=measure, period=month, value=0.5, numerator=50,
                          denominator=denominator, target=0.85, tolerance=0.05, rag=rag, alpha=0.05, verdict=verdict))


def test_service_credits_and_the_quarterly_cap(settings):
    with session_scope(settings) as session:
        terms = session.exec(select(PaymentTerms).where(PaymentTerms.contract_id == TTG)).one()
        terms.service_credit_cap_pct = 1.5  # 1.5% of the quarter's £870,000 = £13,050
        # January: accommodation Red (2% = £5,800) and plan Red (1% = £2,900) -> £8,700, all applied.
        _judge(session, "2024-01", "ttg_settled_accommodation", "Red")
        _judge(session, "2024-01", "ttg_plan_5wd", "Red")
        _judge(session, "2024-01", "ttg_ete_on_release", "Amber", "inconclusive")
        # February: accommodation Red £5,800; plan Red but below the minimum volume -> nothing.
        # Only £13,050 - £8,700 = £4,350 of the cap is left.
        _judge(session, "2024-02", "ttg_settled_accommodation", "Red")
        _judge(session, "2024-02", "ttg_plan_5wd", "Red", "insufficient volume", denominator=12)
        # March: accommodation Red £5,800, but the cap is used up.
        _judge(session, "2024-03", "ttg_settled_accommodation", "Red")
        # April starts a new quarter.
        _judge(session, "2024-04", "ttg_settled_accommodation", "Red")
    with session_scope(settings) as session:
        jan, feb, mar, apr = (statement(session, TTG, m).to_dict() for m in ("2024-01", "2024-02", "2024-03", "2024-04"))
    assert jan["monthly_fee_gbp"] == 290_000
    assert jan["service_credits"]["total"] == 8_700
    amounts = {line["measure"]: line["amount"] for line in jan["service_credits"]["lines"]}
    assert amounts == {"ttg_settled_accommodation": 5_800, "ttg_plan_5wd": 2_900, "ttg_ete_on_release": 0}
    assert feb["service_credits"]["cap"]["due_this_month_before_cap"] == 5_800
    assert feb["service_credits"]["total"] == 4_350
    plan = next(line for line in feb["service_credits"]["lines"] if line["measure"] == "ttg_plan_5wd")
    assert plan["amount"] == 0 and "minimum volume" in plan["working"]
    assert mar["service_credits"]["total"] == 0
    assert mar["service_credits"]["cap"]["applied_earlier_in_quarter"] == 13_050
    assert apr["service_credits"]["total"] == 5_800
    # Several months at once (the evidence pack's year) work each month out once and agree with one at a time.
    with session_scope(settings) as session:
        together = statements(session, TTG, ["2024-01", "2024-02", "2024-03", "2024-04"], pbr=False)
    assert [together[m].to_dict()["service_credits"] for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == \
        [month["service_credits"] for month in (jan, feb, mar, apr)]


def _finding(session, estimate, low, high, matched=1000):
    session.execute(delete(Finding).where(Finding.contract_id == CRC))
    session.add(Finding(contract_id=CRC, area_code="E23000005", measure_code="reo_binary_12m", cohort="2023-01 to 2023-04",
                        method="psm_nn_1to5_replacement", estimate=estimate, ci_low=low, ci_high=high, p_value=0.01,
                        alpha=0.05, verdict="reduction", parameters=json.dumps({"n_matched": matched}),
                        input_hash="x", created_at=datetime.now(UTC)))


@pytest.mark.parametrize("estimate, low, high, cap, expected, words", [
    (-0.06, -0.09, -0.03, None, 180_000, "reoffenders avoided = 0.0600 x 1000 = 60.0"),  # 60 avoided x £3,000
    (-0.015, -0.025, -0.005, None, 0, "below the threshold of 2 points"),
    (-0.05, -0.11, 0.01, None, 0, "not statistically significant"),
    (-0.06, -0.09, -0.03, 100_000, 100_000, "capped at £100,000.00"),
])
def test_payment_by_results(settings, estimate, low, high, cap, expected, words):
    with session_scope(settings) as session:
        terms = session.exec(select(PaymentTerms).where(PaymentTerms.contract_id == CRC)).one()
        assert (terms.pbr_price_per_reoffender_gbp, terms.pbr_threshold_points) == (3000.0, 2.0)
        terms.pbr_cap_gbp = cap
        _finding(session, estimate, low, high)
    with session_scope(settings) as session:
        result = statement(session, CRC, "2024-06").to_dict()
    assert result["pbr"]["total"] == expected
    assert words in " ".join(line["working"] for line in result["pbr"]["lines"])


def _frequency_finding(session, estimate, low, high, comparison, matched=1000):
    session.add(Finding(contract_id=CRC, area_code="E23000005", measure_code="reo_frequency_12m", cohort="2023-01 to 2023-04",
                        method="psm_nn_1to5_replacement", estimate=estimate, ci_low=low, ci_high=high, p_value=0.01,
                        alpha=0.05, verdict="reduction",
                        parameters=json.dumps({"n_matched": matched, "comparison_rate": comparison}),
                        input_hash="y", created_at=datetime.now(UTC)))


@pytest.mark.parametrize("estimate, low, high, expected, words", [
    # Peterborough-style: 12% fewer reoffences than the comparison group's 1.5 each, threshold 10%:
    # 0.18 x 1000 = 180 reoffences avoided x £800 = £144,000.
    (-0.18, -0.27, -0.09, 144_000, "reoffences avoided = 0.1800 x 1000 = 180.0"),
    # 8% fewer (0.12 of 1.5): significant but under the 10% trigger.
    (-0.12, -0.2, -0.04, 0, "the reduction of 8.0% is below the threshold of 10%"),
    # 12% fewer but the interval reaches zero.
    (-0.18, -0.4, 0.04, 0, "not statistically significant"),
])
def test_payment_by_results_on_frequency(settings, estimate, low, high, expected, words):
    with session_scope(settings) as session:
        terms = session.exec(select(PaymentTerms).where(PaymentTerms.contract_id == CRC)).one()
        terms.pbr_price_per_reoffender_gbp = 0.0  # only the frequency outcome pays here
        terms.pbr_frequency_price_gbp, terms.pbr_frequency_threshold_pct = 800.0, 10.0
        _finding(session, -0.06, -0.09, -0.03)
        _frequency_finding(session, estimate, low, high, comparison=1.5)
    with session_scope(settings) as session:
        result = statement(session, CRC, "2024-06").to_dict()
    frequency = next(line for line in result["pbr"]["lines"] if line["measure"] == "reo_frequency_12m")
    assert frequency["amount"] == expected and result["pbr"]["total"] == expected
    assert words in frequency["working"]
    assert "no binary-outcome price" in result["pbr"]["lines"][0]["working"]


def test_renegotiated_terms_apply_from_their_date(settings):
    with session_scope(settings) as session:
        session.add(PaymentTerms(contract_id=CRC, valid_from=date(2024, 7, 1), pbr_price_per_reoffender_gbp=5000.0,
                                 pbr_threshold_points=1.0))
        _finding(session, -0.06, -0.09, -0.03)
    with session_scope(settings) as session:
        assert statement(session, CRC, "2024-06").pbr_total == 180_000
        assert statement(session, CRC, "2024-07").pbr_total == 300_000


def test_demo_failing_provider_owes_credits_and_a_compliant_one_does_not(demo_home, demo_summary):
    runner = CliRunner()
    months = [f"2025-{m:02d}" for m in range(1, 13)]

    def credited_months(contract_id: str, measure: str) -> int:
        count = 0
        for month in months:
            result = runner.invoke(cli, ["credits", "--home", str(demo_home), "--contract", contract_id,
                                         "--period", month, "--json"])
            assert result.exit_code == 0, result.output
            lines = json.loads(result.output)["service_credits"]["lines"]
            count += any(x["measure"] == measure and x["amount"] > 0 for x in lines)
        return count

    failing = "TTG-E23000005"
    assert failing in demo_summary["failing_contracts"]
    assert credited_months(failing, demo_summary["failing_measure"]) >= 8
    assert credited_months("TTG-E23000014", demo_summary["failing_measure"]) <= 2  # another provider, same measure
    settings = get_settings(demo_home)
    with session_scope(settings) as session:
        judged = session.exec(select(Judgement).where(Judgement.contract_id == failing,
                                                      Judgement.measure_code == demo_summary["failing_measure"])).all()
    assert sum(j.verdict == "not met" for j in judged) > len(judged) / 2
    bad = runner.invoke(cli, ["credits", "--home", str(demo_home), "--contract", "NOPE", "--period", "2025-12"])
    assert bad.exit_code == 2 and "no contract 'NOPE'" in bad.output


def test_scorecard_command_answers_is_this_provider_meeting_its_contract(demo_home, demo_summary):
    runner = CliRunner()
    result = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "TTG-E23000005",
                                 "--period", "2025-12", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["contract_id"] == "TTG-E23000005" and card["period"] == "2025-12"
    codes = {m["code"]: m for m in card["measures"]}
    assert len(codes) >= 6
    accommodation = codes[demo_summary["failing_measure"]]
    assert {"value", "numerator", "denominator", "target", "rag", "verdict", "ci_low", "ci_high", "spc_signals"} <= set(accommodation)
    assert accommodation["value"] == pytest.approx(accommodation["numerator"] / accommodation["denominator"])
    assert accommodation["ci_low"] < accommodation["value"] < accommodation["ci_high"]
    assert isinstance(accommodation["spc_signals"], list) and accommodation["spc_variation"]
    text = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "TTG-E23000005", "--period", "2025-12"])
    assert "Missed beyond sampling noise" in text.output and "Service credits due" in text.output
    missing = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "TTG-E23000005", "--period", "2030-01"])
    assert missing.exit_code == 2 and "no judged KPIs" in missing.output


def test_spc_signals_are_stored_with_their_meaning(demo_settings):
    with session_scope(demo_settings) as session:
        judged = session.exec(select(Judgement).where(Judgement.spc_signals != "")).all()
    assert judged, "three years of monthly KPIs for 20 contracts produce some special-cause signals"
    for j in judged:
        for signal in j.spc_signals.split("; "):
            rule, _, meaning = signal.partition(" (")
            assert rule in {"outside limits", "shift", "trend", "two of three near a limit"}
            assert meaning in {"improvement)", "concern)"}
