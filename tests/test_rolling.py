"""Rolling quarter and year judgements: pooled counts judged against the terms in force at the period."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from contracts.judge import rolling_judgements
from outcomes.proportions import wilson_interval


def _months(values: list[tuple[str, int, int]], target=0.85, tolerance=0.05, min_volume=20, direction="higher"):
    return pd.DataFrame([{"contract_id": "C1", "measure_code": "m", "period": p, "numerator": n, "denominator": d,
                          "target": target, "tolerance": tolerance, "min_volume": min_volume, "direction": direction}
                         for p, n, d in values])


def test_rolling_windows_pool_the_months_to_the_period():
    months = _months([(f"2025-{m:02d}", 8 + m, 10 + m) for m in range(1, 13)])
    pooled = rolling_judgements(months, "2025-12", alpha=0.05).set_index("window")
    # Quarter: Oct-Dec: numerators 18+19+20 = 57, denominators 20+21+22 = 63 (hand count).
    assert pooled.loc["quarter", "numerator"] == 57 and pooled.loc["quarter", "denominator"] == 63
    assert pooled.loc["quarter", "first_period"] == "2025-10" and pooled.loc["quarter", "months_with_data"] == 3
    assert pooled.loc["quarter", "value"] == pytest.approx(57 / 63)
    low, high = wilson_interval([57], [63], 0.05)
    assert pooled.loc["quarter", "ci_low"] == pytest.approx(low[0]) and pooled.loc["quarter", "ci_high"] == pytest.approx(high[0])
    # Year: sum(9..20) = 174 of sum(11..22) = 198.
    assert pooled.loc["year", "numerator"] == 174 and pooled.loc["year", "denominator"] == 198
    assert pooled.loc["year", "rag"] == "Green"  # 87.9% against 85%


def test_small_months_each_insufficient_together_not_met():
    # Three months of 12 cases, 6 met each: every month is below the minimum volume of 20 ...
    months = _months([("2025-10", 6, 12), ("2025-11", 6, 12), ("2025-12", 6, 12)])
    from contracts.judge import judge_frame

    assert set(judge_frame(months, 0.05)["verdict"]) == {"insufficient volume"}
    # ... but the quarter has 36 cases at 50% against 85%: the whole interval is below target.
    quarter = rolling_judgements(months, "2025-12", 0.05).set_index("window").loc["quarter"]
    assert quarter["denominator"] == 36 and quarter["verdict"] == "not met" and quarter["rag"] == "Red"


def test_rolling_uses_the_target_in_force_at_the_period():
    months = _months([("2025-11", 80, 100), ("2025-12", 80, 100)])
    months.loc[months["period"] == "2025-12", "target"] = 0.70  # renegotiated down from December
    quarter = rolling_judgements(months, "2025-12", 0.05).set_index("window").loc["quarter"]
    assert quarter["target"] == 0.70 and quarter["rag"] == "Green"
    # A window with only later months than the period is empty: nothing to judge.
    assert rolling_judgements(months, "2025-06", 0.05).empty


def test_scorecard_shows_rolling_windows_for_the_failing_provider(demo_home, demo_summary):
    runner = CliRunner()
    contract_id = demo_summary["failing_contracts"][0]
    result = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", contract_id,
                                 "--period", "2025-12", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    failing = {m["code"]: m for m in card["measures"]}[demo_summary["failing_measure"]]
    year = failing["rolling"]["year"]
    assert year["from"] == "2025-01" and year["to"] == "2025-12" and year["months_with_data"] == 12
    assert year["verdict"] == "not met" and year["rag"] == "Red"
    assert year["ci_low"] < year["value"] < year["ci_high"] < year["target"]
    quarter = failing["rolling"]["quarter"]
    assert quarter["denominator"] < year["denominator"]
    # What to do, from the findings alone: the shortfall rule (a CUSUM with a stated false-alarm rate) has
    # signalled within the year, so a notice was due and its remedial plan is checked; the rolling-year miss is
    # descriptive and never a notice on its own.
    cusum = failing["cusum"]
    assert cusum["signal_periods"] and cusum["in_last_12"] and cusum["threshold"] > 0
    notice = [a for a in card["actions"] if a.startswith(failing["name"])]
    assert notice and "shortfall rule signalled" in notice[0]
    assert ("performance notice" in notice[0]) == cusum["signal"]
    text = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", contract_id, "--period", "2025-12"])
    assert "year to 2025-12" in text.output and "What to do:" in text.output


def test_actions_follow_the_findings():
    from contracts.actions import recommended_actions

    calm = [{"name": "K", "rag": "Green", "verdict": "met", "value": 0.9, "target": 0.85, "spc_variation": "common cause",
             "rolling": {"year": {"verdict": "met", "value": 0.9, "target": 0.85, "to": "2025-12"}}}]
    assert recommended_actions(calm, 0.0, 0.0) == [
        "No action needed: every KPI is on target or not distinguishable from it, and no credits are due."]
    red_unproven = [{**calm[0], "rag": "Red", "verdict": "inconclusive"}]
    assert "watch next month" in recommended_actions(red_unproven, 0.0, 0.0)[0]
    actions = recommended_actions(calm, 1234.5, 0.0, [{"measure_code": "reo_binary_12m", "verdict": "increase",
                                                       "sentence": "worse."}])
    assert any("£1,234.50" in a for a in actions) and any("Review the service model" in a for a in actions)
    # An ITS increase on a higher-is-better KPI is not harm.
    assert recommended_actions(calm, 0.0, 0.0, [{"measure_code": "crc_plan_15wd", "verdict": "increase",
                                                 "sentence": "up."}])[0].startswith("No action needed")


def test_scorecard_marks_provider_reported_kpis(demo_home):
    # cymru-health sends aggregates only (kpi_aggregate): its KPIs are provider-reported, the others derived.
    runner = CliRunner()
    welsh = json.loads(runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "HLT-W15000003",
                                           "--period", "2025-12", "--json"]).output)
    assert welsh["measures"] and {m["source"] for m in welsh["measures"]} == {"provider_reported"}
    english = json.loads(runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "HLT-E23000005",
                                             "--period", "2025-12", "--json"]).output)
    assert {m["source"] for m in english["measures"]} == {"derived"}
    text = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", "HLT-W15000003", "--period", "2025-12"])
    assert "reported by the provider as an aggregate" in text.output
