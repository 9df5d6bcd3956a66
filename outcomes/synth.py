"""Synthetic control for one area that changed its commissioning, with placebo-in-space inference.

The synthetic area is a convex combination of donor areas (weights >= 0, summing to 1) chosen to
track the treated area's outcome over every pre-intervention period (Abadie, Diamond & Hainmueller
2010, JASA 105:493, with all pre-period outcomes as predictors and equal predictor weights). The
gap after the intervention estimates the effect. Inference is by placebos in space: refit with each
donor as if it were treated, and rank the treated area's post/pre RMSPE ratio among all areas
(ADH 2010 section 2.3; Abadie 2021, JEL 59:391); the p-value is that rank over the number of areas.
The treated area is left out of the placebos' donor pools (it is affected by the intervention).

The interval is the Firpo & Possebom (2018, J Causal Inference 6:20160026) confidence set: the
constant effects ``c`` that the same placebo test does not reject at ``alpha`` when ``c`` is taken off
the treated area's post-period gaps. With the RMSPE-ratio statistic the set has a closed form,
``mean gap +/- sqrt((R_m * pre_rmspe)^2 - var(post gaps))``, where ``R_m`` is the m-th largest placebo
ratio and ``m`` the fewest placebos that must be at least as extreme for ``p > alpha``. With too few
areas (``1 / areas > alpha``) no effect can be rejected and the interval is unbounded.

Examples
--------
A synthetic panel of 8 areas (``outcomes.examples``) in which West Yorkshire drops 6 points from 2024-09:

>>> from outcomes.examples import area_panel
>>> result = synthetic_control(area_panel(), "area", "month", "rate", treated="West Yorkshire",
...                            intervention="2024-09")
>>> round(result.placebo_p_value, 3)  # West Yorkshire's gap is the largest of the 8: p = 1/8
0.125
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize, nnls

from outcomes._groups_common import numeric_column, require_columns, require_complete
from outcomes.errors import OutcomesError
from outcomes.results import Estimate, Result, level, plain

__all__ = ["SynthResult", "synthetic_control", "simplex_weights"]

MIN_PRE_PERIODS = 3
MIN_DONORS = 2


def simplex_weights(target: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0, sum(w) = 1`` minimising ``||target - donors @ w||^2``.

    A non-negative least-squares start with a heavily weighted sum-to-one row, polished by SLSQP
    with the exact constraints (the quadratic programme of ADH 2010).

    Parameters
    ----------
    target : ndarray (T,)
        The treated unit's pre-period series.
    donors : ndarray (T, J)
        The donors' pre-period series, one column per donor.
    """
    T, J = donors.shape
    scale = max(float(np.abs(donors).max()), float(np.abs(target).max()), 1e-12)
    A, b = donors / scale, target / scale
    big = 1e3 * math.sqrt(T)
    w0, _ = nnls(np.vstack([A, np.full((1, J), big)]), np.r_[b, big])
    w0 = np.clip(w0, 0, None)
    w0 = w0 / w0.sum() if w0.sum() > 0 else np.full(J, 1 / J)
    AtA, Atb = A.T @ A, A.T @ b
    result = minimize(lambda w: float(w @ AtA @ w - 2 * Atb @ w), w0, jac=lambda w: 2 * (AtA @ w - Atb),
                      method="SLSQP", bounds=[(0, 1)] * J,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(J)}],
                      options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(result.x if result.success else w0, 0, None)
    return w / w.sum()


def _rmspe(gaps: np.ndarray) -> float:
    return float(np.sqrt(np.mean(gaps**2)))


