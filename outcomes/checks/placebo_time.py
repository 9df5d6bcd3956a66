"""Placebo in time: the method with a fake intervention halfway through the pre-intervention period.

There was no change then, so a sound analysis should find none: an interval that excludes zero (ITS) or a
fake change that stands out from the placebo areas (synthetic control) warns that the method finds
changes where there are none (a trend break, seasonality or a poor fit the model does not capture).
"""

from __future__ import annotations

import math

import pandas as pd

from outcomes.checks.base import CheckResult
from outcomes.errors import OutcomesError
from outcomes.results import Estimate, level

MIN_EACH_SIDE = 6


def its_placebo_in_time(data: pd.DataFrame, time: str, outcome: str, intervention, **fit_options) -> CheckResult:
    """Refit the ITS on the pre-intervention periods only, with a fake intervention at their midpoint.

    ``fit_options`` are passed to :func:`outcomes.its.fit_its` (family, denominator, seasonality, scale, alpha...).
    """
    from outcomes.its import _time_index, _to_position, fit_its

    alpha = fit_options.get("alpha", 0.05)
    order, labels, kind = _time_index(data[time], time)
    ordered = data.iloc[order].reset_index(drop=True)
    first = intervention[0] if isinstance(intervention, (list, tuple)) else intervention
    cut = _to_position(first, kind, labels)
    if cut < 2 * MIN_EACH_SIDE:
        return CheckResult("placebo in time", "interrupted time series", None, None, pd.DataFrame(),
                           f"No placebo-in-time check: only {cut} periods before the change, and a fake change "
                           f"needs {MIN_EACH_SIDE} on each side.", alpha, cut)
    fake = cut // 2
    pre = ordered.iloc[:cut]
    fake_label = labels[fake] if kind == "month" else int(pre[time].iloc[fake])
    result = fit_its(pre, time, outcome, fake_label, **fit_options)
    e = result.post_effect
    scale, unit = (100.0, " points") if result.family == "binomial" else (1.0, "")
    est = Estimate(e["absolute"], math.nan, e["absolute_low"], e["absolute_high"], math.nan, alpha)
    passed = bool(est.ci_low <= 0 <= est.ci_high)
    span = f"{est.estimate * scale:+.3g}{unit} ({level(alpha)} CI {est.ci_low * scale:.3g} to {est.ci_high * scale:.3g})"
    sentence = (f"Placebo in time: a fake change at {labels[fake]}, before the real one, shows {span}: "
                + ("no change, as it should; the analysis does not invent changes in this series."
                   if passed else "a change where there was none, so the real estimate may reflect a trend or "
                                  "season the model misses; read it with caution."))
    table = pd.DataFrame([{"fake_intervention": labels[fake], "estimate": est.estimate, "ci_low": est.ci_low,
                           "ci_high": est.ci_high, "periods": cut}])
    return CheckResult("placebo in time", "interrupted time series", passed, est, table, sentence, alpha, cut)


def synth_placebo_in_time(data: pd.DataFrame, unit: str, time: str, outcome: str, treated, intervention, *,
                          alpha: float = 0.05, real_gap: float | None = None) -> CheckResult:
    """Refit the synthetic control on the pre-intervention periods with a fake intervention at their midpoint.

    With enough areas (``1 / areas <= alpha``) it passes when the fake change does not stand out from the
    placebo areas; with fewer, when its average gap is under half the real one (``real_gap``).
    """
    from outcomes.synth import MIN_PRE_PERIODS, synthetic_control

    times = sorted(pd.unique(data[time]))
    pre_times = [t for t in times if t < intervention]
    if len(pre_times) < 2 * MIN_PRE_PERIODS:
        return CheckResult("placebo in time", "synthetic control", None, None, pd.DataFrame(),
                           f"No placebo-in-time check: only {len(pre_times)} periods before the change.", alpha,
                           len(pre_times))
    fake = pre_times[len(pre_times) // 2]
    pre = data[data[time].isin(pre_times)]
    try:
        result = synthetic_control(pre, unit, time, outcome, treated, fake, alpha=alpha)
    except OutcomesError as exc:
        return CheckResult("placebo in time", "synthetic control", None, None, pd.DataFrame(),
                           f"No placebo-in-time check: {exc}.", alpha, len(pre))
    n = result.n_units
    est = result.effect
    if 1 / n <= alpha:
        passed = bool(result.placebo_p_value > alpha)
        rule = f"placebo p = {result.placebo_p_value:.3f}, rank {result.rank} of {n}"
    elif real_gap is not None:
        passed = bool(abs(result.average_post_gap) < 0.5 * abs(real_gap))
        rule = (f"with {n} areas the placebo test cannot reach alpha {alpha:g}, so it is judged against half the real "
                f"gap ({abs(real_gap):.3g})")
    else:
        passed, rule = None, f"with {n} areas the placebo test cannot reach alpha {alpha:g}"
    verdict = ("no change, as it should" if passed else "a change where there was none: the synthetic control may "
               "not track this area well" if passed is False else "not conclusive")
    sentence = (f"Placebo in time: a fake change at {fake}, before the real one, gives a gap of "
                f"{result.average_post_gap:+.3g} ({rule}): {verdict}.")
    table = pd.DataFrame([{"fake_intervention": fake, "average_post_gap": result.average_post_gap,
                           "placebo_p_value": result.placebo_p_value, "rank": result.rank, "areas": n}])
    return CheckResult("placebo in time", "synthetic control", passed, est, table, sentence, alpha, result.nobs)
