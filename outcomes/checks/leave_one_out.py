"""Leave one donor out: the synthetic control refitted without each donor that carries weight.

If the effect hinges on one donor area (its own shock, or a data error), leaving it out moves the estimate a
lot; a robust finding keeps its sign and rough size (Abadie, Diamond & Hainmueller 2015, section 4).
"""

from __future__ import annotations

import math

import pandas as pd

from outcomes.checks.base import CheckResult
from outcomes.errors import OutcomesError
from outcomes.results import Estimate

MIN_WEIGHT = 0.01


def synth_leave_one_out(data: pd.DataFrame, unit: str, time: str, outcome: str, treated, intervention, *,
                        alpha: float = 0.05, min_weight: float = MIN_WEIGHT) -> CheckResult:
    """Refit without each donor whose weight is at least ``min_weight``; report the range of average gaps."""
    from outcomes.synth import synthetic_control

    main = synthetic_control(data, unit, time, outcome, treated, intervention, placebos=False, alpha=alpha)
    donors = [(d, w) for d, w in sorted(main.weights.items(), key=lambda kv: -kv[1]) if w >= min_weight]
    rows = []
    for donor, weight in donors:
        try:
            refit = synthetic_control(data[data[unit] != donor], unit, time, outcome, treated, intervention,
                                      placebos=False, alpha=alpha)
        except OutcomesError:
            continue
        rows.append({"donor_left_out": donor, "weight": weight, "average_post_gap": refit.average_post_gap,
                     "pre_rmspe": refit.pre_rmspe})
    table = pd.DataFrame(rows, columns=["donor_left_out", "weight", "average_post_gap", "pre_rmspe"])
    if table.empty:
        return CheckResult("leave one donor out", "synthetic control", None, None, table,
                           "No leave-one-out check: no donor could be left out.", alpha, main.nobs)
    low, high = float(table["average_post_gap"].min()), float(table["average_post_gap"].max())
    est = Estimate(main.average_post_gap, math.nan, min(low, main.average_post_gap),
                   max(high, main.average_post_gap), math.nan, alpha)
    sign = math.copysign(1.0, main.average_post_gap)
    flips = table[(table["average_post_gap"] * sign) <= 0]
    passed = flips.empty
    span = (f"Leaving out each of the {len(table)} donor areas with weight in turn, the average gap ranges from "
            f"{low:+.3g} to {high:+.3g} (all donors: {main.average_post_gap:+.3g})")
    sentence = (span + (": its sign never changes, so no single donor drives the result." if passed else
                        f": it changes sign without {', '.join(map(str, flips['donor_left_out']))}, so the result "
                        f"rests on that donor."))
    return CheckResult("leave one donor out", "synthetic control", passed, est, table, sentence, alpha, main.nobs)
