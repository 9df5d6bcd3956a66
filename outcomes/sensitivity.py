"""Sensitivity to unmeasured confounding: E-values and Rosenbaum bounds.

Every comparison-group finding rests on "no unmeasured confounding". These say how strong a hidden
factor would have to be to explain the finding away.

* **E-value** (VanderWeele & Ding 2017, Ann Intern Med 167:268): the minimum strength of association,
  on the risk-ratio scale, that an unmeasured confounder would need with both the treatment and the
  outcome to explain away the observed risk ratio: ``RR + sqrt(RR (RR - 1))`` for ``RR >= 1`` (use ``1/RR``
  below 1). For the interval, the same formula at the limit nearer to 1 (1 if the interval includes 1).
  A difference in means is first put on the risk-ratio scale by ``RR = exp(0.91 d)`` with ``d`` the
  standardised difference (VanderWeele & Ding 2017, eq. for continuous outcomes).
* **Rosenbaum bounds** for matched pairs with a binary outcome (Rosenbaum 2002, Observational Studies,
  section 4.3): among discordant pairs, if a hidden factor makes one person up to ``Gamma`` times more
  likely to be treated than their match, the number of pairs in which the treated person had the better
  outcome is at most Binomial(D, Gamma / (1 + Gamma)) under no effect. :func:`rosenbaum_gamma` is the
  Gamma at which the upper bound on the one-sided p-value reaches ``alpha / 2`` (the finding stops being
  significant at the two-sided ``alpha``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, norm

from outcomes.errors import OutcomesError

__all__ = ["e_value", "e_value_interval", "risk_ratio_from_difference", "rosenbaum_p_upper", "rosenbaum_gamma",
           "sensitivity_sentence"]


def e_value(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): ``RR + sqrt(RR (RR - 1))``, with ``1/RR`` below 1.

    Examples
    --------
    >>> round(e_value(0.80), 2)
    1.81
    >>> round(e_value(3.9), 2)
    7.26
    """
    if not rr > 0 or not math.isfinite(rr):
        raise OutcomesError(f"a risk ratio must be positive and finite, got {rr}")
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


def e_value_interval(rr: float, low: float, high: float) -> float:
    """E-value of the interval limit nearer to no effect (1 when the interval includes 1)."""
    if low > high:
        raise OutcomesError(f"interval bounds are the wrong way round: {low} > {high}")
    if low <= 1 <= high:
        return 1.0
    return e_value(high if rr < 1 else low)


def risk_ratio_from_difference(treated_mean: float, control_mean: float, ci_low: float, ci_high: float, *,
                               binary_or_count: bool, control_sd: float | None = None) -> tuple[float, float, float]:
    """A treated-minus-comparison difference (and its interval) as a risk ratio and interval.

    For a rate or count: ``(control + d) / control``, holding the comparison mean fixed. For any other
    outcome: ``exp(0.91 d / sd)`` with ``sd`` the comparison group's standard deviation.
    """
    if binary_or_count:
        if not control_mean > 0:
            raise OutcomesError("the comparison group's mean must be positive to form a risk ratio")
        floor = 1e-9
        return (max(treated_mean, floor) / control_mean, max(control_mean + ci_low, floor) / control_mean,
                max(control_mean + ci_high, floor) / control_mean)
    if not control_sd or control_sd <= 0:
        raise OutcomesError("a continuous outcome needs the comparison group's standard deviation")
    d = treated_mean - control_mean
    return (math.exp(0.91 * d / control_sd), math.exp(0.91 * ci_low / control_sd), math.exp(0.91 * ci_high / control_sd))


def rosenbaum_p_upper(favourable: int, discordant: int, gamma: float, *, method: str = "exact") -> float:
    """Upper bound on the one-sided p-value for ``favourable`` of ``discordant`` pairs under hidden bias ``gamma``.

    ``method="exact"``: the binomial tail. ``method="normal"``: the large-sample approximation with a
    continuity correction, as in Rosenbaum's tables.
    """
    if gamma < 1:
        raise OutcomesError(f"Gamma must be at least 1, got {gamma}")
    if not 0 <= favourable <= discordant:
        raise OutcomesError(f"favourable pairs ({favourable}) must lie between 0 and the discordant pairs ({discordant})")
    if discordant == 0:
        return 1.0
    p = gamma / (1 + gamma)
    if method == "exact":
        return float(binom.sf(favourable - 1, discordant, p))
    if method == "normal":
        mean, sd = discordant * p, math.sqrt(discordant * p * (1 - p))
        return float(norm.sf((favourable - 0.5 - mean) / sd))
    raise OutcomesError(f"method must be 'exact' or 'normal', got {method!r}")


def rosenbaum_gamma(favourable: int, discordant: int, alpha: float = 0.05, *, method: str = "exact") -> float:
    """The Gamma at which the upper-bound p-value reaches ``alpha / 2`` (1.0 if not significant even at Gamma = 1).

    Examples
    --------
    Hammond's smoking and lung-cancer pairs (Rosenbaum 2002, section 4.3.2): 110 discordant pairs in which
    only the smoker died of lung cancer, 12 in which only the non-smoker did.

    >>> 5 < rosenbaum_gamma(110, 122, 0.10) < 6
    True
    """
    target = alpha / 2
    if rosenbaum_p_upper(favourable, discordant, 1.0, method=method) >= target:
        return 1.0

    def gap(log_gamma: float) -> float:
        return rosenbaum_p_upper(favourable, discordant, math.exp(log_gamma), method=method) - target

    high = math.log(2.0)
    while gap(high) < 0:
        high *= 2
        if high > math.log(1e6):
            return math.inf
    return float(math.exp(brentq(gap, 0.0, high, xtol=1e-10)))


def pair_counts(treated_outcome: np.ndarray, control_outcome: np.ndarray, *, reduction: bool) -> tuple[int, int]:
    """(favourable, discordant) pairs for a binary outcome: favourable = the treated person did better
    (no event while the control had one, when ``reduction``)."""
    t, c = np.asarray(treated_outcome, dtype=bool), np.asarray(control_outcome, dtype=bool)
    only_control, only_treated = int((~t & c).sum()), int((t & ~c).sum())
    return (only_control if reduction else only_treated), only_control + only_treated


def sensitivity_sentence(e_point: float, e_ci: float, gamma: float | None = None, *, outcome: str = "reoffend") -> str:
    """The evidence pack's plain words for an E-value (and a Rosenbaum Gamma when there is one)."""
    if e_point <= 1.0 + 1e-9:
        return "There is no difference for an unmeasured factor to explain away."
    text = (f"An unmeasured factor would need to make people {e_point:.1f} times more likely to be served and "
            f"{e_point:.1f} times more likely to {outcome} to explain this difference away")
    if e_ci > 1.0 + 1e-9:
        text += f"; {e_ci:.1f} times would be enough to make the interval include no difference."
    else:
        text += "; but the interval already includes no difference, so a weak factor could too."
    if gamma is not None and gamma > 1.0:
        text += (f" In matched pairs, a hidden factor making one person {gamma:.2f} times as likely as their match "
                 f"to be served would make the difference no longer significant (Rosenbaum bounds).")
    return text
