"""Time to first reoffence: Kaplan-Meier curves, restricted mean time and a Cox hazard ratio.

The Justice Data Lab's third headline measure. For the treatment group and its comparison group:

* Kaplan-Meier survival curves (Kaplan & Meier 1958) with Greenwood variances and log(-log)
  ("exponential Greenwood") pointwise bands, as in R's ``survfit(conf.type = "log-log")`` and lifelines;
* the difference in restricted mean survival time (RMST) up to a horizon (12 months by default), the
  area under each curve, with the Klein & Moeschberger (2003, section 4.5) variance (Royston & Parmar
  2013 for its use as a treatment effect);
* a Cox proportional-hazards model (Cox 1972; Efron 1977 ties) fitted by statsmodels' ``PHReg``; on a
  matched sample the standard errors are robust, clustered on the matched pair (Lin & Wei 1989; Austin
  2014 for matched survival data).

With ``match=True`` the comparison group is built by 1:1 nearest-neighbour propensity-score matching
without replacement (``outcomes.matching.match``, caliper 0.2 SD of the logit). The JDL shows time to
first reoffence only when at least 30 people reoffended; below that the result says so and
``reportable`` is False.

Why not lifelines: lifelines 0.30 requires pandas < 3, and the project runs on pandas 3, so adding it
would downgrade pandas for every module. The estimators here are short and are checked against the
published Rossi figures (Fox & Weisberg) and closed forms in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from outcomes._groups_common import (
    binary_indicator,
    design_matrix,
    numeric_column,
    require_columns,
    require_complete,
)
from outcomes.errors import OutcomesError
from outcomes.jdl import MIN_REOFFENDERS_FOR_TIME
from outcomes.results import Estimate, Result, level

__all__ = ["kaplan_meier", "rmst", "cox", "CoxResult", "SurvivalResult", "time_to_reoffence"]


def _check_times(time: np.ndarray, event: np.ndarray) -> None:
    if len(time) == 0:
        raise OutcomesError("no people to analyse")
    if np.any(time < 0):
        rows = np.flatnonzero(time < 0)[:5].tolist()
        raise OutcomesError(f"durations must be zero or more; negative in rows {rows}")


def kaplan_meier(time, event, alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier estimate with Greenwood variance and log(-log) pointwise bands.

    Returns one row per distinct event time, after a first row at time 0: ``time``, ``at_risk``,
    ``events``, ``survival``, ``se`` (Greenwood), ``ci_low``, ``ci_high``.
    """
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=float)
    _check_times(t, d)
    times = np.unique(t[d == 1])
    order = np.sort(t)
    at_risk = len(t) - np.searchsorted(order, times, side="left")
    events = np.array([(d[t == u] == 1).sum() for u in times], dtype=float) if len(times) < 2000 else \
        np.bincount(np.searchsorted(times, t[d == 1]), minlength=len(times)).astype(float)
    surv = np.cumprod(1 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(at_risk > events, events / (at_risk * (at_risk - events)), np.inf))
        z = norm.ppf(1 - alpha / 2)
        v = green / np.log(surv) ** 2
        lo = np.exp(-np.exp(np.log(-np.log(surv)) + z * np.sqrt(v)))
        hi = np.exp(-np.exp(np.log(-np.log(surv)) - z * np.sqrt(v)))
        se = surv * np.sqrt(green)
    lo = np.where(surv <= 0, 0.0, lo)
    hi = np.where(surv <= 0, 0.0, hi)
    frame = pd.DataFrame({"time": np.r_[0.0, times], "at_risk": np.r_[len(t), at_risk].astype(int),
                          "events": np.r_[0, events].astype(int), "survival": np.r_[1.0, surv],
                          "se": np.r_[0.0, se], "ci_low": np.r_[1.0, lo], "ci_high": np.r_[1.0, hi]})
    return frame


def survival_at(curve: pd.DataFrame, when: float) -> pd.Series:
    """The curve's row in force at time ``when`` (a step function, right-continuous)."""
    return curve[curve["time"] <= when].iloc[-1]


