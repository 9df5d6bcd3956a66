"""SPC: limits against hand formulas and NHSRplotthedots' test figures; each Making Data Count rule where it was
built to fire, and only there; the icons on series built for each state."""

from __future__ import annotations

import numpy as np
import pytest

from outcomes.errors import OutcomesError
from outcomes.spc import Rebase, assurance_of, c_chart, p_chart, run_chart, spc, u_chart, xmr_chart

CALM = [10, 12, 11, 13, 12, 11, 12, 10, 11, 12, 13, 12]  # mean 139/12, moving ranges sum 14 over 11
BASE = [12, 10] * 6  # mean 11, mR-bar 2, sigma 2.66 * 2 / 3 = 1.7733: 2 sigma 14.547, upper limit 16.32
# R's rnorm(20) after set.seed(123): the series of NHSRplotthedots' tests/testthat/test-ptd_spc_standard.R
RNORM_123 = [-0.56047565, -0.23017749, 1.55870831, 0.07050839, 0.12928774, 1.71506499, 0.46091621, -1.26506123,
             -0.68685285, -0.44566197, 1.22408180, 0.35981383, 0.40077145, 0.11068272, -0.55584113, 1.78691314,
             0.49785048, -1.96661716, 0.70135590, -0.47279141]


def rules(result) -> list[tuple[str, int, int, str]]:
    return [(s.rule, s.start, s.end, s.meaning) for s in result.signals]


def rule_names(result) -> set[str]:
    return {s.rule for s in result.signals}


def test_xmr_limits_by_hand():
    result = xmr_chart(CALM)
    mean, mr_bar = 139 / 12, 14 / 11
    assert result.points["centre"].iloc[0] == pytest.approx(mean)
    assert result.points["upper"].iloc[0] == pytest.approx(mean + 2.66 * mr_bar)
    assert result.points["lower"].iloc[0] == pytest.approx(mean - 2.66 * mr_bar)
    assert result.signals == () and result.variation == "common cause" and result.variation_icon == "common_cause"


@pytest.mark.parametrize("outlier, screen, mean, lower, upper", [
    # NHSRplotthedots' snapshot figures (tests/testthat/_snaps/ptd_spc_standard.md): r1, r2 and r3
    (False, True, 0.1416238, -3.01138, 3.294627),
    (True, True, 0.6694159, -2.383666, 3.722497),
    (True, False, 0.6694159, -4.596625, 5.935457),
])
def test_xmr_matches_nhsrplotthedots(outlier, screen, mean, lower, upper):
    values = list(RNORM_123)
    if outlier:
        values[14] = 10  # their data$y[15] <- 10
    result = xmr_chart(values, screen_outliers=screen)
    first = result.points.iloc[0]
    assert (first["centre"], first["lower"], first["upper"]) == pytest.approx((mean, lower, upper), abs=5e-6)


def test_p_chart_limits_by_hand():
    x = np.array([80, 85, 78, 82, 84, 79, 81, 83, 80, 82, 85, 81])
    n = np.array([100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 200])
    result = p_chart(x, n)
    p_bar = x.sum() / n.sum()
    assert result.points["centre"].iloc[0] == pytest.approx(p_bar)
    assert result.points["upper"].iloc[0] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 100))
    assert result.points["upper"].iloc[-1] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 200))


def test_laney_p_prime_limits_by_hand():
    x = np.array([800, 850, 780, 820, 840, 790, 810, 830, 800, 820, 850, 810])
    n = np.array([1000] * 11 + [2000])
    x[-1] = 1620
    p_bar = x.sum() / n.sum()
    sd = np.sqrt(p_bar * (1 - p_bar) / n)
    z = (x / n - p_bar) / sd
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
    result = p_chart(x, n, laney=True)
    assert result.chart == "pp"
    assert result.points["upper"].to_numpy() == pytest.approx(p_bar + 3 * sd * sigma_z)
    assert result.points["lower"].to_numpy() == pytest.approx(p_bar - 3 * sd * sigma_z)


