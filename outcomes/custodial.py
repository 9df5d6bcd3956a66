"""Custodial sentence for the first proven reoffence: the Justice Data Lab's fourth headline measure.

The proportion of reoffenders whose first proven reoffence led to a custodial sentence, in the treatment
group against a matched comparison group of reoffenders (propensity-score matching among the people who
reoffended, as the JDL does). JDL rules: at least 30 reoffenders in the treatment group, and the measure
is shown only where each group's count and proportion give ``n x p > 10`` and ``n x (1 - p) > 10``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from outcomes.errors import OutcomesError
from outcomes.jdl import MIN_REOFFENDERS_FOR_TIME, cell_allowed
from outcomes.matching import MatchResult, match
from outcomes.results import Estimate, Result

__all__ = ["CustodialResult", "custodial_first_reoffence"]


@dataclass(frozen=True, eq=False)
class CustodialResult(Result):
    """The matched comparison of custody for the first reoffence, among reoffenders."""

    method: ClassVar[str] = "custodial sentence for the first proven reoffence (matched reoffenders)"
    citation: ClassVar[str] = "Ministry of Justice, Justice Data Lab methodology (2023); matching as outcomes.matching"

    matched: MatchResult = field(repr=False)
    n_reoffenders: int
    n_treated_reoffenders: int
    reportable: bool
    warnings: tuple[str, ...] = ()

    @property
    def alpha(self) -> float:
        return self.matched.alpha

    @property
    def nobs(self) -> int:
        return self.matched.nobs

    @property
    def effect(self) -> Estimate:
        return self.matched.att

    def estimates(self) -> dict:
        return {"difference": self.matched.att}

    @property
    def headline(self) -> str:
        m, e = self.matched, self.matched.att
        if not self.reportable:
            return ("The custodial-sentence measure is not shown: the counts are too small for the Justice Data Lab's "
                    "rule (each group needs more than 10 people with and without custody).")
        t, c = 100 * m.treated_mean, 100 * m.control_mean
        lead = (f"For 100 typical people in the treatment group who reoffended, {t:.0f} were sent to custody for their "
                f"first proven reoffence, against {c:.0f} for 100 similar reoffenders who were not served")
        lo, hi = 100 * e.ci_low, 100 * e.ci_high
        if e.significant and (hi < 0 or lo > 0):
            word = "fewer" if e.estimate < 0 else "more"
            a, b = sorted([abs(lo), abs(hi)])
            return f"{lead}: {abs(100 * e.estimate):.1f} {word} ({e.level} CI {a:.1f} to {b:.1f} {word})."
        return (f"{lead}. The difference is inconclusive: the true effect could be between "
                f"{abs(lo):.1f} {'fewer' if lo < 0 else 'more'} and {abs(hi):.1f} {'fewer' if hi < 0 else 'more'} "
                f"per 100 reoffenders ({e.level} CI).")

    def _payload(self) -> dict:
        return {"treated_rate": self.matched.treated_mean, "comparison_rate": self.matched.control_mean,
                "difference": self.matched.att.to_dict(), "n_reoffenders": self.n_reoffenders,
                "n_treated_reoffenders": self.n_treated_reoffenders, "n_matched": self.matched.n_matched,
                "reportable": self.reportable}


def custodial_first_reoffence(data: pd.DataFrame, treatment: str, reoffended: str, custodial: str,
                              covariates: list[str], *, alpha: float = 0.05, ratio: int = 5,
                              replace: bool = True) -> CustodialResult:
    """Match treated reoffenders to comparison reoffenders and compare custody for the first reoffence.

    Raises
    ------
    OutcomesError
        Fewer than 30 treated reoffenders, or a reoffender without a custodial value.
    """
    for column in (treatment, reoffended, custodial):
        if column not in data.columns:
            raise OutcomesError(f"column {column!r} not found; the data has: {', '.join(map(str, data.columns[:30]))}")
    offenders = data[data[reoffended].astype(int) == 1]
    missing = offenders[custodial].isna()
    if missing.all():
        raise OutcomesError(f"no reoffender has a {custodial!r} value: the return predates spec v3 or leaves it blank")
    if missing.any():
        raise OutcomesError(f"{int(missing.sum())} reoffender(s) have no {custodial!r} value (e.g. row "
                            f"{offenders.index[missing.to_numpy()][0]!r}); fill it in (1 custody, 0 not) for every "
                            f"reoffender")
    treated = int(offenders[treatment].astype(int).sum())
    if treated < MIN_REOFFENDERS_FOR_TIME:
        raise OutcomesError(f"only {treated} reoffenders in the treatment group; the Justice Data Lab needs at least "
                            f"{MIN_REOFFENDERS_FOR_TIME} for the custodial measure")
    frame = offenders.assign(**{custodial: offenders[custodial].astype(float).astype(int),
                                treatment: offenders[treatment].astype(int)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = match(frame, treatment, custodial, covariates, caliper=0.2, ratio=ratio, replace=replace,
                       alpha=alpha, outcome_label="were sent to custody")
    reportable = (cell_allowed(result.n_matched, result.treated_mean)
                  and cell_allowed(result.n_control_used, result.control_mean))
    notes = [str(w.message) for w in caught] + list(result.warnings)
    if not reportable:
        notes.append("counts too small to show under the Justice Data Lab's n x p > 10 rule")
    return CustodialResult(result, len(offenders), treated, reportable, tuple(dict.fromkeys(notes)))