def rmst(time, event, horizon: float) -> tuple[float, float]:
    """Restricted mean survival time up to ``horizon`` and its variance (Klein & Moeschberger 2003, 4.5)."""
    curve = kaplan_meier(time, event)
    t = curve["time"].to_numpy()
    s = curve["survival"].to_numpy()
    inside = t < horizon
    tt, ss = t[inside], s[inside]
    ends = np.r_[tt[1:], horizon]
    pieces = ss * (ends - tt)
    area = float(pieces.sum())
    # A_j = area from event time t_j to the horizon; the variance sums A_j^2 d_j / (n_j (n_j - d_j)).
    tail = np.cumsum(pieces[::-1])[::-1]
    n, d = curve["at_risk"].to_numpy()[inside], curve["events"].to_numpy()[inside]
    after = tail
    keep = (d > 0) & (n > d)
    variance = float(((after[keep] ** 2) * d[keep] / (n[keep] * (n[keep] - d[keep]))).sum())
    return area, variance


@dataclass(frozen=True, eq=False)
class CoxResult(Result):
    """A Cox proportional-hazards fit: one row per term (coefficient, SE, hazard ratio and interval)."""

    method: ClassVar[str] = "Cox proportional hazards (Efron ties)"
    citation: ClassVar[str] = "Cox (1972), JRSS B 34:187; Efron (1977), JASA 72:557; robust errors: Lin & Wei (1989)"

    table: pd.DataFrame = field(repr=False)
    n: int
    events: int
    alpha: float
    robust: bool
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return self.n

    def estimates(self) -> dict:
        return {r.term: Estimate(r.coef, r.se, r.coef_low, r.coef_high, r.p_value, self.alpha)
                for r in self.table.itertuples()}

    def hazard_ratio(self, term: str) -> Estimate:
        row = self.table.set_index("term").loc[term]
        return Estimate(float(row.hazard_ratio), math.nan, float(row.hr_low), float(row.hr_high), float(row.p_value),
                        self.alpha)

    @property
    def headline(self) -> str:
        first = self.table.iloc[0]
        hr = self.hazard_ratio(first.term)
        return (f"Hazard ratio for {first.term}: {hr.estimate:.2f} ({level(self.alpha)} CI {hr.ci_low:.2f} to "
                f"{hr.ci_high:.2f}, p = {hr.p_value:.3f}), from {self.events} events among {self.n} people.")

    def _payload(self) -> dict:
        return {"n": self.n, "events": self.events, "robust": self.robust,
                "terms": self.table.to_dict(orient="records")}


def cox(data: pd.DataFrame, duration: str, event: str, covariates: list[str], *, cluster: str | np.ndarray | None = None,
        alpha: float = 0.05) -> CoxResult:
    """Cox regression of (``duration``, ``event``) on ``covariates`` (text columns become dummies, first
    level dropped), Efron ties; robust standard errors clustered on ``cluster`` when given.

    Examples
    --------
    Fox & Weisberg's model of re-arrest in the Rossi trial (``outcomes.examples.rossi``; published
    ``fin`` -0.379, SE 0.191):

    >>> from outcomes.examples import rossi
    >>> fit = cox(rossi(), "week", "arrest", ["fin", "age", "race", "wexp", "mar", "paro", "prio"])
    >>> row = fit.table.loc[0]
    >>> print(row["term"], round(row["coef"], 3), round(row["se"], 3))
    fin=yes -0.379 0.191
    """
    from statsmodels.duration.hazard_regression import PHReg

    columns = [duration, event, *covariates] + ([cluster] if isinstance(cluster, str) else [])
    require_columns(data, columns)
    require_complete(data, columns)
    t = numeric_column(data[duration], "duration")
    d = binary_indicator(data[event], "event").astype(float)
    _check_times(t, d)
    X, names = design_matrix(data, covariates)
    groups = data[cluster].to_numpy() if isinstance(cluster, str) else cluster
    fit = PHReg(t, X, status=d, ties="efron").fit(groups=groups) if groups is not None else \
        PHReg(t, X, status=d, ties="efron").fit()
    params, bse = np.asarray(fit.params), np.asarray(fit.bse)
    z = norm.ppf(1 - alpha / 2)
    table = pd.DataFrame({"term": names, "coef": params, "se": bse, "coef_low": params - z * bse,
                          "coef_high": params + z * bse, "hazard_ratio": np.exp(params),
                          "hr_low": np.exp(params - z * bse), "hr_high": np.exp(params + z * bse),
                          "p_value": 2 * norm.sf(np.abs(params / bse))})
    return CoxResult(table, len(t), int(d.sum()), alpha, groups is not None)


