"""Interdependencies between agencies' measures: panel distributed-lag regressions across areas.

For every ordered pair of series (a "cause" X and an "effect" Y, of different agencies) and
lags ``l = min_lag..max_lag`` months, two questions are asked of an area x month panel:

1. **Across areas** (pooled): the distributed-lag regression

       y[a, t] = alpha[a] + gamma[t] + sum_l beta_l x[a, t - l] + e[a, t]

   with area and month fixed effects (two-way within transformation on the common sample) and
   standard errors clustered by area (CR1: G/(G-1) (N-1)/(N-K)), as in Cameron and Miller (2015),
   "A practitioner's guide to cluster-robust inference", J. Human Resources 50(2). The pair's
   p-value is the joint Wald test of all lags, F(K, G-1); the lag reported is the one with the
   largest |t|, with its interval (t with G-1 degrees of freedom).
2. **In each area** (where the relationship differs): each series is prewhitened by its own AR(1)
   coefficient, estimated pooled over all areas after the fixed effects (``w[t] = v[t] - rho v[t-1]``,
   as in Box-Jenkins cross-correlation analysis, so that persistent but unrelated series do not look
   related); then, after the same two-way transformation, the slope b of the effect on the lagged
   cause within the area is compared with the slope pooled over the other areas (t with n-2 degrees
   of freedom). The smallest p-value over the lags, Bonferroni-adjusted for the number of lags, is
   the area's p-value.

All p-values (one per pair, one per pair x area) form one family corrected by Benjamini and
Hochberg (1995), "Controlling the false discovery rate", JRSS B 57(1). A link is reported when
its q-value is below ``alpha``. These are associations in observational data: every sentence says
"associated with", never "caused"; a shared driver outside the data can produce any of them.

Everything is vectorised over pairs and areas; counts may be analysed on the log scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from outcomes.errors import OutcomesError

METHOD = "panel distributed-lag regression (two-way fixed effects, cluster-robust by area) with Benjamini-Hochberg FDR"
CITATION = ("Cameron & Miller (2015) J. Human Resources 50(2) 317-372; "
            "Benjamini & Hochberg (1995) JRSS B 57(1) 289-300")
_WORDS = {0: "in the same month", 1: "one month later", 2: "two months later", 3: "three months later",
          4: "four months later", 5: "five months later", 6: "six months later"}


def _later(lag: int) -> str:
    return _WORDS.get(lag, f"{lag} months later")


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    values = p[ok]
    n = values.size
    if n == 0:
        return q
    order = np.argsort(values)
    ranked = values[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(n)
    adjusted[order] = np.minimum(ranked, 1.0)
    q[ok] = adjusted
    return q


@dataclass(frozen=True)
class AreaLink:
    """Where the pair's relationship in one area differs from the other areas'."""

    area: str
    cause: tuple[str, str]
    effect: tuple[str, str]
    lag_months: int
    estimate: float  # the area's slope of the effect on the lagged cause (effect units per cause unit)
    se: float
    ci_low: float
    ci_high: float
    others_estimate: float  # the same slope pooled over the other areas
    p_value: float  # of the difference, Bonferroni-adjusted over the lags
    q_value: float
    nobs: int
    headline: str

    def to_dict(self) -> dict:
        return {"area": self.area, "cause": {"agency": self.cause[0], "measure": self.cause[1]},
                "effect": {"agency": self.effect[0], "measure": self.effect[1]}, "lag_months": self.lag_months,
                "estimate": self.estimate, "se": self.se, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "others_estimate": self.others_estimate, "p_value": self.p_value, "q_value": self.q_value,
                "nobs": self.nobs, "headline": self.headline}


@dataclass(frozen=True)
class PairLink:
    """One ordered pair across all areas: the pooled distributed-lag fit and its areas that differ."""

    cause: tuple[str, str]
    effect: tuple[str, str]
    lags: tuple[int, ...]
    lag_estimates: tuple[float, ...]
    lag_ses: tuple[float, ...]
    lag_months: int  # the lag with the largest |t|
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    standardised: float  # estimate x sd(cause) / sd(effect), after the fixed effects
    p_value: float  # joint Wald test of all lags
    q_value: float
    nobs: int
    clusters: int
    areas: tuple[AreaLink, ...]  # areas whose q-value is below alpha
    alpha: float
    headline: str

    @property
    def significant(self) -> bool:
        return bool(self.q_value < self.alpha)

    def to_dict(self) -> dict:
        return {"cause": {"agency": self.cause[0], "measure": self.cause[1]},
                "effect": {"agency": self.effect[0], "measure": self.effect[1]},
                "lags": list(self.lags), "lag_estimates": list(self.lag_estimates), "lag_ses": list(self.lag_ses),
                "lag_months": self.lag_months, "estimate": self.estimate, "se": self.se, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "standardised": self.standardised, "p_value": self.p_value,
                "q_value": self.q_value, "nobs": self.nobs, "clusters": self.clusters,
                "areas": [a.to_dict() for a in self.areas], "headline": self.headline}


@dataclass(frozen=True)
class InterdependenceResult:
    """Every pair tested, with the links whose q-value is below ``alpha``."""

    pairs: tuple[PairLink, ...]
    areas: tuple[str, ...]
    periods: tuple[str, ...]
    series: tuple[tuple[str, str], ...]
    skipped: dict[tuple[str, str], str]
    tests: int  # the size of the Benjamini-Hochberg family
    alpha: float
    nobs: int
    warnings: tuple[str, ...] = ()
    method: str = METHOD
    citation: str = CITATION
    labels: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def national_links(self) -> list[PairLink]:
        return [p for p in self.pairs if p.significant]

    @property
    def area_links(self) -> list[AreaLink]:
        return [a for p in self.pairs for a in p.areas]

    @property
    def reported(self) -> int:
        return len(self.national_links) + len(self.area_links)

    def links_for_area(self, area: str) -> list[dict]:
        """The links that concern ``area``: those found in the area itself, then those across all areas."""
        out = [dict(a.to_dict(), scope="area") for a in self.area_links if a.area == area]
        out += [dict(_national_link(p), scope="national") for p in self.national_links]
        return out

    def matrix(self, area: str | None = None) -> pd.DataFrame:
        """Agency x agency counts of reported links (rows: the cause's agency), for ``area`` or across areas."""
        agencies = sorted({key[0] for key in self.series})
        table = pd.DataFrame(0, index=agencies, columns=agencies)
        links = [(a.cause, a.effect) for a in self.area_links if area is None or a.area == area]
        links += [(p.cause, p.effect) for p in self.national_links]
        for cause, effect in links:
            table.loc[cause[0], effect[0]] += 1
        table.index.name = "cause agency"
        return table

    @property
    def headline(self) -> str:
        national, local = len(self.national_links), len(self.area_links)
        pairs = len(self.pairs)
        return (f"Of {pairs} pairs of measures across agencies, {national} are associated with each other across "
                f"all {len(self.areas)} areas, and {local} associations in single areas differ from the other areas "
                f"(false discovery rate {self.alpha:.0%}).")

    def summary(self) -> str:
        lines = [self.headline, f"method: {self.method}", f"tests in the family: {self.tests}; observations: {self.nobs}"]
        for pair in self.national_links:
            lines.append(f"- {pair.headline}")
        for link in self.area_links:
            lines.append(f"- {link.headline}")
        for key, reason in self.skipped.items():
            lines.append(f"not analysed: {key[0]}.{key[1]}: {reason}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"method": self.method, "citation": self.citation, "alpha": self.alpha, "nobs": self.nobs,
                "tests": self.tests, "areas": list(self.areas), "periods": [self.periods[0], self.periods[-1]],
                "headline": self.headline, "warnings": list(self.warnings),
                "skipped": [{"agency": k[0], "measure": k[1], "reason": r} for k, r in self.skipped.items()],
                "national_links": [p.to_dict() for p in self.national_links],
                "area_links": [a.to_dict() for a in self.area_links]}


def _national_link(pair: PairLink) -> dict:
    return {"cause": {"agency": pair.cause[0], "measure": pair.cause[1]},
            "effect": {"agency": pair.effect[0], "measure": pair.effect[1]}, "lag_months": pair.lag_months,
            "estimate": pair.estimate, "ci_low": pair.ci_low, "ci_high": pair.ci_high, "q_value": pair.q_value,
            "headline": pair.headline}


def _demean(values: np.ndarray) -> np.ndarray:
    """Two-way within transformation over the last two axes (area, month) of a balanced panel."""
    return (values - values.mean(axis=-1, keepdims=True) - values.mean(axis=-2, keepdims=True)
            + values.mean(axis=(-2, -1), keepdims=True))


def _panel(frame: pd.DataFrame, area: str, period: str, series: list[str], value: str):
    missing = [c for c in (area, period, value, *series) if c not in frame.columns]
    if missing:
        raise OutcomesError(f"the frame has no column(s) {', '.join(map(repr, missing))}; it has {', '.join(frame.columns)}")
    index = [*series, area, period]
    duplicated = frame.duplicated(index)
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise OutcomesError(f"{int(duplicated.sum())} rows repeat an area, period and series, e.g. "
                            f"{', '.join(str(row[c]) for c in index)}: give one value each (whole-area figures only)")
    wide = frame.set_index(index)[value].astype(float).unstack(period)
    pairs = frame[series].drop_duplicates()
    keys = sorted(tuple(row) for row in pairs.itertuples(index=False, name=None))
    areas = sorted(frame[area].unique().tolist())
    periods = sorted(frame[period].unique().tolist())
    full = pd.MultiIndex.from_tuples([(*key, a) for key in keys for a in areas], names=[*series, area])
    wide = wide.reindex(index=full, columns=periods)
    return keys, areas, periods, wide.to_numpy(dtype=float, copy=True).reshape(len(keys), len(areas), len(periods))


def _check_months(periods: list[str]) -> None:
    """The panel's periods must be consecutive months, YYYY-MM."""
    try:
        index = [int(p[:4]) * 12 + int(p[5:7]) for p in periods]
        if any(len(p) != 7 or p[4] != "-" for p in periods):
            raise ValueError
    except (ValueError, TypeError):
        raise OutcomesError(f"periods must be months written YYYY-MM (quarters cannot be mixed in); found e.g. "
                            f"{periods[:3]}") from None
    gaps = [periods[i + 1] for i in range(len(index) - 1) if index[i + 1] - index[i] != 1]
    if gaps:
        raise OutcomesError(f"the months are not consecutive: a gap before {gaps[0]}; every month must be present")


def analyse_interdependencies(frame: pd.DataFrame, *, area: str = "area_code", period: str = "period",
                              series: tuple[str, str] = ("agency", "measure"), value: str = "value",
                              log_series: set[tuple[str, str]] | None = None, min_lag: int = 1, max_lag: int = 4,
                              alpha: float = 0.05, min_months: int = 24, min_areas: int = 10,
                              labels: dict[tuple[str, str], str] | None = None) -> InterdependenceResult:
    """Test every ordered pair of series from different agencies (the first ``series`` column).

    Parameters
    ----------
    frame : long DataFrame, one row per area x period x series (whole-area figures), monthly periods.
    log_series : series analysed on the log scale (counts); by default those whose ``unit`` column is
        ``count`` when the frame has one.
    min_lag, max_lag : the lags (months) tested.
    alpha : the false discovery rate.

    Examples
    --------
    Twelve areas in which the courts' measure follows the police measure two months later (synthetic):

    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> rows = []
    >>> for a in range(12):
    ...     x = rng.normal(0, 1, 30)
    ...     y = np.r_[0, 0, 0.8 * x[:-2]] + rng.normal(0, 0.5, 30)
    ...     for t in range(30):
    ...         p = str(pd.Period("2023-01", "M") + t)
    ...         rows += [{"area_code": f"A{a}", "period": p, "agency": "police", "measure": "file_quality", "value": x[t]},
    ...                  {"area_code": f"A{a}", "period": p, "agency": "courts", "measure": "ineffective_trials",
    ...                   "value": y[t]}]
    >>> result = analyse_interdependencies(pd.DataFrame(rows))
    >>> print(result.national_links[0].headline)
    Across 12 areas, a one-unit rise in police file quality is associated with a 0.796-unit rise in courts ineffective trials two months later (interval 0.741 to 0.852; q = 0.000).
    """
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 <= min_lag <= max_lag:
        raise OutcomesError(f"lags must satisfy 0 <= min_lag <= max_lag, got {min_lag} and {max_lag}")
    series = list(series)
    if log_series is None:
        log_series = set()
        if "unit" in frame.columns:
            counts = frame.loc[frame["unit"] == "count", series].drop_duplicates()
            log_series = {tuple(row) for row in counts.itertuples(index=False, name=None)}
    keys, areas, periods, values = _panel(frame, area, period, series, value)
    return analyse_panel(values, keys, areas, periods, log_series=log_series, min_lag=min_lag, max_lag=max_lag,
                         alpha=alpha, min_months=min_months, min_areas=min_areas, labels=labels)


def analyse_panel(values: np.ndarray, keys: list[tuple[str, str]], areas: list[str], periods: list[str], *,
                  log_series: set[tuple[str, str]] | None = None, min_lag: int = 1, max_lag: int = 4,
                  alpha: float = 0.05, min_months: int = 24, min_areas: int = 10,
                  labels: dict[tuple[str, str], str] | None = None) -> InterdependenceResult:
    """``analyse_interdependencies`` on an array ``values[series, area, month]`` (NaN = not published).

    ``keys`` are (agency, measure) per series; the array is not modified.
    """
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 <= min_lag <= max_lag:
        raise OutcomesError(f"lags must satisfy 0 <= min_lag <= max_lag, got {min_lag} and {max_lag}")
    values = np.array(values, dtype=float, copy=True)
    keys = [tuple(k) for k in keys]
    log_series = set(log_series or ())
    labels = dict(labels or {})
    warnings: list[str] = []
    _check_months(periods)
    if len(areas) < min_areas:
        raise OutcomesError(f"the panel has {len(areas)} areas; cluster-robust inference needs at least {min_areas}")
    skipped: dict[tuple[str, str], str] = {}
    keep = []
    for index, key in enumerate(keys):
        observed = ~np.isnan(values[index])
        if not observed.all():
            months = int(observed.all(axis=0).sum())
            skipped[key] = (f"observed in every area for {months} of {len(periods)} months; the analysis needs a "
                            "complete panel")
            continue
        if key in log_series:
            if (values[index] <= 0).any():
                skipped[key] = "a count with zeros or negatives cannot be analysed on the log scale"
                continue
            values[index] = np.log(values[index])
        if np.allclose(_demean(values[index]), 0):
            skipped[key] = "no variation left after the area and month effects"
            continue
        keep.append(index)
    keys = [keys[i] for i in keep]
    values = values[keep]
    n_months = len(periods)
    lags = tuple(range(min_lag, max_lag + 1))
    start = max(max_lag, 1)
    n = n_months - start
    if n < min_months - max_lag or n < 12:
        raise OutcomesError(f"{n_months} months leave {n} after the longest lag ({max_lag}); at least "
                            f"{max(min_months - max_lag, 12)} are needed")
    if len(keys) < 2:
        raise OutcomesError("fewer than two series can be analysed: " + "; ".join(f"{k}: {r}" for k, r in skipped.items()))

    m, a = len(keys), len(areas)
    k_lags = len(lags)
    # Within-transformed windows on the common sample: the effect now and the cause at each lag.
    y = _demean(values[:, :, start:])  # [m, a, n]
    x = np.stack([_demean(values[:, :, start - lag:n_months - lag]) for lag in lags])  # [k, m, a, n]

    agencies = np.array([key[0] for key in keys])
    cross = agencies[:, None] != agencies[None, :]  # [cause, effect]
    cause_idx, effect_idx = np.nonzero(cross)
    n_pairs = len(cause_idx)

    # ---- pooled distributed lag, cluster-robust by area (vectorised over pairs)
    gram = np.einsum("kmat,lmat->mkl", x, x)  # per cause [m, k, k]
    xty = np.einsum("kiat,jat->ijk", x, y)  # [cause, effect, k]
    gram_inv = np.linalg.inv(gram)
    beta = np.einsum("ikl,ijl->ijk", gram_inv, xty)  # [cause, effect, k]
    resid = y[None, :, :, :] - np.einsum("ijk,kiat->ijat", beta, x)  # [cause, effect, a, n]
    scores = np.einsum("kiat,ijat->ijak", x, resid)  # [cause, effect, a, k]
    meat = np.einsum("ijak,ijal->ijkl", scores, scores)
    nobs_pooled = a * n
    dof = (a / (a - 1)) * ((nobs_pooled - 1) / (nobs_pooled - k_lags))
    vcov = dof * np.einsum("ikl,ijlm,imn->ijkn", gram_inv, meat, gram_inv)
    se = np.sqrt(np.clip(np.diagonal(vcov, axis1=2, axis2=3), 0, None))  # [cause, effect, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stats = beta / se
        wald = np.einsum("ijk,ijkl,ijl->ij", beta, np.linalg.pinv(vcov), beta) / k_lags
    p_pooled = special.fdtrc(k_lags, a - 1, np.where(np.isfinite(wald), wald, 0.0))
    t_crit_pooled = stats.t.ppf(1 - alpha / 2, a - 1)
    sd_within = np.sqrt((y**2).mean(axis=(1, 2)))  # per series

    # ---- per area: prewhitened series (each series' pooled AR(1) removed), slope of the effect on the lagged cause
    full = _demean(values)
    rho = np.einsum("mat,mat->m", full[:, :, 1:], full[:, :, :-1]) / np.einsum("mat,mat->m", full[:, :, :-1], full[:, :, :-1])
    rho = np.clip(rho, 0.0, 0.98)
    white = values[:, :, 1:] - rho[:, None, None] * values[:, :, :-1]  # month t = 1..T-1
    w_start = max_lag  # white index s is month s + 1: the effect from month max_lag + 1, every lag inside the sample
    w_n = white.shape[-1] - w_start
    wy = _demean(white[:, :, w_start:])  # [m, a, w_n]
    wx = np.stack([_demean(white[:, :, w_start - lag:white.shape[-1] - lag]) for lag in lags])  # [k, m, a, w_n]
    s_xx = np.einsum("kiat,kiat->kia", wx, wx)[:, :, None, :]  # [k, cause, 1, a]
    s_yy = np.einsum("jat,jat->ja", wy, wy)[None, None]  # [1, 1, effect, a]
    s_xy = np.einsum("kiat,jat->kija", wx, wy)  # [k, cause, effect, a]

    def slope(sxx, syy, sxy, dof_resid):
        with np.errstate(divide="ignore", invalid="ignore"):
            b = sxy / sxx
            sigma2 = np.clip(syy - b * sxy, 0, None) / dof_resid
            return b, sigma2 / sxx

    b_area, var_area = slope(s_xx, s_yy, s_xy, w_n - 2)  # [k, cause, effect, a]
    b_rest, var_rest = slope(s_xx.sum(-1, keepdims=True) - s_xx, s_yy.sum(-1, keepdims=True) - s_yy,
                             s_xy.sum(-1, keepdims=True) - s_xy, (a - 1) * (w_n - 1) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_area = (b_area - b_rest) / np.sqrt(var_area + var_rest)
    p_area_lag = 2 * special.stdtr(w_n - 2, -np.abs(t_area))
    p_area_lag = np.where(np.isnan(p_area_lag), 1.0, p_area_lag)
    best_area_lag = np.argmin(p_area_lag, axis=0)  # [cause, effect, a]
    p_area = np.minimum(np.take_along_axis(p_area_lag, best_area_lag[None], axis=0)[0] * k_lags, 1.0)

    # ---- one Benjamini-Hochberg family: every pair, and every pair x area
    p_family = np.concatenate([p_pooled[cause_idx, effect_idx], p_area[cause_idx, effect_idx].reshape(-1)])
    q_family = benjamini_hochberg(p_family)
    q_pooled = q_family[:n_pairs]
    q_area = q_family[n_pairs:].reshape(n_pairs, a)

    t_crit_area = stats.t.ppf(1 - alpha / 2, w_n - 2)
    pairs: list[PairLink] = []
    best_lag = np.argmax(np.where(np.isfinite(t_stats), np.abs(t_stats), -1.0), axis=-1)  # [cause, effect]
    for number, (i, j) in enumerate(zip(cause_idx, effect_idx, strict=True)):
        cause, effect = keys[i], keys[j]
        best = int(best_lag[i, j])
        estimate, std_error = float(beta[i, j, best]), float(se[i, j, best])
        lag = lags[best]
        area_links = []
        for area_number in np.flatnonzero(q_area[number] < alpha):
            k = int(best_area_lag[i, j, area_number])
            b, s = float(b_area[k, i, j, area_number]), float(np.sqrt(var_area[k, i, j, area_number]))
            area_links.append(AreaLink(
                area=areas[area_number], cause=cause, effect=effect, lag_months=lags[k], estimate=b, se=s,
                ci_low=b - t_crit_area * s, ci_high=b + t_crit_area * s,
                others_estimate=float(b_rest[k, i, j, area_number]), p_value=float(p_area[i, j, area_number]),
                q_value=float(q_area[number, area_number]), nobs=w_n,
                headline=_area_headline(areas[area_number], cause, effect, lags[k], b, float(b_rest[k, i, j, area_number]),
                                        float(q_area[number, area_number]), labels, cause in log_series,
                                        effect in log_series)))
        pairs.append(PairLink(
            cause=cause, effect=effect, lags=lags, lag_estimates=tuple(float(v) for v in beta[i, j]),
            lag_ses=tuple(float(v) for v in se[i, j]), lag_months=lag, estimate=estimate, se=std_error,
            ci_low=estimate - t_crit_pooled * std_error, ci_high=estimate + t_crit_pooled * std_error,
            standardised=float(estimate * sd_within[i] / sd_within[j]) if sd_within[j] > 0 else float("nan"),
            p_value=float(p_pooled[i, j]), q_value=float(q_pooled[number]), nobs=nobs_pooled, clusters=a,
            areas=tuple(area_links), alpha=alpha,
            headline=_pair_headline(cause, effect, lag, estimate, estimate - t_crit_pooled * std_error,
                                    estimate + t_crit_pooled * std_error, float(q_pooled[number]), a, labels,
                                    cause in log_series, effect in log_series, alpha)))
    if skipped:
        warnings.append(f"{len(skipped)} series not analysed (see 'skipped')")
    return InterdependenceResult(pairs=tuple(pairs), areas=tuple(areas), periods=tuple(periods), series=tuple(keys),
                                 skipped=skipped, tests=len(p_family), alpha=alpha, nobs=nobs_pooled * m,
                                 warnings=tuple(warnings), labels=labels)


def _name(key: tuple[str, str], labels: dict) -> str:
    return labels.get(key, f"{key[0]} {key[1].replace('_', ' ')}")


def _change(logged: bool) -> str:
    return "a 1% rise in" if logged else "a one-unit rise in"


def _amount(value: float, logged: bool) -> str:
    if logged:
        return f"a {abs(value):.2f}% {'rise' if value >= 0 else 'fall'} in"
    return f"a {abs(value):.3g}-unit {'rise' if value >= 0 else 'fall'} in"


def _pair_headline(cause, effect, lag, estimate, low, high, q, areas, labels, cause_log, effect_log, alpha) -> str:
    scale = 1.0 if cause_log == effect_log else (100.0 if effect_log else 0.01)
    strength = "is associated with" if q < alpha else "is not clearly associated with anything in"
    if q >= alpha:
        return (f"Across {areas} areas, {_name(cause, labels)} {strength} {_name(effect, labels)} "
                f"{_later(lag)} (q = {q:.2f}).")
    return (f"Across {areas} areas, {_change(cause_log)} {_name(cause, labels)} is associated with "
            f"{_amount(estimate * scale, effect_log)} {_name(effect, labels)} {_later(lag)} "
            f"(interval {low * scale:.3g} to {high * scale:.3g}; q = {q:.3f}).")


def _area_headline(area, cause, effect, lag, estimate, others, q, labels, cause_log, effect_log) -> str:
    scale = 1.0 if cause_log == effect_log else (100.0 if effect_log else 0.01)
    return (f"In {area}, {_change(cause_log)} {_name(cause, labels)} is associated with "
            f"{_amount(estimate * scale, effect_log)} {_name(effect, labels)} {_later(lag)}, "
            f"against {others * scale:.3g} in the other areas (q = {q:.3g}).")
