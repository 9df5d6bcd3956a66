"""Power and minimum detectable effect for comparing two reoffending rates, and a verdict that says
"too small to tell" rather than "no effect" when the cohort could not have shown one.

Power is for the two-sided two-proportion z-test with the pooled variance under the null and the
unpooled variance under the alternative (Fleiss, Levin & Paik 2003, section 4.2). The minimum
detectable effect (MDE) is the smallest change from the base rate found with the stated power
(Bloom 1995). The verdict follows the logic of equivalence testing (Schuirmann 1987): an interval
inside +/- the smallest effect that matters shows no meaningful effect; an interval straddling
both zero and that effect shows nothing either way.

Examples
--------
>>> round(mde_two_proportions(100, 1000, 0.40).mde, 3)
0.139
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from scipy.optimize import brentq
from scipy.stats import norm

from outcomes.errors import OutcomesError
from outcomes.results import Result

__all__ = ["MDEResult", "Verdict", "mde_two_proportions", "power_two_proportions", "verdict"]


def _check(n_treated: float, n_control: float, alpha: float, power: float | None = None) -> None:
    if not (n_treated >= 1 and n_control >= 1):
        raise OutcomesError(f"group sizes must be at least 1, got {n_treated} and {n_control}")
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    if power is not None and not 0 < power < 1:
        raise OutcomesError(f"power must lie between 0 and 1 (e.g. 0.8), got {power}")


def power_two_proportions(n_treated: float, n_control: float, p_control: float, p_treated: float,
                          alpha: float = 0.05) -> float:
    """Power of the two-sided two-proportion z-test to detect ``p_treated`` against ``p_control``.

    Examples
    --------
    >>> round(power_two_proportions(500, 500, 0.30, 0.22), 2)
    0.82
    """
    _check(n_treated, n_control, alpha)
    for p in (p_control, p_treated):
        if not 0 <= p <= 1:
            raise OutcomesError(f"rates must lie between 0 and 1, got {p}")
    z = norm.ppf(1 - alpha / 2)
    pbar = (n_treated * p_treated + n_control * p_control) / (n_treated + n_control)
    se0 = math.sqrt(pbar * (1 - pbar) * (1 / n_treated + 1 / n_control))
    se1 = math.sqrt(p_treated * (1 - p_treated) / n_treated + p_control * (1 - p_control) / n_control)
    if se1 == 0:
        return 1.0 if p_treated != p_control else alpha
    d = abs(p_treated - p_control)
    return float(norm.cdf((d - z * se0) / se1) + norm.cdf((-d - z * se0) / se1))


@dataclass(frozen=True)
class Verdict:
    """A plain-words judgement of an interval: ``code`` is one of "reduction", "increase",
    "no_meaningful_effect", "too_small_to_tell"."""

    code: str
    sentence: str

    def to_dict(self) -> dict:
        return {"code": self.code, "sentence": self.sentence}


def verdict(ci_low: float, ci_high: float, meaningful_effect: float, *, unit: str = "points",
            scale: float = 100.0) -> Verdict:
    """Judge an effect interval against the smallest effect that would matter.

    Parameters
    ----------
    ci_low, ci_high : float
        The ``1 - alpha`` interval of the difference (treated minus comparison), e.g. in proportions.
    meaningful_effect : float
        The smallest change worth knowing about (positive, same units), e.g. 0.05 for 5 points or
        the cohort's minimum detectable effect.
    unit, scale : str, float
        How to print numbers (proportions x 100 as "points" by default).

    Examples
    --------
    >>> verdict(-0.08, 0.03, 0.05).code
    'too_small_to_tell'
    >>> verdict(-0.02, 0.01, 0.05).code
    'no_meaningful_effect'
    """
    if not meaningful_effect > 0:
        raise OutcomesError(f"meaningful_effect must be positive, got {meaningful_effect}")
    if ci_low > ci_high:
        raise OutcomesError(f"interval bounds are the wrong way round: {ci_low} > {ci_high}")
    m = meaningful_effect * scale
    lo, hi = ci_low * scale, ci_high * scale
    span = f"(interval {lo:.1f} to {hi:.1f} {unit})"
    if hi < 0:
        return Verdict("reduction", f"a reduction: the whole interval is below zero {span}")
    if lo > 0:
        return Verdict("increase", f"an increase: the whole interval is above zero {span}")
    if -m < lo and hi < m:
        return Verdict("no_meaningful_effect", f"no effect as large as {m:.1f} {unit}: the interval rules it out {span}")
    return Verdict("too_small_to_tell", f"too small to tell: the interval includes both no effect and an effect of "
                                        f"{m:.1f} {unit} {span}; a larger cohort is needed, not a conclusion of no effect")


@dataclass(frozen=True)
class MDEResult(Result):
    """Minimum detectable effect for a cohort.

    Attributes
    ----------
    mde : float
        Smallest absolute change in the rate detectable with ``power`` (proportion, e.g. 0.06 = 6 points).
    base_rate : float
        Comparison group's rate.
    detectable_rate : float
        ``base_rate - mde`` (or ``+ mde`` for an increase).
    """

    method: ClassVar[str] = "minimum detectable effect, two proportions"
    citation: ClassVar[str] = "Fleiss, Levin & Paik (2003), Statistical Methods for Rates and Proportions, ch. 4"

    mde: float
    base_rate: float
    detectable_rate: float
    n_treated: int
    n_control: int
    alpha: float
    power: float
    direction: str
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return int(self.n_treated + self.n_control)

    @property
    def headline(self) -> str:
        if not math.isfinite(self.mde):
            return (f"With {self.n_treated} treated and {self.n_control} comparison people no change from "
                    f"{100 * self.base_rate:.1f}% could be detected with {100 * self.power:.0f}% power.")
        return (f"With {self.n_treated} treated and {self.n_control} comparison people, a {self.direction} of "
                f"{100 * self.mde:.1f} points from {100 * self.base_rate:.1f}% is the smallest detectable with "
                f"{100 * self.power:.0f}% power at alpha {self.alpha:g}.")

    def verdict(self, ci_low: float, ci_high: float, meaningful_effect: float | None = None) -> Verdict:
        """Judge an interval against ``meaningful_effect`` (default: this cohort's MDE)."""
        return verdict(ci_low, ci_high, self.mde if meaningful_effect is None else meaningful_effect)

    def summary(self) -> str:
        return (f"With {self.n_treated} treated and {self.n_control} comparison people and a base rate of "
                f"{100 * self.base_rate:.1f}%, the smallest {self.direction} detectable with {100 * self.power:.0f}% "
                f"power at alpha {self.alpha:g} is {100 * self.mde:.1f} points ({100 * self.base_rate:.1f}% to "
                f"{100 * self.detectable_rate:.1f}%). Smaller true effects will usually look 'not significant': "
                f"that means too small to tell, not no effect.")

    def _payload(self) -> dict:
        return {"mde": self.mde, "base_rate": self.base_rate, "detectable_rate": self.detectable_rate,
                "n_treated": self.n_treated, "n_control": self.n_control, "power": self.power,
                "direction": self.direction}


def mde_two_proportions(n_treated: int, n_control: int, base_rate: float, *, alpha: float = 0.05,
                        power: float = 0.8, direction: str = "decrease") -> MDEResult:
    """Minimum detectable change from ``base_rate`` for cohorts of ``n_treated`` and ``n_control``.

    Solves ``power_two_proportions(n_t, n_c, base, base -/+ d) = power`` for ``d`` (Fleiss et al. 2003).
    """
    _check(n_treated, n_control, alpha, power)
    if not 0 < base_rate < 1:
        raise OutcomesError(f"base_rate must lie strictly between 0 and 1, got {base_rate}")
    if direction not in ("decrease", "increase"):
        raise OutcomesError(f"direction must be 'decrease' or 'increase', got {direction!r}")
    sign = -1.0 if direction == "decrease" else 1.0
    room = base_rate if direction == "decrease" else 1 - base_rate

    def gap(d: float) -> float:
        return power_two_proportions(n_treated, n_control, base_rate, base_rate + sign * d, alpha) - power

    if gap(room) < 0:
        mde = math.nan  # even the largest possible change would not reach the stated power
    else:
        mde = float(brentq(gap, 1e-9, room, xtol=1e-10))
    return MDEResult(mde, base_rate, base_rate + sign * mde, int(n_treated), int(n_control), alpha, power, direction)
