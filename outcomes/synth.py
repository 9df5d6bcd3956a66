"""Synthetic control for one area that changed its commissioning, with placebo-in-space inference.

The synthetic area is a convex combination of donor areas (weights >= 0, summing to 1) chosen to
track the treated area's outcome over every pre-intervention period (Abadie, Diamond & Hainmueller
2010, JASA 105:493, with all pre-period outcomes as predictors and equal predictor weights). The
gap after the intervention estimates the effect. Inference is by placebos in space: refit with each
donor as if it were treated, and rank the treated area's post/pre RMSPE ratio among all areas
(ADH 2010 section 2.3; Abadie 2021, JEL 59:391); the p-value is that rank over the number of areas.

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

import numpy as np
import pandas as pd
from scipy.optimize import minimize, nnls

from outcomes._groups_common import numeric_column, require_columns, require_complete
from outcomes.errors import OutcomesError

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
class SynthResult:
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
    """

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

    def to_dict(self) -> dict:
        def plain(value):
            return value.item() if isinstance(value, np.generic) else value

        return {
            "method": "synthetic control (Abadie, Diamond & Hainmueller 2010), placebo-in-space inference",
            "weights": {str(k): float(v) for k, v in self.weights.items()},
            "pre_rmspe": self.pre_rmspe,
            "post_rmspe": self.post_rmspe,
            "ratio": self.ratio,
            "gaps": [{"time": plain(r.time), "gap": float(r.gap)} for r in self.gaps.itertuples()],
            "average_post_gap": self.average_post_gap,
            "placebo_p_value": self.placebo_p_value,
            "rank": self.rank,
            "n_units": len(self.placebos) + 1,
            "warnings": list(self.warnings),
        }


def synthetic_control(data: pd.DataFrame, unit: str, time: str, outcome: str, treated, intervention, *,
                      placebos: bool = True) -> SynthResult:
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

    Returns
    -------
    SynthResult

    Raises
    ------
    OutcomesError
        Missing values, a missing treated unit, an unbalanced panel, fewer than 3 pre-periods or 2 donors.
    """
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
        donors = [k for k in range(len(units)) if k != j]
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
    else:
        rank, p_value = None, None
    gaps = pd.DataFrame({"time": wide.index, "actual": Y[:, j_treated], "synthetic": synthetic, "gap": gap,
                         "post": post})
    return SynthResult(treated, intervention, {units[k]: float(v) for k, v in zip(donors, w, strict=True)},
                       pre_rmspe, post_rmspe, ratio, gaps, float(gap[post].mean()), p_value, rank, placebo_table,
                       tuple(notes))
