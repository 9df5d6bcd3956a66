"""Robustness checks: placebo in time (ITS, synthetic control) and leave one donor out, passing and failing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.checks import its_placebo_in_time, synth_leave_one_out, synth_placebo_in_time
from tests.outcomes.test_synth import area_panel, long_panel


def _series(y):
    return pd.DataFrame({"month": pd.period_range("2020-01", periods=len(y), freq="M").astype(str), "y": y})


def test_its_placebo_in_time_passes_on_a_clean_series_and_fails_on_a_curved_trend():
    rng = np.random.default_rng(1)
    t = np.arange(48)
    clean = _series(50 + 0.2 * t + 6 * (t >= 30) + rng.normal(0, 1, 48))
    check = its_placebo_in_time(clean, "month", "y", "2022-07", errors="ols")
    assert check.passed is True and check.table.loc[0, "fake_intervention"] == "2021-04"
    assert check.headline.startswith("Placebo in time: a fake change at 2021-04") and "as it should" in check.headline
    curved = _series(50 + 0.02 * t**2 + rng.normal(0, 0.5, 48))
    bad = its_placebo_in_time(curved, "month", "y", "2022-07", errors="ols")
    assert bad.passed is False and "a change where there was none" in bad.headline
    short = its_placebo_in_time(clean, "month", "y", "2020-10")
    assert short.passed is None and "No placebo-in-time check" in short.headline
    assert set(check.to_dict()) >= {"method", "headline", "passed", "table"}


def test_synth_placebo_in_time_passes_when_the_pre_period_is_quiet_and_fails_on_an_earlier_shock():
    frame = area_panel(np.random.default_rng(3), J=25)
    check = synth_placebo_in_time(frame, "area", "month", "rate", "A00", 24)
    assert check.passed is True and check.table.loc[0, "fake_intervention"] == 12
    shocked = frame.copy()
    shocked.loc[(shocked["area"] == "A00") & (shocked["month"] >= 12), "rate"] += 0.08
    bad = synth_placebo_in_time(shocked, "area", "month", "rate", "A00", 24)
    assert bad.passed is False and "a change where there was none" in bad.headline


def test_leave_one_out_finds_a_result_that_rests_on_one_donor():
    rng = np.random.default_rng(5)
    T, J = 36, 12
    factors = rng.normal(size=(T, 3)).cumsum(axis=0) * 0.02
    Y = 0.5 + factors @ rng.uniform(0, 1, size=(J, 3)).T + rng.normal(0, 0.003, (T, J))
    Y[:, 0] = 0.6 * Y[:, 1] + 0.4 * Y[:, 2] + rng.normal(0, 0.001, T)
    Y[24:, 0] += 0.05
    steady = long_panel(Y.copy(), [f"A{j:02d}" for j in range(J)])
    ok = synth_leave_one_out(steady, "area", "month", "rate", "A00", 24)
    assert ok.passed is True and len(ok.table) >= 2 and "never changes" in ok.headline
    Y[24:, 1] += 0.2  # the main donor has its own shock after the intervention
    fragile = long_panel(Y, [f"A{j:02d}" for j in range(J)])
    bad = synth_leave_one_out(fragile, "area", "month", "rate", "A00", 24)
    assert bad.passed is False and "A01" in bad.headline