@dataclass(frozen=True, eq=False)
class SynthResult(Result):
    """A synthetic-control fit and its placebo-in-space inference.

    Attributes
    ----------
    weights : dict
        Donor -> weight (convex; all donors, including zeros).
    pre_rmspe, post_rmspe : float
        Root mean squared gap before and after the intervention.
    ratio : float
        post_rmspe / pre_rmspe for the treated unit.
    gaps : pandas.DataFrame
        ``time``, ``actual``, ``synthetic``, ``gap``, ``post`` for every period.
    average_post_gap : float
        Mean gap after the intervention (the effect estimate).
    placebo_p_value : float or None
        Share of all units (treated plus placebos) whose RMSPE ratio is at least the treated unit's;
        its smallest possible value is 1 / (number of units). None when placebos were not run.
    placebos : pandas.DataFrame
        ``unit``, ``pre_rmspe``, ``post_rmspe``, ``ratio``, ``average_post_gap`` for each placebo fit.
    alpha : float
        Level of the placebo test and of the interval.
    ci_low, ci_high : float
        Firpo & Possebom (2018) confidence set for a constant effect (infinite when too few areas,
        NaN when no constant effect is consistent with the data).
    interval_method : str
        How the interval was made, in words.
    """

    method: ClassVar[str] = "synthetic control (Abadie, Diamond & Hainmueller 2010), placebo-in-space inference"
    citation: ClassVar[str] = ("Abadie, Diamond & Hainmueller (2010), JASA 105:493; Abadie (2021), JEL 59:391; "
                               "interval: Firpo & Possebom (2018), J Causal Inference 6:20160026")

    treated: object
    intervention: object
    weights: dict
    pre_rmspe: float
    post_rmspe: float
    ratio: float
    gaps: pd.DataFrame = field(repr=False)
    average_post_gap: float
    placebo_p_value: float | None
    rank: int | None
    placebos: pd.DataFrame = field(repr=False)
    warnings: tuple[str, ...] = ()
    alpha: float = 0.05
    ci_low: float = math.nan
    ci_high: float = math.nan
    interval_method: str = ""

    @property
    def nobs(self) -> int:
        return int(len(self.gaps) * (len(self.placebos) + 1)) if len(self.placebos) else int(len(self.gaps))

    @property
    def n_units(self) -> int:
        return len(self.placebos) + 1

    @property
    def effect(self) -> Estimate:
        p = math.nan if self.placebo_p_value is None else self.placebo_p_value
        return Estimate(self.average_post_gap, math.nan, self.ci_low, self.ci_high, p, self.alpha)

    def estimates(self) -> dict:
        return {"average_post_gap": self.effect}

    def _interval_text(self) -> str:
        if math.isinf(self.ci_low) or math.isinf(self.ci_high):
            return (f"with {self.n_units} areas no size of effect can be ruled out at alpha {self.alpha:g}, so the "
                    f"interval is unbounded")
        if math.isnan(self.ci_low):
            return "no constant effect fits the post-period gaps as well as the placebos fit theirs"
        return (f"the true effect could be between {self.ci_low:.3g} and {self.ci_high:.3g} ({level(self.alpha)} "
                f"placebo-based interval)")

    @property
    def headline(self) -> str:
        """One sentence, right at every rank: "larger than in n - rank of n - 1 placebo areas"."""
        gap = f"{self.treated} differed from its synthetic control by {self.average_post_gap:+.3g} on average after " \
              f"{self.intervention}"
        if self.placebo_p_value is None:
            return gap + " (no placebo test was run, so no interval or significance can be given)."
        n, r = self.n_units, self.rank
        beaten = f"its post/pre-period fit ratio was larger than in {n - r} of {n - 1} placebo areas (rank {r} of {n}, " \
                 f"p = {self.placebo_p_value:.3f})"
        if self.placebo_p_value <= self.alpha:
            return f"{gap}: a change beyond the placebo areas: {beaten}; {self._interval_text()}."
        if r == 1:
            return (f"{gap}: the largest change of all {n} areas, but with {n} areas the placebo test cannot reach "
                    f"alpha {self.alpha:g} ({beaten}); {self._interval_text()}.")
        return f"{gap}: not distinguishable from the placebo areas ({beaten}); {self._interval_text()}."

    def summary(self) -> str:
        top = sorted(self.weights.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k} {v:.3f}" for k, v in top if v >= 0.001)
        lines = [f"Synthetic control for {self.treated!r}, intervention at {self.intervention!r}",
                 f"  donor weights: {shown}",
                 f"  pre-period RMSPE {self.pre_rmspe:.4g}; post-period RMSPE {self.post_rmspe:.4g}; ratio {self.ratio:.3g}",
                 f"  average post-intervention gap {self.average_post_gap:.4g}"]
        if self.placebo_p_value is not None:
            lines.append(f"  placebo-in-space: rank {self.rank} of {len(self.placebos) + 1} by RMSPE ratio, "
                         f"p = {self.placebo_p_value:.3g}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _payload(self) -> dict:
        return {
            "weights": {str(k): float(v) for k, v in self.weights.items()},
            "pre_rmspe": self.pre_rmspe,
            "post_rmspe": self.post_rmspe,
            "ratio": self.ratio,
            "gaps": [{"time": plain(r.time), "gap": float(r.gap)} for r in self.gaps.itertuples()],
            "average_post_gap": self.average_post_gap,
            "placebo_p_value": self.placebo_p_value,
            "rank": self.rank,
            "n_units": len(self.placebos) + 1,
            "ci_low": plain(self.ci_low),
            "ci_high": plain(self.ci_high),
            "interval_method": self.interval_method,
        }


def synthetic_control(data: pd.DataFrame, unit: str, time: str, outcome: str, treated, intervention, *,
                      placebos: bool = True, alpha: float = 0.05) -> SynthResult:
    """Synthetic control of ADH (2010) with placebo-in-space rank inference.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel: one row per unit and time, balanced (every unit observed at every time).
    unit, time, outcome : str
        Columns.
    treated
        The value of ``unit`` that changed.
    intervention
        The first time at or after which the treated unit is affected (compared with ``time`` values).
    placebos : bool
        Run the placebo-in-space fits (one per donor).
    alpha : float
        Level of the placebo test and of the interval.

    Returns
    -------
    SynthResult

    Raises
    ------
    OutcomesError
        Missing values, a missing treated unit, an unbalanced panel, fewer than 3 pre-periods or 2 donors.
    """
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1 (e.g. 0.05), got {alpha}")
    require_columns(data, [unit, time, outcome])
    require_complete(data, [unit, time, outcome])
    numeric_column(data[outcome], "outcome")
    if data.duplicated([unit, time]).any():
        raise OutcomesError(f"{int(data.duplicated([unit, time]).sum())} rows repeat a ({unit}, {time}) pair; "
                            f"give one row per unit and time")
    wide = data.pivot(index=time, columns=unit, values=outcome).sort_index()
    if treated not in wide.columns:
        raise OutcomesError(f"treated unit {treated!r} is not in column {unit!r} (units: "
                            f"{', '.join(map(str, list(wide.columns)[:10]))}{', ...' if wide.shape[1] > 10 else ''})")
    incomplete = wide.columns[wide.isna().any()]
    if len(incomplete):
        raise OutcomesError(f"the panel is unbalanced: {len(incomplete)} unit(s) lack some periods (e.g. "
                            f"{incomplete[0]!r} has {int(wide[incomplete[0]].isna().sum())} missing); give every unit "
                            f"every period or drop those units")
    try:
        post = np.asarray(wide.index >= intervention)
    except TypeError as exc:
        raise OutcomesError(f"intervention {intervention!r} cannot be compared with {time!r} values like "
                            f"{wide.index[0]!r}") from exc
    n_pre, n_post = int((~post).sum()), int(post.sum())
    if n_pre < MIN_PRE_PERIODS or n_post < 1:
        raise OutcomesError(f"need at least {MIN_PRE_PERIODS} periods before the intervention and 1 after; got "
                            f"{n_pre} before and {n_post} after {intervention!r}")
    if wide.shape[1] - 1 < MIN_DONORS:
        raise OutcomesError(f"need at least {MIN_DONORS} donor units besides {treated!r}; got {wide.shape[1] - 1}")
    Y = wide.to_numpy(dtype=float)
    units = list(wide.columns)
    j_treated = units.index(treated)

    def fit(j: int):
        # A placebo's donors leave out the treated unit as well as the placebo itself.
        donors = [k for k in range(len(units)) if k != j and (k != j_treated or j == j_treated)]
        w = simplex_weights(Y[~post, j], Y[~post][:, donors])
        synthetic = Y[:, donors] @ w
        gap = Y[:, j] - synthetic
        pre, after = _rmspe(gap[~post]), _rmspe(gap[post])
        return donors, w, synthetic, gap, pre, after

    donors, w, synthetic, gap, pre_rmspe, post_rmspe = fit(j_treated)
    ratio = post_rmspe / pre_rmspe if pre_rmspe > 0 else math.inf
    notes: list[str] = []
    level = np.abs(Y[~post, j_treated]).mean()
    if level > 0 and pre_rmspe > 0.1 * level:
        notes.append(f"poor pre-period fit (RMSPE {pre_rmspe:.3g} is over 10% of the treated unit's level): the "
                     f"treated unit lies outside the donors' range, so the synthetic control is not credible")
    rows = []
    if placebos:
        for j in range(len(units)):
            if j == j_treated:
                continue
            _, _, _, pg, pr, po = fit(j)
            rows.append({"unit": units[j], "pre_rmspe": pr, "post_rmspe": po,
                         "ratio": po / pr if pr > 0 else math.inf, "average_post_gap": float(pg[post].mean())})
    placebo_table = pd.DataFrame(rows, columns=["unit", "pre_rmspe", "post_rmspe", "ratio", "average_post_gap"])
    if placebos:
        rank = 1 + int((placebo_table["ratio"].to_numpy() >= ratio).sum())
        p_value = rank / (len(placebo_table) + 1)
        ci_low, ci_high = _placebo_interval(gap[post], pre_rmspe, placebo_table["ratio"].to_numpy(), alpha)
        interval = ("Firpo & Possebom (2018) confidence set: the constant effects not rejected by the placebo "
                    f"RMSPE-ratio test at alpha {alpha:g}")
    else:
        rank, p_value = None, None
        ci_low, ci_high, interval = math.nan, math.nan, "none (placebos not run)"
    gaps = pd.DataFrame({"time": wide.index, "actual": Y[:, j_treated], "synthetic": synthetic, "gap": gap,
                         "post": post})
    return SynthResult(treated, intervention, {units[k]: float(v) for k, v in zip(donors, w, strict=True)},
                       pre_rmspe, post_rmspe, ratio, gaps, float(gap[post].mean()), p_value, rank, placebo_table,
                       tuple(notes), alpha, ci_low, ci_high, interval)


def _placebo_interval(post_gaps: np.ndarray, pre_rmspe: float, placebo_ratios: np.ndarray,
                      alpha: float) -> tuple[float, float]:
    """Constant effects c with placebo p-value > alpha once c is taken off the post-period gaps.

    p(c) = (1 + #{placebo ratio >= r(c)}) / (J + 1), r(c) = rmspe(gaps - c) / pre_rmspe. p(c) > alpha needs at
    least m placebos with ratio >= r(c), m the smallest integer > alpha (J + 1) - 1, i.e. r(c) <= R_(m) (the
    m-th largest); rmspe(gaps - c)^2 = (mean - c)^2 + var, so the set is mean +/- sqrt((R_m pre)^2 - var).
    """
    J = len(placebo_ratios)
    m = math.floor(alpha * (J + 1) - 1) + 1
    centre = float(post_gaps.mean())
    if m <= 0:
        return -math.inf, math.inf
    bound = float(np.sort(placebo_ratios)[::-1][m - 1]) * pre_rmspe
    room = bound**2 - float(post_gaps.var())
    if not math.isfinite(bound):
        return -math.inf, math.inf
    if room < 0:
        return math.nan, math.nan
    half = math.sqrt(room)
    return centre - half, centre + half