def test_u_and_u_prime_limits_by_hand():
    counts = np.array([12, 15, 9, 14, 11, 13, 10, 16, 12, 11, 14, 13], dtype=float)
    exposure = np.array([100, 120, 90, 110, 100, 105, 95, 130, 100, 100, 115, 110], dtype=float)
    u_bar = counts.sum() / exposure.sum()
    u = u_chart(counts, exposure)
    assert u.points["centre"].iloc[0] == pytest.approx(u_bar)
    assert u.points["upper"].to_numpy() == pytest.approx(u_bar + 3 * np.sqrt(u_bar / exposure))
    assert u.points["lower"].to_numpy() == pytest.approx(np.maximum(u_bar - 3 * np.sqrt(u_bar / exposure), 0))
    z = (counts / exposure - u_bar) / np.sqrt(u_bar / exposure)
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
    up = u_chart(counts, exposure, laney=True)
    assert up.chart == "up"
    assert up.points["upper"].to_numpy() == pytest.approx(u_bar + 3 * np.sqrt(u_bar / exposure) * sigma_z)


def test_c_chart_limits_by_hand():
    counts = [4, 6, 5, 3, 7, 5, 4, 6, 5, 5, 4, 6]  # c-bar 5
    result = c_chart(counts)
    assert result.points["centre"].iloc[0] == pytest.approx(5)
    assert result.points["upper"].iloc[0] == pytest.approx(5 + 3 * np.sqrt(5))
    assert result.points["lower"].iloc[0] == pytest.approx(0.0)  # 5 - 6.7 clipped at zero


# ----------------------------------------------------------------- each rule where it was built to fire, and only there

def test_outside_limits_alone():
    result = xmr_chart(BASE + [17.0], fix_after=12, improvement="lower")
    assert rules(result) == [("outside limits", 12, 12, "concern")]
    assert result.variation_icon == "concern_high"
    assert result.variation_label == "special cause: concerning, higher"


def test_trend_of_seven_alone_and_not_six():
    rising = [9.5, 10, 10.5, 11, 11.5, 12, 12.5]  # crosses the mean (11 breaks the run on one side), inside 2 sigma
    result = xmr_chart(BASE + rising, fix_after=12, improvement="lower")
    assert rules(result) == [("trend", 12, 18, "concern")]
    six = xmr_chart(BASE + rising[:6] + [11.2], fix_after=12)
    assert six.signals == ()


def test_trend_figures_from_nhsrplotthedots():
    # their ptd_seven_point_trend cases: 1..7 is a trend, 1..6 is not, a tie (3, 3) breaks it
    from outcomes.spc import find_signals
    nan = np.full(7, np.nan)

    def trend_flags(values):
        y = np.asarray(values, dtype=float)
        sig = find_signals(y, np.full(len(y), 1e9), nan[:len(y)], nan[:len(y)], nan[:len(y)], np.zeros(len(y), int),
                           "higher", limits=False)
        return [(s.start, s.end) for s in sig if s.rule == "trend"]

    assert trend_flags(range(1, 8)) == [(0, 6)]
    assert trend_flags(range(1, 7)) == []
    assert trend_flags([1, 2, 3, 3, 4, 5, 6]) == []
    assert trend_flags(list(range(7, 0, -1))) == [(0, 6)]


def test_two_of_three_alone():
    result = xmr_chart(BASE + [14.8, 11.5, 14.8], fix_after=12)
    assert rules(result) == [("two of three near a limit", 12, 14, "improvement")]
    assert result.signals[0].flagged == (12, 14)  # the third point, not beyond 2 sigma, is not flagged
    assert result.points["signals"].iloc[13] == ""


def test_two_of_three_needs_all_three_on_one_side():
    # NHSRplotthedots' case: two points beyond 2 sigma on opposite sides are common cause
    result = xmr_chart(BASE + [14.8, 7.2, 11.5], fix_after=12)
    assert result.signals == ()
    # and two beyond 2 sigma on the high side with the middle one below the mean
    assert xmr_chart(BASE + [14.8, 10.5, 14.8], fix_after=12).signals == ()


def test_two_of_three_2023_change():
    series = BASE + [14.8, 11.5, 17.0]  # the last point beyond the upper limit (16.32)
    new = xmr_chart(series, fix_after=12)
    assert rule_names(new) == {"outside limits", "two of three near a limit"}
    old = xmr_chart(series, fix_after=12, two_of_three="pre-2023")
    assert rules(old) == [("outside limits", 14, 14, "improvement")]


