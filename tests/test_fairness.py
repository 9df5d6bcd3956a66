"""Fair judgements: the performance-notice rule's operating characteristics, measured on 2,000 simulated
contract-years at the demo's volumes, against the targets (at most 5% of contract-years for a provider on
target; a 5-point shortfall detected within 6 months with probability at least 80%)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts.actions import recommended_actions
from contracts.fairness import contract_signals, cusum_path, cusum_threshold, operating_characteristics

# The demo's through-the-gate contract: six KPIs at about 71 cases a month (targets and directions as in the
# catalogue), and the issue's scenario: six KPIs of 80 cases a month with an 80% target.
DEMO_TTG = [(0.95, 71, "higher"), (0.15, 71, "higher"), (0.10, 71, "lower"), (0.90, 71, "higher"),
            (0.95, 71, "higher"), (0.85, 71, "higher")]
ISSUE_SCENARIO = [(0.80, 80, "higher")] * 6


@pytest.mark.parametrize("kpis", [DEMO_TTG, ISSUE_SCENARIO], ids=["demo-ttg", "six-kpis-80-cases"])
def test_operating_characteristics_on_2000_contract_years(kpis):
    oc = operating_characteristics(kpis, sims=2000)
    assert oc["simulated_contract_years"] == 2000
    assert oc["false_alarm_per_contract_year"] <= 0.05
    assert oc["false_alarm_per_contract_year"] >= 0.01  # the rule is not simply silent
    # A provider 5 points short on its KPIs is signalled within 6 months in at least 80% of contract-years.
    assert oc["shortfall_5"]["every_kpi"]["detected_within_6_months"] >= 0.80
    # Delay grows as the shortfall shrinks: stated, not targeted.
    assert oc["shortfall_3"]["every_kpi"]["detected_within_6_months"] < oc["shortfall_5"]["every_kpi"]["detected_within_6_months"]
    assert oc["shortfall_5"]["one_kpi"]["median_months_to_detect"] <= oc["shortfall_3"]["one_kpi"]["median_months_to_detect"] or \
        oc["shortfall_3"]["one_kpi"]["median_months_to_detect"] is None


def test_the_old_rule_fails_the_target_and_the_new_one_meets_it():
    # The rolling-year Wilson "not met" looked at every month on every KPI (the old notice rule), on target.
    from contracts.judge import judge_frame

    rng = np.random.default_rng(11)
    sims, months = 400, 24
    x = rng.binomial(80, 0.8, size=(sims, 6, months))
    rolling_x = np.stack([x[:, :, t - 11:t + 1].sum(axis=2) for t in range(12, months)], axis=2)
    frame = pd.DataFrame({"numerator": rolling_x.ravel(), "denominator": 960, "target": 0.8, "tolerance": 0.05,
                          "min_volume": 10, "direction": "higher"})
    not_met = (judge_frame(frame, 0.05)["verdict"] == "not met").to_numpy().reshape(sims, 6, months - 12)
    old_rate = not_met.any(axis=(1, 2)).mean()
    assert old_rate > 0.3  # the issue measured 53%
    assert operating_characteristics(ISSUE_SCENARIO, sims=2000)["false_alarm_per_contract_year"] <= 0.05


def test_cusum_by_hand():
    p0, p1 = 0.8, 0.75
    a, b = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    path, signals = cusum_path([70, 55, 50, 80], [80, 80, 80, 80], p0, "higher", h=3.0)
    s1 = max(0.0, 70 * a + 10 * b)  # above target: stays at 0
    s2 = max(0.0, s1 + 55 * a + 25 * b)
    s3 = s2 + 50 * a + 30 * b
    assert s1 == 0 and path[:3] == pytest.approx([s1, s2, s3])
    assert s2 < 3.0 < s3 and signals.tolist() == [False, False, True, False]
    assert path[3] == pytest.approx(0.0)  # restarted after the signal, then above target
    assert cusum_threshold(0.8, 80, "higher", 6) == cusum_threshold(0.8, 80, "higher", 6)  # deterministic


def test_contract_signals_and_the_notice():
    months = pd.period_range("2024-01", periods=24, freq="M").astype(str)
    rng = np.random.default_rng(5)
    ok = rng.binomial(80, 0.82, 24)
    short = np.concatenate([rng.binomial(80, 0.82, 12), rng.binomial(80, 0.70, 12)])
    monthly = pd.DataFrame({"measure_code": ["a"] * 24 + ["b"] * 24, "period": list(months) * 2,
                            "numerator": np.concatenate([ok, short]), "denominator": 80, "target": 0.8,
                            "direction": "higher"})
    signals = contract_signals(monthly, "2025-12")
    assert not signals["a"]["signal_periods"]
    assert signals["b"]["signal_periods"] and all(p >= "2025-01" for p in signals["b"]["signal_periods"])
    first = signals["b"]["signal_periods"][0]
    at_first = contract_signals(monthly, first)["b"]
    assert at_first["signal"]
    measures = [{"name": "B", "rag": "Red", "verdict": "not met", "value": 0.7, "target": 0.8, "cusum": at_first,
                 "rolling": {"year": {"verdict": "not met", "value": 0.75, "target": 0.8, "to": first}}}]
    actions = recommended_actions(measures, 0.0, 0.0)
    assert "performance notice" in actions[0] and "at most 5% of contract-years" in actions[0]
    # Without the CUSUM signal a rolling-year "not met" is a descriptive figure: a conversation, not a notice.
    measures[0]["cusum"] = {**at_first, "signal": False, "in_last_12": False}
    assert not any("performance notice" in a for a in recommended_actions(measures, 0.0, 0.0))


@pytest.fixture
def fresh_thresholds():
    """No store and an empty in-process cache before and after: each test sees only the simulation or its file."""
    from contracts import fairness

    fairness.use_threshold_store(None)
    cusum_threshold.cache_clear()
    yield fairness
    fairness.use_threshold_store(None)
    cusum_threshold.cache_clear()


def test_a_stored_threshold_is_the_simulated_one_and_is_not_simulated_again(fresh_thresholds, tmp_path, monkeypatch):
    fairness = fresh_thresholds
    simulated = cusum_threshold(0.8, 80, "higher", 6)  # no store: simulated
    cusum_threshold.cache_clear()
    path = tmp_path / "cache" / "cusum-thresholds.json"
    fairness.use_threshold_store(path)
    assert cusum_threshold(0.8, 80, "higher", 6) == simulated
    assert cusum_threshold(0.7, 40, "lower", 3) > 0
    assert fairness.save_threshold_store() == 2 and fairness.save_threshold_store() == 0  # only new ones are written

    # Another process (a fresh cache and store): read from the file, exactly, with no simulation at all.
    fairness.use_threshold_store(None)
    cusum_threshold.cache_clear()
    fairness.use_threshold_store(path)

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated again although the store holds it")

    monkeypatch.setattr(fairness, "_simulate", no_simulation)
    assert cusum_threshold(0.8, 80, "higher", 6) == simulated  # the float survives JSON exactly
    with pytest.raises(AssertionError, match="simulated again"):
        cusum_threshold(0.8, 81, "higher", 6)  # not stored: it would be simulated


def test_a_store_from_another_calibration_or_damaged_is_ignored(fresh_thresholds, tmp_path, caplog):
    import json

    fairness = fresh_thresholds
    path = tmp_path / "cusum-thresholds.json"
    key = "0.8|80|higher|6|0.045|0.05|10000|18"
    path.write_text(json.dumps({"calibration": "v0 numpy 1.0 burn-in 12", "thresholds": {key: 99.0}}))
    fairness.use_threshold_store(path)
    assert cusum_threshold(0.8, 80, "higher", 6) != 99.0  # another simulation's figure is never reused
    fairness.use_threshold_store(None)
    cusum_threshold.cache_clear()
    path.write_text("{not json")
    with caplog.at_level("WARNING"):
        fairness.use_threshold_store(path)
    assert "ignoring the threshold cache" in caplog.text and str(path) in caplog.text
    assert cusum_threshold(0.8, 80, "higher", 6) != 99.0
    assert fairness.save_threshold_store() == 1
    assert list(json.loads(path.read_text())["thresholds"]) == [key]  # the damaged file is replaced, whole


def test_two_processes_saving_at_once_lose_nothing(fresh_thresholds, tmp_path):
    import json

    fairness = fresh_thresholds
    path = tmp_path / "cusum-thresholds.json"
    first, second = fairness.ThresholdStore(path), fairness.ThresholdStore(path)  # both read the file empty
    first.new["a"] = 1.5
    second.new["b"] = 2.5
    first.save()
    second.save()  # merges with what the first wrote in the meantime
    assert json.loads(path.read_text())["thresholds"] == {"a": 1.5, "b": 2.5}
    assert not list(tmp_path.glob("*.tmp"))