@dataclass(frozen=True, eq=False)
class SurvivalResult(Result):
    """Time to first reoffence for a treatment group against its comparison group.

    Attributes
    ----------
    hazard_ratio : Estimate
        Cox hazard ratio of treatment (below 1: reoffending later or less), with its interval.
    rmst_difference : Estimate
        Treatment minus comparison restricted mean time free of reoffending up to ``horizon``.
    rmst_treated, rmst_control : float
    km : pandas.DataFrame
        ``group`` ("treatment" or "comparison"), ``time``, ``survival``, ``ci_low``, ``ci_high``, ``at_risk``.
    n, events : int
        People and first reoffences in the analysed sample.
    reportable : bool
        At least 30 people reoffended (the JDL rule); otherwise the headline withholds the figures.
    """

    method: ClassVar[str] = "time to first reoffence: Kaplan-Meier, restricted mean time, Cox hazard ratio"
    citation: ClassVar[str] = ("Kaplan & Meier (1958), JASA 53:457; Cox (1972); Royston & Parmar (2013), BMC Med Res "
                               "Methodol 13:152; Austin (2014), Stat Med 33:1242 (matched samples)")

    hazard_ratio: Estimate
    rmst_difference: Estimate
    rmst_treated: float
    rmst_control: float
    km: pd.DataFrame = field(repr=False)
    n: int
    n_treated: int
    events: int
    horizon: float
    time_unit: str
    matched: bool
    alpha: float
    cox_fit: CoxResult = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def reportable(self) -> bool:
        return self.events >= MIN_REOFFENDERS_FOR_TIME

    def estimates(self) -> dict:
        return {"rmst_difference": self.rmst_difference, "hazard_ratio": self.hazard_ratio}

    @property
    def headline(self) -> str:
        if not self.reportable:
            return (f"Time to first reoffence is not shown: only {self.events} people reoffended, and the Justice Data "
                    f"Lab needs at least {MIN_REOFFENDERS_FOR_TIME}.")
        u, h = self.time_unit, f"{self.horizon:g}"
        e, hr = self.rmst_difference, self.hazard_ratio
        comparison = "similar people who were not served" if self.matched else "the comparison group"
        lead = (f"In the first {h} {u}, people in the treatment group stayed free of proven reoffending for "
                f"{self.rmst_treated:.1f} {u} on average, against {self.rmst_control:.1f} for {comparison}")
        if e.ci_low > 0 or e.ci_high < 0:
            word = "longer" if e.estimate > 0 else "shorter"
            a, b = sorted([abs(e.ci_low), abs(e.ci_high)])
            middle = f": {abs(e.estimate):.1f} {u} {word} ({e.level} CI {a:.1f} to {b:.1f} {word})"
        else:
            def side(x):
                return f"{abs(x):.1f} {u} {'longer' if x > 0 else 'shorter'}"
            middle = (f"; the difference is inconclusive: the true effect could be between {side(e.ci_low)} and "
                      f"{side(e.ci_high)} ({e.level} CI)")
        return (f"{lead}{middle}. Hazard ratio {hr.estimate:.2f} ({hr.level} CI {hr.ci_low:.2f} to {hr.ci_high:.2f}), "
                f"from {self.events} first reoffences among {self.n} people.")

    def _payload(self) -> dict:
        def est(e: Estimate) -> dict:
            return {k: v for k, v in e.to_dict().items() if k in ("estimate", "ci_low", "ci_high", "p_value", "se")}

        km = self.km[["group", "time", "survival", "ci_low", "ci_high"]]
        return {"hazard_ratio": est(self.hazard_ratio), "rmst_difference": est(self.rmst_difference),
                "rmst_treated": self.rmst_treated, "rmst_control": self.rmst_control, "n": self.n,
                "n_treated": self.n_treated, "events": self.events, "horizon": self.horizon,
                "time_unit": self.time_unit, "matched": self.matched, "reportable": self.reportable,
                "km": km.to_dict(orient="records")}


