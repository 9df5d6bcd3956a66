"""The Justice Data Lab's presentation rules (Ministry of Justice, Justice Data Lab methodology, 2023).

* Each measure is said as "For 100 typical people in the treatment group, ..." with the comparison
  group's equivalent and the difference with its interval.
* An inconclusive result (the interval includes no change) says "the true effect could be between a
  and b", never "no effect".
* A non-significant result says how many more people would be needed to detect the smallest effect
  that matters (:func:`extra_people_needed`).
* Small numbers: a cohort of at least :data:`MIN_COHORT` (60) treated people; time to reoffence only
  with at least :data:`MIN_REOFFENDERS_FOR_TIME` (30) reoffenders; breakdown cells only where
  ``n x p > 10`` (:func:`cell_allowed`).
"""

from __future__ import annotations

import math

from outcomes.results import Estimate

__all__ = ["MIN_COHORT", "MIN_REOFFENDERS_FOR_TIME", "MIN_CELL_EXPECTED", "cell_allowed", "cohort_allowed",
           "time_allowed", "per_100_sentence", "extra_people_needed"]

MIN_COHORT = 60
MIN_REOFFENDERS_FOR_TIME = 30
MIN_CELL_EXPECTED = 10


def cohort_allowed(n_treated: int) -> bool:
    """A JDL result is published only for a treatment group of at least 60 people."""
    return int(n_treated) >= MIN_COHORT


def time_allowed(n_reoffenders: int) -> bool:
    """Time to first reoffence is shown only when at least 30 people reoffended."""
    return int(n_reoffenders) >= MIN_REOFFENDERS_FOR_TIME


def cell_allowed(n: int, p: float) -> bool:
    """A breakdown cell (n people, proportion p) is shown only where both ``n p`` and ``n (1 - p)`` exceed 10."""
    return bool(n * p > MIN_CELL_EXPECTED and n * (1 - p) > MIN_CELL_EXPECTED)


def _count(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}".rstrip("0").rstrip(".")


def per_100_sentence(treated_mean: float, control_mean: float, effect: Estimate, *, what: str = "reoffended",
                     count: bool = False, unit_noun: str = "proven reoffences", period: str = "within a year") -> str:
    """The JDL sentence for a per-person measure, scaled to 100 people.

    ``count=False``: a 0/1 outcome ("34 of them reoffended ..."); ``count=True``: a count per person
    ("they committed 120 proven reoffences ..."). The difference is "X fewer/more" when the interval
    excludes no change, else "the true effect could be between a fewer and b more".

    Examples
    --------
    >>> e = Estimate.normal(-0.05, 0.015, 0.05)
    >>> per_100_sentence(0.34, 0.39, e)
    'For 100 typical people in the treatment group, 34 reoffended within a year, against 39 for 100 similar people who were not served: 5 fewer (95% CI 2.1 to 7.9 fewer).'
    """
    t, c = 100 * treated_mean, 100 * control_mean
    lo, hi, d = 100 * effect.ci_low, 100 * effect.ci_high, 100 * effect.estimate
    lead = (f"For 100 typical people in the treatment group, {_count(t)} {unit_noun} were committed {period}, "
            f"against {_count(c)} for 100 similar people who were not served" if count else
            f"For 100 typical people in the treatment group, {_count(t)} {what} {period}, against {_count(c)} for "
            f"100 similar people who were not served")
    noun = "" if not count else f" {unit_noun}"

    def side(x: float) -> str:
        return f"{_count(abs(x))} {'fewer' if x < 0 else 'more'}"

    if effect.significant and (hi < 0 or lo > 0):
        direction = "fewer" if d < 0 else "more"
        a, b = sorted([abs(lo), abs(hi)])
        return f"{lead}: {_count(abs(d))} {direction}{noun} ({effect.level} CI {_count(a)} to {_count(b)} {direction})."
    return (f"{lead}. The difference is inconclusive: the true effect could be between {side(lo)} and {side(hi)}"
            f"{noun} per 100 people ({effect.level} CI).")


def extra_people_needed(n_treated: int, n_control: int, base_rate: float, meaningful_effect: float, *,
                        alpha: float = 0.05, power: float = 0.8) -> int | None:
    """How many more treated people (keeping the ratio of comparison to treated people) would be needed to
    detect a change of ``meaningful_effect`` from ``base_rate`` with ``power``; 0 if the cohort already can,
    None when no cohort size could (the change would take the rate below 0 or above 1)."""
    from scipy.optimize import brentq

    from outcomes.power import power_two_proportions

    target = base_rate - meaningful_effect
    if not 0 <= target <= 1 or not 0 < base_rate < 1 or meaningful_effect <= 0:
        return None
    ratio = n_control / n_treated

    def gap(n: float) -> float:
        return power_two_proportions(n, max(n * ratio, 1.0), base_rate, target, alpha) - power

    if gap(n_treated) >= 0:
        return 0
    high = float(n_treated)
    while gap(high) < 0:
        high *= 2
        if high > 1e9:
            return None
    needed = brentq(gap, n_treated, high, xtol=0.5)
    return int(math.ceil(needed)) - int(n_treated)
