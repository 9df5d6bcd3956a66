"""Power and minimum detectable effect for two proportions, and the "too small to tell" verdict."""

from __future__ import annotations

import numpy as np
import pytest

from outcomes.errors import OutcomesError
from outcomes.power import mde_two_proportions, power_two_proportions, verdict


def test_power_matches_the_textbook_formula():
    # Fleiss et al. (2003): p0 = 0.30, p1 = 0.22, 500 per group.
    assert power_two_proportions(500, 500, 0.30, 0.22) == pytest.approx(0.8232, abs=1e-4)
    assert power_two_proportions(500, 500, 0.30, 0.30) == pytest.approx(0.05, abs=1e-12)


def test_power_agrees_with_simulation():
    rng = np.random.default_rng(0)
    n_t, n_c, p0, p1 = 150, 600, 0.35, 0.25
    x_t, x_c = rng.binomial(n_t, p1, 20000), rng.binomial(n_c, p0, 20000)
    pooled = (x_t + x_c) / (n_t + n_c)
    z = (x_t / n_t - x_c / n_c) / np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    assert power_two_proportions(n_t, n_c, p0, p1) == pytest.approx((np.abs(z) > 1.959964).mean(), abs=0.015)


def test_mde_is_where_power_reaches_the_target():
    result = mde_two_proportions(100, 1000, 0.40)
    assert result.mde == pytest.approx(0.1393, abs=1e-4)
    assert power_two_proportions(100, 1000, 0.40, 0.40 - result.mde) == pytest.approx(0.8, abs=1e-6)
    assert result.detectable_rate == pytest.approx(0.40 - result.mde)
    assert mde_two_proportions(4000, 40000, 0.40).mde < 0.03  # bigger cohorts detect smaller effects
    assert "too small to tell, not no effect" in result.summary()


def test_verdict_says_too_small_to_tell_for_a_small_cohort():
    small = mde_two_proportions(60, 600, 0.33)  # the JDL's minimum cohort
    v = small.verdict(-0.15, 0.09, meaningful_effect=0.05)
    assert v.code == "too_small_to_tell" and "too small to tell" in v.sentence
    assert small.mde > 0.15


@pytest.mark.parametrize("low,high,code", [
    (-0.09, -0.01, "reduction"), (0.01, 0.04, "increase"), (-0.02, 0.015, "no_meaningful_effect"),
    (-0.07, 0.02, "too_small_to_tell"),
])
def test_verdict_codes(low, high, code):
    assert verdict(low, high, 0.05).code == code


def test_bad_input_is_an_error():
    with pytest.raises(OutcomesError, match="base_rate"):
        mde_two_proportions(100, 100, 1.2)
    with pytest.raises(OutcomesError, match="power must"):
        mde_two_proportions(100, 100, 0.3, power=80)
    with pytest.raises(OutcomesError, match="meaningful_effect must be positive"):
        verdict(-0.1, 0.1, 0)
