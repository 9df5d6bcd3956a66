"""SPC: limits against hand formulas, each Making Data Count rule where it was built to fire, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from outcomes.errors import OutcomesError
from outcomes.spc import p_chart, xmr_chart

CALM = [10, 12, 11, 13, 12, 11, 12, 10, 11, 12, 13, 12]  # mean 139/12, moving ranges sum 14 over 11


def rules(result) -> list[tuple[str, int, int, str]]:
    return [(s.rule, s.start, s.end, s.meaning) for s in result.signals]


def test_xmr_limits_by_hand():
    result = xmr_chart(CALM)
    mean, mr_bar = 139 / 12, 14 / 11
    assert result.points["centre"].iloc[0] == pytest.approx(mean)
    assert result.points["upper"].iloc[0] == pytest.approx(mean + 2.66 * mr_bar)
    assert result.points["lower"].iloc[0] == pytest.approx(mean - 2.66 * mr_bar)
    assert result.signals == () and result.variation == "common cause"


def test_p_chart_limits_by_hand():
    x = np.array([80, 85, 78, 82, 84, 79, 81, 83, 80, 82, 85, 81])
    n = np.array([100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 200])
    result = p_chart(x, n)
    p_bar = x.sum() / n.sum()
    assert result.points["centre"].iloc[0] == pytest.approx(p_bar)
    assert result.points["upper"].iloc[0] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 100))
    assert result.points["upper"].iloc[-1] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 200))


def test_single_point_outside_the_limits():
    values = CALM + [20]
    result = xmr_chart(values, baseline=12, improvement="lower")
    assert rules(result) == [("outside limits", 12, 12, "concern")]
    assert result.variation == "special cause concerning"


def test_shift_of_seven_and_not_six():
    base = [10, 11, 9, 10, 11, 9, 10, 11, 9, 10, 11, 9]
    seven = xmr_chart(base + [10.5] * 7, baseline=12)
    assert ("shift", 12, 18, "improvement") in rules(seven)
    six = xmr_chart(base + [10.5] * 6 + [9.5], baseline=12)
    assert not any(r[0] == "shift" for r in rules(six))


def test_trend_of_six_and_not_five():
    base = [10, 12, 10, 12, 10, 12, 10, 12, 10, 12, 10, 12]
    rising = xmr_chart(base + [9, 9.5, 10, 10.5, 11, 11.5], baseline=12, improvement="lower")
    assert ("trend", 12, 17, "concern") in rules(rising)
    short = xmr_chart(base + [9, 9.5, 10, 10.5, 11, 10], baseline=12)
    assert not any(r[0] == "trend" for r in rules(short))


def test_two_of_three_near_a_limit():
    base = [10, 12, 10, 12, 10, 12, 10, 12, 10, 12, 10, 12]  # mean 11, mR-bar 2, sigma 1.773
    result = xmr_chart(base + [14.8, 11, 14.8], baseline=12)
    found = rules(result)
    assert ("two of three near a limit", 12, 14, "improvement") in found
    assert not any(r[0] == "outside limits" for r in found)


def test_in_control_noise_rarely_signals():
    rng = np.random.default_rng(3)
    counts = {"outside limits": 0, "shift": 0, "trend": 0, "two of three near a limit": 0}
    for _ in range(200):
        result = xmr_chart(rng.normal(50, 5, 36))
        for s in result.signals:
            counts[s.rule] += 1
    # Independent normal noise: about 36 x 0.27% points outside 3 sigma per chart.
    assert counts["outside limits"] / 200 < 0.3
    assert sum(counts.values()) / 200 < 1.5


def test_limits_recalculated_after_a_break():
    values = [10, 11, 9, 10, 11, 9, 10, 11, 9, 10, 11, 9] + [20, 21, 19, 20, 21, 19, 20, 21, 19, 20, 21, 19]
    result = xmr_chart(values, breaks=[12])
    assert result.points["centre"].iloc[0] == pytest.approx(10)
    assert result.points["centre"].iloc[-1] == pytest.approx(20)
    assert result.signals == ()
    without = xmr_chart(values)
    assert any(s.rule == "shift" for s in without.signals)


def test_laney_widens_overdispersed_limits_and_matches_binomial_ones():
    rng = np.random.default_rng(7)
    n = np.full(36, 2000)
    overdispersed = rng.binomial(n, np.clip(rng.normal(0.8, 0.03, 36), 0, 1))
    p, laney = p_chart(overdispersed, n), p_chart(overdispersed, n, laney=True)
    width = lambda r: (r.points["upper"] - r.points["lower"]).mean()  # noqa: E731
    assert width(laney) > 2 * width(p)
    binomial = rng.binomial(n, 0.8)
    assert width(p_chart(binomial, n, laney=True)) == pytest.approx(width(p_chart(binomial, n)), rel=0.35)


@pytest.mark.parametrize("improvement, target, expected", [
    ("higher", 5.0, "consistently passing"), ("higher", 20.0, "consistently failing"), ("higher", 11.0, "hit and miss"),
    ("lower", 20.0, "consistently passing"), ("lower", 5.0, "consistently failing"),
])
def test_assurance(improvement, target, expected):
    assert xmr_chart(CALM, improvement=improvement, target=target).assurance == expected


@pytest.mark.parametrize("call, message", [
    (lambda: xmr_chart([]), "non-empty"),
    (lambda: xmr_chart([1.0] * 5), "at least 12 points"),
    (lambda: xmr_chart(CALM[:11] + [float("nan")]), "missing"),
    (lambda: xmr_chart(["a"] * 12), "numbers"),
    (lambda: p_chart([5] * 12, [4] * 12), "between 0 and its denominator"),
    (lambda: p_chart([-1] + [5] * 11, [10] * 12), "between 0 and its denominator"),
    (lambda: p_chart([1] * 12, [0] * 12), "positive"),
    (lambda: xmr_chart(CALM, breaks=[40]), "inside the series"),
    (lambda: xmr_chart(CALM, improvement="up"), "'higher' or 'lower'"),
])
def test_bad_input(call, message):
    with pytest.raises(OutcomesError, match=message):
        call()
