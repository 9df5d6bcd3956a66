"""Difference-in-differences: the 2x2 design and the event study, with cluster-robust errors.

The 2x2 estimate is the coefficient on ``treated x post`` in the OLS regression
``y ~ treated + post + treated:post`` (Card & Krueger 1994; Angrist & Pischke 2009, ch. 5), equal to
the difference of the four cell means. The event study replaces ``treated:post`` by one dummy per
period relative to the intervention, with unit and time fixed effects and the period before the
intervention as reference (Autor 2003), which shows pre-trends. Standard errors are clustered by
unit (Bertrand, Duflo & Mullainathan 2004) with Student-t(G - 1) intervals, as in Stata; with fewer
than 20 clusters a warning says they are unreliable (Cameron, Gelbach & Miller 2008).

Examples
--------
Card & Krueger's New Jersey minimum-wage data, bundled in ``outcomes.examples``:

>>> from outcomes.examples import card_krueger
>>> result = did(card_krueger(), "fte", treated="nj", post="d")
>>> round(result.did.estimate, 3)
2.754
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import f as f_dist

from outcomes._groups_common import (
    EffectEstimate,
    binary_indicator,
    check_alpha,
    design_matrix,
    numeric_column,
    require_columns,
    require_complete,
    warn,
)
from outcomes.errors import OutcomesError
from outcomes.results import Result, fmt_interval

__all__ = ["DidResult", "EventStudyResult", "did", "event_study"]

FEW_CLUSTERS = 20
COV_TYPES = ("cluster", "HC1", "nonrobust")


def _effect_sentence(what: str, e: EffectEstimate) -> str:
    """One sentence that claims no more than the interval: inconclusive is "could be between a and b"."""
    if e.significant:
        return f"{what[0].upper() + what[1:]} was {fmt_interval(e, digits=3 if abs(e.estimate) < 1 else 2)}."
    return (f"{what[0].upper() + what[1:]} is inconclusive: the true effect could be between {e.ci_low:.3g} and "
            f"{e.ci_high:.3g} ({e.level} CI, estimate {e.estimate:.3g}).")


def _fit_ols(y: np.ndarray, X: np.ndarray, cov_type: str, groups: np.ndarray | None):
    model = sm.OLS(y, X)
    if cov_type == "cluster":
        return model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    if cov_type == "HC1":
        return model.fit(cov_type="HC1")
    return model.fit()


def _check_cov_type(cov_type: str | None, unit: str | None) -> str:
    if cov_type is None:
        return "cluster" if unit is not None else "HC1"
    if cov_type not in COV_TYPES:
        raise OutcomesError(f"cov_type must be one of {', '.join(COV_TYPES)}, got {cov_type!r}")
    if cov_type == "cluster" and unit is None:
        raise OutcomesError("cluster-robust errors need the unit column (unit=...) to cluster on")
    return cov_type


@dataclass(frozen=True, eq=False)
class DidResult(Result):
    """A 2x2 difference-in-differences estimate.

    Attributes
    ----------
    did : EffectEstimate
        The ``treated x post`` coefficient with SE, ``1 - alpha`` interval and p-value.
    n : int
        Observations.
    n_clusters : int or None
        Units clustered on (None without clustering).
    cov_type : str
        "cluster", "HC1" or "nonrobust".
    cell_means : pandas.DataFrame
        Mean outcome and count for each group x period cell.
    fit : statsmodels RegressionResults
        The raw OLS fit, for experts.
    """

    method: ClassVar[str] = "difference-in-differences (OLS, treated x post)"
    citation: ClassVar[str] = ("Card & Krueger (1994), AER 84:772; Angrist & Pischke (2009) ch. 5; cluster-robust "
                               "errors: Bertrand, Duflo & Mullainathan (2004), QJE 119:249")

    did: EffectEstimate
    n: int
    n_clusters: int | None
    cov_type: str
    cell_means: pd.DataFrame = field(repr=False)
    fit: object = field(repr=False)
    settings: dict
    warnings: tuple[str, ...]

    def summary(self) -> str:
        m = self.cell_means.set_index(["group", "period"])["mean"]
        errors = f"clustered on {self.n_clusters} units" if self.cov_type == "cluster" else self.cov_type
        lines = [
            f"Difference-in-differences on {self.settings['outcome']!r} ({self.n} observations; SE {errors})",
            f"  treated: before {m['treated', 'before']:.4g}, after {m['treated', 'after']:.4g}",
            f"  control: before {m['control', 'before']:.4g}, after {m['control', 'after']:.4g}",
            f"  DiD {self.did.estimate:.4g} (SE {self.did.se:.4g}), {100 * (1 - self.did.alpha):g}% CI "
            f"{self.did.ci_low:.4g} to {self.did.ci_high:.4g}, p = {self.did.p_value:.3g}",
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    @property
    def alpha(self) -> float:
        return self.did.alpha

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def headline(self) -> str:
        return _effect_sentence("the treated group's change relative to the comparison group's", self.did)

    def estimates(self) -> dict:
        return {"did": self.did}

    def _payload(self) -> dict:
        return {"did": self.did.to_dict(), "n": self.n,
                "n_clusters": self.n_clusters, "cov_type": self.cov_type,
                "cell_means": self.cell_means.to_dict(orient="records"), "settings": dict(self.settings)}


def did(data: pd.DataFrame, outcome: str, treated: str, post: str, *, unit: str | None = None,
        time: str | None = None, covariates: list[str] | None = None, alpha: float = 0.05,
        cov_type: str | None = None) -> DidResult:
    """2x2 difference-in-differences by OLS of ``outcome ~ treated + post + treated:post``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit and period (or per person and period).
    outcome : str
        Numeric outcome.
    treated, post : str
        0/1 columns: the unit is in the treated group; the row is after the change.
    unit : str, optional
        Unit identifier to cluster standard errors on (the default when given).
    time : str, optional
        Time column; checked so that ``post`` is a function of time.
    covariates : list of str, optional
        Extra regressors (text columns become dummies).
    alpha : float
        Significance level.
    cov_type : {"cluster", "HC1", "nonrobust"}, optional
        Default "cluster" with a unit, else "HC1" (White with small-sample scaling).

    Returns
    -------
    DidResult
    """
    check_alpha(alpha)
    covariates = list(covariates or [])
    cov_type = _check_cov_type(cov_type, unit)
    columns = list(dict.fromkeys([outcome, treated, post, *([unit] if unit else []), *([time] if time else []),
                                  *covariates]))
    require_columns(data, columns)
    require_complete(data, columns)
    y = numeric_column(data[outcome], "outcome")
    g = binary_indicator(data[treated], "treated")
    p = binary_indicator(data[post], "post")
    notes: list[str] = []
    if time is not None:
        varies = data.groupby(time, sort=False)[post].nunique()
        if (varies > 1).any():
            raise OutcomesError(f"column {post!r} should mark periods after the change, but it takes both 0 and 1 "
                                f"within {int((varies > 1).sum())} value(s) of {time!r} (e.g. {varies[varies > 1].index[0]!r})")
    groups = None
    n_clusters = None
    if unit is not None:
        varies = data.groupby(unit, sort=False)[treated].nunique()
        if (varies > 1).any():
            raise OutcomesError(f"column {treated!r} should mark the treated group, but it changes within "
                                f"{int((varies > 1).sum())} unit(s); use the post column for timing")
        groups = pd.factorize(data[unit])[0]
        n_clusters = int(groups.max()) + 1
    cells = pd.DataFrame({"group": np.where(g, "treated", "control"), "period": np.where(p, "after", "before"), "y": y})
    cell_means = cells.groupby(["group", "period"])["y"].agg(["mean", "count"]).reset_index()
    if len(cell_means) < 4:
        present = {(r.group, r.period) for r in cell_means.itertuples()}
        absent = [f"{a} {b}" for a in ("treated", "control") for b in ("before", "after") if (a, b) not in present]
        raise OutcomesError(f"difference-in-differences needs all four cells; no rows for: {', '.join(absent)}")
    X = np.column_stack([np.ones(len(y)), g, p, g & p]).astype(float)
    names = ["const", treated, post, f"{treated}:{post}"]
    if covariates:
        Xc, cov_names = design_matrix(data, covariates)
        X = np.hstack([X, Xc])
        names += cov_names
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise OutcomesError("the regressors are collinear (a covariate duplicates treated, post or another covariate)")
    fit = _fit_ols(y, X, cov_type, groups)
    df = (n_clusters - 1) if cov_type == "cluster" else fit.df_resid
    if cov_type == "cluster" and n_clusters < FEW_CLUSTERS:
        warn(notes, f"only {n_clusters} clusters: cluster-robust standard errors are unreliable with fewer than "
                    f"{FEW_CLUSTERS} (Cameron, Gelbach & Miller 2008); treat the interval as approximate")
    effect = EffectEstimate.student(float(fit.params[3]), float(fit.bse[3]), df, alpha)
    settings = {"outcome": outcome, "treated": treated, "post": post, "unit": unit, "time": time,
                "covariates": covariates, "terms": names}
    return DidResult(effect, len(y), n_clusters, cov_type, cell_means, fit, settings, tuple(notes))


@dataclass(frozen=True, eq=False)
class EventStudyResult(Result):
    """Event-study difference-in-differences with unit and time fixed effects.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per period relative to the intervention: ``relative_time``, ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``p_value`` (the reference period is 0 with no SE).
    average_post : EffectEstimate
        The mean of the post-intervention coefficients.
    pretrend_p_value : float
        Joint Wald (F) test that every pre-intervention coefficient is zero; NaN with no pre-periods
        besides the reference.
    n, n_clusters : int
        Observations and units.
    fit : statsmodels RegressionResults
        The raw OLS fit.
    """

    method: ClassVar[str] = "event-study DiD (unit and time fixed effects, cluster-robust)"
    citation: ClassVar[str] = ("Autor (2003), J Labor Econ 21:1; one common intervention time (with staggered "
                               "adoption use staggered_did: Sun & Abraham 2021, Callaway & Sant'Anna 2021)")

    table: pd.DataFrame = field(repr=False)
    average_post: EffectEstimate
    pretrend_p_value: float
    n: int
    n_clusters: int
    reference: int
    fit: object = field(repr=False)
    warnings: tuple[str, ...]

    def summary(self) -> str:
        lines = [f"Event study ({self.n} observations, {self.n_clusters} clustered units; reference period "
                 f"{self.reference})", f"{'rel. time':>10}{'estimate':>12}{'se':>10}{'ci low':>12}{'ci high':>12}"]
        for row in self.table.itertuples():
            lines.append(f"{row.relative_time:>10}{row.estimate:>12.4g}{row.se:>10.4g}{row.ci_low:>12.4g}"
                         f"{row.ci_high:>12.4g}")
        lines.append(f"average post effect {self.average_post.estimate:.4g} ({self.average_post.ci_low:.4g} to "
                     f"{self.average_post.ci_high:.4g}); pre-trend test p = {self.pretrend_p_value:.3g}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    @property
    def alpha(self) -> float:
        return self.average_post.alpha

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def headline(self) -> str:
        pre = (f"; the pre-intervention periods show no detectable trend (p = {self.pretrend_p_value:.2f})"
               if self.pretrend_p_value >= self.alpha else
               f"; but the pre-intervention periods already differ (p = {self.pretrend_p_value:.3f}), so parallel "
               f"trends is doubtful") if np.isfinite(self.pretrend_p_value) else ""
        return _effect_sentence("the average effect after the intervention", self.average_post) + pre

    def estimates(self) -> dict:
        return {"average_post": self.average_post}

    def _payload(self) -> dict:
        table = self.table.astype({"relative_time": int}).to_dict(orient="records")
        return {"table": table,
                "average_post": self.average_post.to_dict(), "pretrend_p_value": self.pretrend_p_value,
                "n": self.n, "n_clusters": self.n_clusters, "reference": self.reference}


def event_study(data: pd.DataFrame, outcome: str, unit: str, time: str, treated: str, intervention, *,
                reference: int = -1, alpha: float = 0.05) -> EventStudyResult:
    """Event-study DiD: ``y_it = a_i + l_t + sum_{k != reference} b_k treated_i 1[t - T0 = k] + e_it``.

    One intervention time ``T0`` shared by every treated unit (with staggered adoption these two-way
    fixed-effects coefficients are contaminated; Sun & Abraham 2021). Relative time counts distinct
    values of ``time`` (so months written "2021-04" work). Errors are clustered by unit.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit and time.
    outcome, unit, time : str
        Columns.
    treated : str
        0/1 column, constant within unit.
    intervention
        The first time value at which treated units are treated; must be a value of ``time``.
    reference : int
        Relative period left out (default -1, the period just before).
    alpha : float
        Significance level.

    Returns
    -------
    EventStudyResult
    """
    check_alpha(alpha)
    require_columns(data, [outcome, unit, time, treated])
    require_complete(data, [outcome, unit, time, treated])
    y = numeric_column(data[outcome], "outcome")
    g = binary_indicator(data[treated], "treated")
    if data.duplicated([unit, time]).any():
        raise OutcomesError(f"{int(data.duplicated([unit, time]).sum())} rows repeat a ({unit}, {time}) pair; "
                            f"give one row per unit and time")
    if (data.groupby(unit, sort=False)[treated].nunique() > 1).any():
        raise OutcomesError(f"column {treated!r} must be constant within each unit (it marks the treated units)")
    times = np.sort(pd.unique(data[time]))
    if intervention not in set(times.tolist()):
        raise OutcomesError(f"intervention {intervention!r} is not one of the values of {time!r} "
                            f"({times[0]!r} to {times[-1]!r})")
    position = {value: i for i, value in enumerate(times.tolist())}
    rel = data[time].map(position).to_numpy() - position[intervention]
    ks = [k for k in sorted(set(rel.tolist())) if k != reference]
    if reference not in set(rel.tolist()):
        raise OutcomesError(f"reference period {reference} is outside the data's relative times {min(ks)} to {max(ks)}")
    if g.sum() == 0 or (~g).sum() == 0:
        raise OutcomesError("an event study needs both treated and comparison units")
    unit_codes = pd.factorize(data[unit])[0]
    time_codes = data[time].map(position).to_numpy()
    n_units = int(unit_codes.max()) + 1
    blocks = [np.ones((len(y), 1))]
    blocks.append((unit_codes[:, None] == np.arange(1, n_units)[None, :]).astype(float))
    blocks.append((time_codes[:, None] == np.arange(1, len(times))[None, :]).astype(float))
    events = np.column_stack([(g & (rel == k)).astype(float) for k in ks])
    blocks.append(events)
    X = np.hstack(blocks)
    fit = _fit_ols(y, X, "cluster", unit_codes)
    start = X.shape[1] - len(ks)
    params, cov = np.asarray(fit.params)[start:], np.asarray(fit.cov_params())[start:, start:]
    df = n_units - 1
    notes: list[str] = []
    if n_units < FEW_CLUSTERS:
        warn(notes, f"only {n_units} units to cluster on: cluster-robust standard errors are unreliable with fewer "
                    f"than {FEW_CLUSTERS}; treat intervals as approximate")
    rows = []
    for i, k in enumerate(ks):
        e = EffectEstimate.student(float(params[i]), float(np.sqrt(cov[i, i])), df, alpha)
        rows.append({"relative_time": k, "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low,
                     "ci_high": e.ci_high, "p_value": e.p_value})
    rows.append({"relative_time": reference, "estimate": 0.0, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                 "p_value": np.nan})
    table = pd.DataFrame(rows).sort_values("relative_time").reset_index(drop=True)
    post = np.array([k >= 0 for k in ks])
    c = post / post.sum()
    average = EffectEstimate.student(float(c @ params), float(np.sqrt(c @ cov @ c)), df, alpha)
    pre = np.flatnonzero(~post)
    if len(pre):
        b, V = params[pre], cov[np.ix_(pre, pre)]
        wald = float(b @ np.linalg.pinv(V) @ b) / len(pre)
        pretrend = float(f_dist.sf(wald, len(pre), df))
    else:
        pretrend = float("nan")
    return EventStudyResult(table, average, pretrend, len(y), n_units, reference, fit, tuple(notes))