def test_shift_of_seven_alone_and_not_six():
    seven = xmr_chart(BASE + [11.5] * 7, fix_after=12)
    assert rules(seven) == [("shift", 12, 18, "improvement")]
    six = xmr_chart(BASE + [11.5] * 6 + [10.5], fix_after=12)
    assert six.signals == ()


def test_in_control_noise_rarely_signals():
    rng = np.random.default_rng(3)
    counts = {"outside limits": 0, "shift": 0, "trend": 0, "two of three near a limit": 0}
    for _ in range(200):
        for s in xmr_chart(rng.normal(50, 5, 36)).signals:
            counts[s.rule] += 1
    assert counts["outside limits"] / 200 < 0.3  # about 36 x 0.27% a chart
    assert sum(counts.values()) / 200 < 1.5


# ----------------------------------------------------------------- direction, conflict, icons

FALLING_HIGH = [16.2, 15.9, 15.6, 15.3, 15.0, 14.7, 14.4]  # above the mean (shift) and falling (trend)


def test_mdc_conflict_rule_shows_improvement():
    result = xmr_chart(BASE + FALLING_HIGH, fix_after=12, improvement="higher")
    meanings = {(s.rule, s.meaning) for s in result.signals if 18 in s.flagged}
    assert ("shift", "improvement") in meanings and ("trend", "concern") in meanings
    assert result.variation_icon == "improvement_high"
    assert xmr_chart(BASE + FALLING_HIGH, fix_after=12, conflict="concern").variation_icon == "concern_low"


@pytest.mark.parametrize("tail, improvement, icon", [
    ([11.2, 10.8] * 3, "higher", "common_cause"),
    ([11.5] * 7, "higher", "improvement_high"),
    ([10.5] * 7, "lower", "improvement_low"),
    ([11.5] * 7, "lower", "concern_high"),
    ([10.5] * 7, "higher", "concern_low"),
    ([11.5] * 7, "neutral", "neither_high"),
    ([10.5] * 7, "neutral", "neither_low"),
])
def test_variation_icons(tail, improvement, icon):
    assert xmr_chart(BASE + tail, fix_after=12, improvement=improvement).variation_icon == icon


@pytest.mark.parametrize("lower, upper, improvement, expected", [
    # NHSRplotthedots' tests/testthat/test-ptd_calculate_assurance_type.R, target 4
    (1, 3, "higher", "fail"), (5, 7, "higher", "pass"), (1, 5, "higher", "hit_and_miss"),
    (1, 3, "lower", "pass"), (5, 7, "lower", "fail"), (1, 5, "lower", "hit_and_miss"),
    (1, 5, "neutral", None),
])
def test_assurance_figures_from_nhsrplotthedots(lower, upper, improvement, expected):
    assert assurance_of(4.0, lower, upper, improvement) == expected


@pytest.mark.parametrize("improvement, target, icon, words", [
    ("higher", 5.0, "pass", "consistently passing"), ("higher", 20.0, "fail", "consistently failing"),
    ("higher", 11.0, "hit_and_miss", "hit and miss"), ("lower", 20.0, "pass", "consistently passing"),
    ("lower", 5.0, "fail", "consistently failing"),
])
def test_assurance_icons_on_series(improvement, target, icon, words):
    result = xmr_chart(CALM, improvement=improvement, target=target)
    assert (result.assurance_icon, result.assurance) == (icon, words)


def test_assurance_uses_the_latest_rebase_group():
    values = [10, 11, 9] * 4 + [20, 21, 19] * 4
    result = xmr_chart(values, rebases=[Rebase(12, "new provider")], target=15)
    assert result.assurance_icon == "pass"  # the first group alone would fail
    assert xmr_chart(values[:12], target=15).assurance_icon == "fail"
    assert xmr_chart(CALM, target=11, improvement="neutral").assurance_icon is None


# ----------------------------------------------------------------- rebases, frozen baselines, chart choice

def test_rebase_by_label_with_reason():
    values = [10, 11, 9] * 4 + [20, 21, 19] * 4
    labels = [f"2023-{m:02d}" for m in range(1, 13)] + [f"2024-{m:02d}" for m in range(1, 13)]
    result = xmr_chart(values, labels, rebases=[Rebase("2024-01", "contract variation: new referral route")])
    assert result.points["centre"].iloc[0] == pytest.approx(10)
    assert result.points["centre"].iloc[-1] == pytest.approx(20)
    assert result.signals == ()
    assert result.to_dict()["rebases"] == [{"time": "2024-01", "reason": "contract variation: new referral route"}]
    assert any(s.rule == "shift" for s in xmr_chart(values, labels).signals)


