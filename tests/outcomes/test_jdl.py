"""Justice Data Lab presentation: per-100 sentences, inconclusive wording, people needed, small numbers."""

import math

import pytest

from outcomes.jdl import cell_allowed, cohort_allowed, extra_people_needed, per_100_sentence, time_allowed
from outcomes.power import mde_two_proportions
from outcomes.results import Estimate


def test_significant_reduction_per_100_people():
    e = Estimate(-0.05, 0.015, -0.079, -0.021, 0.001, 0.05)
    s = per_100_sentence(0.34, 0.39, e)
    assert s == ("For 100 typical people in the treatment group, 34 reoffended within a year, against 39 for 100 "
                 "similar people who were not served: 5 fewer (95% CI 2.1 to 7.9 fewer).")


def test_inconclusive_says_could_be_between_never_no_effect():
    e = Estimate(-0.02, 0.03, -0.079, 0.039, 0.5, 0.05)
    s = per_100_sentence(0.37, 0.39, e)
    assert "the true effect could be between 7.9 fewer and 3.9 more per 100 people" in s
    assert "no effect" not in s


def test_count_measure_per_100_people():
    e = Estimate(-0.31, 0.1, -0.5, -0.12, 0.002, 0.05)
    s = per_100_sentence(1.2, 1.51, e, count=True)
    assert s.startswith("For 100 typical people in the treatment group, 120 proven reoffences were committed within "
                        "a year, against 151 for 100 similar people")
    assert "31 fewer proven reoffences (95% CI 12 to 50 fewer)" in s


def test_extra_people_needed_reaches_the_power_it_promises():
    extra = extra_people_needed(200, 1000, 0.40, 0.05)
    assert extra > 0
    # With that many more (same ratio), the MDE is the meaningful change; with 5% fewer it is not yet.
    n = 200 + extra
    assert mde_two_proportions(n, 5 * n, 0.40).mde == pytest.approx(0.05, abs=2e-4)
    assert mde_two_proportions(int(0.95 * n), 5 * int(0.95 * n), 0.40).mde > 0.05
    assert extra_people_needed(20000, 100000, 0.40, 0.05) == 0
    assert extra_people_needed(200, 1000, 0.03, 0.05) is None


def test_small_number_rules():
    assert not cohort_allowed(59) and cohort_allowed(60)
    assert not time_allowed(29) and time_allowed(30)
    assert cell_allowed(100, 0.2) and not cell_allowed(100, 0.1) and not cell_allowed(40, 0.25)
    assert not cell_allowed(100, 0.95) and math.isclose(100 * 0.11, 11.0)