def time_to_reoffence(data: pd.DataFrame, duration: str, event: str, treatment: str, *,
                      covariates: list[str] | None = None, match: bool = False, horizon: float = 12.0,
                      time_unit: str = "months", alpha: float = 0.05, caliper: float = 0.2) -> SurvivalResult:
    """Kaplan-Meier curves, RMST difference at ``horizon`` and the Cox hazard ratio of ``treatment``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person: time to first reoffence or to the end of follow-up (``duration``), 1 if it
        was a reoffence (``event``), 0/1 ``treatment``.
    covariates : list of str, optional
        With ``match=True`` the propensity-score covariates; otherwise added to the Cox model.
    match : bool
        Build a 1:1 matched comparison group first (standard errors then clustered on the pair).
    horizon : float
        Restricted-mean horizon, in the duration's unit (12 months, or 365 days, or 52 weeks).
    """
    covariates = list(covariates or [])
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    if not horizon > 0:
        raise OutcomesError(f"horizon must be positive, got {horizon}")
    if match and not covariates:
        raise OutcomesError("--match needs --covariates to build the propensity score on")
    require_columns(data, [duration, event, treatment, *covariates])
    require_complete(data, [duration, event, treatment, *covariates])
    frame = data.copy()
    frame["__treated__"] = binary_indicator(frame[treatment], "treatment").astype(int)
    frame["__event__"] = binary_indicator(frame[event], "event").astype(int)
    frame["__time__"] = numeric_column(frame[duration], "duration")
    _check_times(frame["__time__"].to_numpy(), frame["__event__"].to_numpy())
    notes: list[str] = []
    cluster = None
    if match:
        import warnings as _w

        from outcomes.matching import match as psm

        with _w.catch_warnings(record=True) as caught:
            _w.simplefilter("always")
            matched = psm(frame, "__treated__", "__event__", covariates, caliper=caliper, ratio=1, replace=False,
                          alpha=alpha)
        notes += [str(w.message) for w in caught]
        pairs = matched.pairs.reset_index(drop=True)
        rows = np.r_[pairs["treated_row"].to_numpy(), pairs["control_row"].to_numpy()]
        frame = frame.loc[rows].reset_index(drop=True)
        cluster = np.r_[np.arange(len(pairs)), np.arange(len(pairs))]
    t, d, g = frame["__time__"].to_numpy(), frame["__event__"].to_numpy(), frame["__treated__"].to_numpy() == 1
    if g.sum() == 0 or (~g).sum() == 0:
        raise OutcomesError(f"treatment column {treatment!r} must have both 1s (served) and 0s (comparison)")
    curves = []
    for name, mask in (("treatment", g), ("comparison", ~g)):
        curve = kaplan_meier(t[mask], d[mask], alpha)
        curves.append(curve.assign(group=name))
    km = pd.concat(curves, ignore_index=True)
    area_t, var_t = rmst(t[g], d[g], horizon)
    area_c, var_c = rmst(t[~g], d[~g], horizon)
    if t[g].max() < horizon or t[~g].max() < horizon:
        notes.append(f"follow-up ends before the {horizon:g}-{time_unit} horizon in one group: the restricted mean "
                     f"time is over the observed range only")
    # On a matched sample the two curves' variances are added as if independent, which is conservative when
    # matched pairs' outcomes are positively correlated (Austin 2014); the Cox errors are pair-clustered.
    diff = Estimate.normal(area_t - area_c, math.sqrt(var_t + var_c), alpha)
    cox_covs = [] if match else covariates
    model_frame = frame.assign(__served__=g.astype(float))
    fit = cox(model_frame, "__time__", "__event__", ["__served__", *cox_covs], cluster=cluster, alpha=alpha)
    hr = fit.hazard_ratio("__served__")
    events = int(d.sum())
    if events < MIN_REOFFENDERS_FOR_TIME:
        notes.append(f"only {events} people reoffended: fewer than {MIN_REOFFENDERS_FOR_TIME}, so the Justice Data "
                     f"Lab rule withholds time to first reoffence")
    return SurvivalResult(hr, diff, area_t, area_c, km, len(t), int(g.sum()), events, float(horizon), time_unit,
                          bool(match), alpha, fit, tuple(notes))