def test_no_rule_crosses_a_rebase():
    values = BASE[:9] + [11.5] * 3 + [11.5] * 4 + BASE  # 7 points above 11, split 3 | 4 by the rebase at 12
    result = xmr_chart(values, rebases=[12], fix_after=12)
    assert not any(s.rule == "shift" and s.start < 12 <= s.end for s in result.signals)


def test_frozen_baseline():
    values = CALM + [14.0] * 12
    frozen = xmr_chart(values, fix_after=12)
    assert frozen.points["centre"].iloc[-1] == pytest.approx(139 / 12)
    assert ("shift", 9, 23, "improvement") in rules(frozen)  # CALM ends 12, 13, 12: above its mean
    assert xmr_chart(values).points["centre"].iloc[-1] == pytest.approx((139 + 14 * 12) / 24)


def test_chart_choice_says_why():
    assert spc(CALM[:8]).chart == "run" and "fewer than the 12" in spc(CALM[:8]).why
    assert spc(CALM).chart == "xmr" and "without a denominator" in spc(CALM).why
    x, n = [80 + i % 3 for i in range(12)], [100] * 12
    assert spc(x, n).chart == "p"
    assert spc([800 + i % 3 for i in range(12)], [1000] * 12).chart == "pp"
    assert spc([12, 15, 9, 14, 11, 13, 10, 16, 12, 11, 14, 13], [5] * 12).chart == "u"
    assert spc(x, n, kind="rate").chart == "u"
    assert spc(CALM, chart="c").chart == "c" and spc(CALM, chart="c").why == "c-chart, as asked"


def test_run_chart_rules_and_no_assurance():
    values = [1, 2, 1, 20, 2, 1, 2, 1, 10, 11, 10, 11, 10, 11]  # median 6
    result = run_chart(values, target=6)
    assert np.isnan(result.points["upper"]).all()
    assert rules(result) == [("shift", 8, 13, "improvement")]
    assert run_chart(values[:-1] + [1]).signals == ()  # median 2: five high, then one low
    assert result.assurance_icon is None


def test_result_api():
    result = spc(CALM, target=11, rebases=[Rebase(6, "x")], min_baseline=6)
    d = result.to_dict()
    for key in ("chart", "centre", "limits", "signals", "variation_icon", "assurance_icon", "method", "citation",
                "nobs", "warnings", "headline"):
        assert key in d
    assert d["limits"][0] == {"time": "0", "value": 10.0, "centre": pytest.approx(d["limits"][0]["centre"]),
                              "lower": pytest.approx(d["limits"][0]["lower"]), "upper": pytest.approx(d["limits"][0]["upper"])}
    assert result.nobs == 12 and "hit and miss" in result.headline and "<table>" in result._repr_html_()
    assert "limits recalculated from 6: x" in result.summary()


@pytest.mark.parametrize("call, message", [
    (lambda: xmr_chart([]), "non-empty"),
    (lambda: xmr_chart([1.0] * 5), "at least 12 points"),
    (lambda: xmr_chart(CALM[:11] + [float("nan")]), "missing"),
    (lambda: xmr_chart(["a"] * 12), "numbers"),
    (lambda: p_chart([5] * 12, [4] * 12), "between 0 and its denominator"),
    (lambda: p_chart([-1] + [5] * 11, [10] * 12), "between 0 and its denominator"),
    (lambda: p_chart([1] * 12, [0] * 12), "positive"),
    (lambda: xmr_chart(CALM, breaks=[40]), "inside the series"),
    (lambda: xmr_chart(CALM, rebases=[Rebase("2030-01")]), "no point has that label"),
    (lambda: xmr_chart(CALM, improvement="up"), "'higher', 'lower' or 'neutral'"),
    (lambda: xmr_chart(CALM, two_of_three="2019"), "two_of_three"),
    (lambda: spc(CALM, chart="p"), "needs denominators"),
    (lambda: spc(CALM, chart="zz"), "chart must be one of"),
])
def test_bad_input(call, message):
    with pytest.raises(OutcomesError, match=message):
        call()
