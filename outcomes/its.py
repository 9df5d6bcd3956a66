"""Interrupted time series: segmented regression for one or more interventions.

Follows the segmented-regression design of Wagner et al. (2002) and the Poisson/quasi-Poisson
models with an offset and Fourier seasonality of Lopez Bernal, Cummins & Gasparrini (2017):

    g(E[y_t]) = b0 + b1 t + sum_k [ L_k I(t >= T_k) + S_k (t - T_k) I(t >= T_k) ] + season(t) + offset_t

``L_k`` is the level change and ``S_k`` the slope change at intervention ``k``. Families:

* ``gaussian``: OLS, with classical errors when the residuals show no autocorrelation and AR(1) errors
  (restricted maximum likelihood, as R's ``nlme::gls``) when they do; Newey-West (HAC) errors on request;
* ``poisson``: log link with ``log(offset)`` (e.g. a population or caseload); ``scale="pearson"``
  gives quasi-Poisson errors for overdispersed counts;
* ``binomial``: logit link on numerator / denominator, with the same ``scale`` option.

The counterfactual is the fitted series with every intervention term set to zero; the effect
over the post-intervention period (absolute and relative) gets its interval by simulation from
the estimated coefficients' sampling distribution (a parametric bootstrap, 4,000 draws, fixed seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson

from outcomes.errors import OutcomesError
from outcomes.results import Estimate, Result, level

FAMILIES = ("gaussian", "poisson", "binomial")
MIN_POINTS_EACH_SIDE = 6


@dataclass(frozen=True)
class InterventionEffect:
    at: str
    level_change: Estimate
    slope_change: Estimate | None
    ratio: dict | None  # rate_ratio / odds_ratio of the level change: {"estimate", "ci_low", "ci_high"}


@dataclass(frozen=True, eq=False)
class ITSResult(Result):
    """A fitted interrupted time series.

    Attributes
    ----------
    family, n, alpha, seasonality, hac_lags, scale : settings used
    effects : tuple of InterventionEffect, one per intervention
    post_effect : dict
        Mean difference between fitted and counterfactual over the post-intervention period, on the outcome's
        scale (rate for binomial, count per offset unit x offset for poisson), absolute and relative, with intervals.
    diagnostics : dict
        Durbin-Watson statistic and Ljung-Box p-value of the (Pearson) residuals.
    frame : pandas.DataFrame
        ``time``, ``observed``, ``fitted``, ``counterfactual``, ``counterfactual_low``, ``counterfactual_high``, ``post``.
    fit : the statsmodels results object, for experts (an :class:`AR1Fit` for AR(1) errors).
    """

    method: ClassVar[str] = "interrupted time series (segmented regression)"
    citation: ClassVar[str] = ("Wagner et al. (2002), J Clin Pharm Ther 27:299; Lopez Bernal, Cummins & Gasparrini "
                               "(2017), Int J Epidemiol 46:348")

    family: str
    n: int
    alpha: float
    seasonality: str
    hac_lags: int | None
    scale: str
    effects: tuple[InterventionEffect, ...]
    post_effect: dict
    diagnostics: dict
    frame: pd.DataFrame = field(repr=False)
    fit: object = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def post_estimate(self) -> Estimate:
        """The mean post-period effect on the outcome's scale, with its simulation interval (no SE)."""
        e = self.post_effect
        return Estimate(e["absolute"], math.nan, e["absolute_low"], e["absolute_high"], math.nan, self.alpha)

    def estimates(self) -> dict:
        out = {"post_effect": self.post_estimate}
        for effect in self.effects:
            suffix = "" if len(self.effects) == 1 else f" {effect.at}"
            out[f"level_change{suffix}"] = effect.level_change
            if effect.slope_change is not None:
                out[f"slope_change{suffix}"] = effect.slope_change
        return out

    @property
    def headline(self) -> str:
        """The post-period change against the counterfactual, in points for rates."""
        e = self.post_effect
        scale, unit = (100.0, " percentage points") if self.family == "binomial" else (1.0, "")
        at = self.effects[0].at
        a, lo, hi = e["absolute"] * scale, e["absolute_low"] * scale, e["absolute_high"] * scale
        rel = f"{100 * e['relative']:+.0f}%"
        if lo > 0 or hi < 0:
            return (f"After {at} the series was {a:+.3g}{unit} ({rel}) away from where its earlier trend pointed, "
                    f"on average over {e['periods']} periods ({level(self.alpha)} CI {lo:.3g} to {hi:.3g}).")
        return (f"After {at} the change against the earlier trend is inconclusive: the true effect could be between "
                f"{lo:.3g} and {hi:.3g}{unit} (estimate {a:+.3g}, {level(self.alpha)} CI, {e['periods']} periods).")

    @property
    def level_change(self) -> Estimate:
        return self.effects[0].level_change

    @property
    def slope_change(self) -> Estimate | None:
        return self.effects[0].slope_change

    def sentence(self, scale: float = 100.0, unit: str = "points") -> str:
        e = self.post_effect
        level = 100 * (1 - self.alpha)
        return (f"{e['absolute'] * scale:+.1f} {unit} ({level:.0f}% CI {e['absolute_low'] * scale:.1f} to "
                f"{e['absolute_high'] * scale:.1f})")

    def summary(self) -> str:
        lines = [f"Interrupted time series ({self.family}, n = {self.n}, seasonality {self.seasonality}, alpha {self.alpha})"]
        for effect in self.effects:
            lc = effect.level_change
            lines.append(f"  intervention {effect.at}: level change {lc.estimate:.4f} (CI {lc.ci_low:.4f} to {lc.ci_high:.4f}, "
                         f"p = {lc.p_value:.4f})")
            if effect.slope_change is not None:
                sc = effect.slope_change
                lines.append(f"    slope change {sc.estimate:.4f} per period (CI {sc.ci_low:.4f} to {sc.ci_high:.4f}, p = {sc.p_value:.4f})")
            if effect.ratio:
                name = "rate ratio" if self.family == "poisson" else "odds ratio"
                r = effect.ratio
                lines.append(f"    {name} {r['estimate']:.3f} ({r['ci_low']:.3f} to {r['ci_high']:.3f})")
        e = self.post_effect
        lines.append(f"  post-period effect {e['absolute']:.4f} (CI {e['absolute_low']:.4f} to {e['absolute_high']:.4f}); "
                     f"relative {100 * e['relative']:+.1f}% (CI {100 * e['relative_low']:.1f}% to {100 * e['relative_high']:.1f}%)")
        d = self.diagnostics
        lines.append(f"  Durbin-Watson {d['durbin_watson']:.2f}; Ljung-Box p = {d['ljung_box_p']:.3f} at lag {d['ljung_box_lag']}")
        return "\n".join(lines)

    def _payload(self) -> dict:
        first = self.effects[0]
        out = {
            "family": self.family, "n": self.n, "seasonality": self.seasonality,
            "hac_lags": self.hac_lags, "scale": self.scale,
            "level_change": first.level_change.to_dict(),
            "slope_change": first.slope_change.to_dict() if first.slope_change else None,
            "interventions": [{"at": e.at, "level_change": e.level_change.to_dict(),
                               "slope_change": e.slope_change.to_dict() if e.slope_change else None,
                               **({"ratio": e.ratio} if e.ratio else {})} for e in self.effects],
            "post_effect": self.post_effect,
            "diagnostics": self.diagnostics,
        }
        if first.ratio:
            out["rate_ratio" if self.family == "poisson" else "odds_ratio"] = first.ratio
        return out


def _time_index(values: pd.Series, column: str) -> tuple[np.ndarray, list[str], str]:
    """Integer positions 0..n-1 and labels; monthly periods when the column holds months or dates."""
    if pd.api.types.is_numeric_dtype(values):
        if values.isna().any():
            raise OutcomesError(f"column '{column}' has missing values")
        ints = values.to_numpy()
        if not np.all(np.equal(np.mod(ints, 1), 0)):
            raise OutcomesError(f"column '{column}' must hold whole time steps or months (YYYY-MM)")
        ints = ints.astype(int)
        kind = "int"
        positions = ints
        labels = [str(i) for i in ints]
    else:
        try:
            periods = pd.PeriodIndex(pd.to_datetime(values.astype(str), format="mixed"), freq="M")
        except (ValueError, TypeError):
            raise OutcomesError(f"column '{column}' must hold months (YYYY-MM) or dates") from None
        positions = np.asarray([p.ordinal for p in periods])
        labels = [str(p) for p in periods]
        kind = "month"
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    duplicates = pd.Series(positions).duplicated()
    if duplicates.any():
        dup = sorted({labels[order[i]] for i in np.flatnonzero(duplicates)})
        raise OutcomesError(f"column '{column}' has {len(dup)} duplicate {'months' if kind == 'month' else 'times'}: "
                            f"{', '.join(dup[:5])}: keep one row per period")
    gaps = np.flatnonzero(np.diff(positions) != 1)
    if len(gaps):
        missing = [labels[order[i]] for i in gaps[:5]]
        raise OutcomesError(f"column '{column}' has {len(gaps)} gap(s) in the series, after {', '.join(missing)}: "
                            "fill the missing periods (an ITS needs every period)")
    return order, [labels[i] for i in order], kind


def _to_position(value, kind: str, labels: list[str]) -> int:
    if kind == "month":
        try:
            label = str(pd.Period(pd.to_datetime(str(value), format="mixed"), freq="M"))
        except (ValueError, TypeError):
            raise OutcomesError(f"intervention {value!r} is not a month (YYYY-MM or YYYY-MM-DD)") from None
    else:
        label = str(int(value))
    if label not in labels:
        raise OutcomesError(f"intervention {label} is outside the series ({labels[0]} to {labels[-1]})")
    return labels.index(label)


def _season(positions_month: np.ndarray, seasonality: str) -> tuple[np.ndarray, list[str]]:
    if seasonality in ("none", None):
        return np.empty((len(positions_month), 0)), []
    if seasonality == "month":
        months = positions_month % 12
        cols = [(months == m).astype(float) for m in range(1, 12)]
        return np.column_stack(cols), [f"month_{m + 1}" for m in range(1, 12)]
    if seasonality.startswith("fourier:"):
        try:
            k = int(seasonality.split(":", 1)[1])
        except ValueError:
            raise OutcomesError(f"seasonality {seasonality!r}: write fourier:K with K = 1 to 5") from None
        if not 1 <= k <= 5:
            raise OutcomesError(f"seasonality {seasonality!r}: K must be 1 to 5 (monthly data)")
        angle = 2 * np.pi * positions_month / 12.0
        cols, names = [], []
        for j in range(1, k + 1):
            cols += [np.sin(j * angle), np.cos(j * angle)]
            names += [f"sin{j}", f"cos{j}"]
        return np.column_stack(cols), names
    raise OutcomesError(f"seasonality must be none, month or fourier:K, got {seasonality!r}")


def fit_its(data: pd.DataFrame, time: str, outcome: str, interventions, *, family: str = "gaussian",
            offset: str | None = None, denominator: str | None = None, seasonality: str = "none",
            slope_change: bool = True, scale: str = "model", hac_lags: int | None = None, errors: str = "auto",
            alpha: float = 0.05,
            draws: int = 4000, seed: int = 20240101) -> ITSResult:
    """Fit a segmented regression (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per period.
    time : str
        Column of months (``YYYY-MM`` or dates) or whole time steps.
    outcome : str
        The series: a number (gaussian), a count (poisson) or the numerator (binomial).
    interventions : str, int or list
        Month(s) the change took effect (first affected period).
    family : {"gaussian", "poisson", "binomial"}
    offset : str, optional
        Poisson exposure column (the model uses its log).
    denominator : str, optional
        Binomial denominator column.
    seasonality : {"none", "month", "fourier:K"}
    slope_change : bool
        Include slope-change terms (default) or level changes only.
    scale : {"model", "pearson"}
        ``pearson`` estimates the dispersion from Pearson's chi-square (quasi-Poisson / quasi-binomial).
    errors : {"auto", "ols", "hac", "ar1"}
        Gaussian only. ``auto`` (default) fits OLS, and keeps its classical errors when the residuals show no
        autocorrelation (Ljung-Box p >= 0.05 and Durbin-Watson 1.5 to 2.5), else refits with AR(1) errors by
        restricted maximum likelihood (:func:`fit_ar1`). ``hac`` gives Newey-West errors (lag ``hac_lags`` or
        floor(4 (n/100)^(2/9))); in simulations here HAC intervals under-covered in monthly series of 60 to 96
        points (about 90% for a nominal 95%), which is why it is not the default.

    Examples
    --------
    >>> months = pd.period_range("2020-01", periods=36, freq="M").astype(str)
    >>> noise = np.random.default_rng(1).normal(0, 1, 36)
    >>> y = 50 + 0.1 * np.arange(36) + 8 * (np.arange(36) >= 18) + noise  # a level change of 8 at month 18
    >>> r = fit_its(pd.DataFrame({"m": months, "y": y}), "m", "y", "2021-07")
    >>> round(r.level_change.estimate, 1), bool(r.level_change.ci_low < 8 < r.level_change.ci_high)
    (7.5, True)
    """
    if family not in FAMILIES:
        raise OutcomesError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    if errors not in ("auto", "ols", "hac", "ar1"):
        raise OutcomesError(f"errors must be 'auto', 'ols', 'hac' or 'ar1', got {errors!r}")
    if errors in ("ar1", "hac", "ols") and family != "gaussian":
        raise OutcomesError(f"errors={errors!r} applies to the gaussian family; use scale='pearson' for counts and rates")
    if scale not in ("model", "pearson"):
        raise OutcomesError(f"scale must be 'model' or 'pearson', got {scale!r}")
    for column in [time, outcome, offset, denominator]:
        if column is not None and column not in data.columns:
            raise OutcomesError(f"column '{column}' is not in the data; it has {', '.join(map(str, data.columns))}")
    if family == "poisson" and denominator:
        raise OutcomesError("a poisson model takes --offset, not --denominator")
    if family == "binomial" and not denominator:
        raise OutcomesError("a binomial model needs --denominator (the number of cases each period)")
    if family == "gaussian" and (offset or denominator):
        raise OutcomesError("a gaussian model takes neither an offset nor a denominator")
    order, labels, kind = _time_index(data[time], time)
    frame = data.iloc[order].reset_index(drop=True)
    y = _numeric(frame[outcome], outcome)
    n = len(y)
    t = np.arange(n, dtype=float)
    points = [interventions] if isinstance(interventions, str | int) else list(interventions)
    if not points:
        raise OutcomesError("give at least one intervention")
    positions = sorted(_to_position(p, kind, labels) for p in points)
    if len(set(positions)) != len(positions):
        raise OutcomesError("two interventions fall in the same period")
    bounds = [0, *positions, n]
    for i, position in enumerate(positions):
        before, after = position - bounds[i], bounds[i + 2] - position
        if before < MIN_POINTS_EACH_SIDE or after < MIN_POINTS_EACH_SIDE:
            raise OutcomesError(f"intervention {labels[position]} has {before} periods before and {after} after it (since "
                                f"the previous change / until the next); at least {MIN_POINTS_EACH_SIDE} each side are needed")
    columns = [np.ones(n), t]
    names = ["const", "trend"]
    for position in positions:
        step = (t >= position).astype(float)
        columns.append(step)
        names.append(f"level_{labels[position]}")
        if slope_change:
            columns.append(step * (t - position))
            names.append(f"slope_{labels[position]}")
    month_number = (np.asarray([pd.Period(label, "M").month for label in labels]) if kind == "month"
                    else (np.arange(n) % 12) + 1)
    season, season_names = _season(month_number, seasonality)
    X = np.column_stack([*columns, season]) if season.size else np.column_stack(columns)
    names += season_names
    intervention_columns = [i for i, name in enumerate(names) if name.startswith(("level_", "slope_"))]

    exposure = None
    chosen = errors
    if family == "gaussian" and errors == "auto":
        probe = sm.OLS(y, X).fit()
        lb = acorr_ljungbox(probe.resid, lags=[max(1, min(12, n // 5))], return_df=True)["lb_pvalue"].iloc[0]
        dw = durbin_watson(probe.resid)
        chosen = "ols" if (lb >= 0.05 and 1.5 <= dw <= 2.5) else "ar1"
    if family == "gaussian" and chosen == "ols":
        lags = None
        fit = sm.OLS(y, X).fit()
        dist = stats.t(df=fit.df_resid)
    elif family == "gaussian" and chosen == "ar1":
        lags = None
        fit = fit_ar1(y, X)
        fit_params, fit_cov = fit.params, fit.cov
        dist = stats.t(df=max(n - X.shape[1] - 1, 1))
    elif family == "gaussian":
        lags = hac_lags if hac_lags is not None else int(math.floor(4 * (n / 100) ** (2 / 9)))
        fit = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
        dist = stats.t(df=fit.df_resid)
    else:
        lags = hac_lags
        if family == "poisson":
            if np.any(y < 0) or not np.all(np.equal(np.mod(y, 1), 0)):
                raise OutcomesError(f"'{outcome}' must hold non-negative whole counts for a poisson model")
            if offset:
                exposure = _numeric(frame[offset], offset)
                if np.any(exposure <= 0):
                    bad = [labels[i] for i in np.flatnonzero(exposure <= 0)[:5]]
                    raise OutcomesError(f"offset '{offset}' must be positive; it is zero or negative in {', '.join(bad)}")
            model = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(exposure) if exposure is not None else None)
        else:
            trials = _numeric(frame[denominator], denominator)
            if np.any(trials <= 0):
                bad = [labels[i] for i in np.flatnonzero(trials <= 0)[:5]]
                raise OutcomesError(f"denominator '{denominator}' must be positive; it is not in {', '.join(bad)}")
            if np.any(y < 0) or np.any(y > trials):
                raise OutcomesError(f"'{outcome}' must lie between 0 and '{denominator}' in every period")
            exposure = trials
            # Proportions with the trials as variance weights: the same likelihood as a two-column response, but
            # statsmodels then computes Pearson's chi-square (and so the quasi-binomial scale) per trial.
            model = sm.GLM(y / trials, X, family=sm.families.Binomial(), var_weights=trials)
        fit = model.fit(scale="X2" if scale == "pearson" else None)
        dist = stats.norm()  # Wald intervals on the link scale, as R's confint.default and Lopez Bernal et al.
    if family == "gaussian" and chosen == "ar1":
        params, cov = fit_params, fit_cov
    else:
        params, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    bse = np.sqrt(np.diag(cov))
    q = dist.ppf(1 - alpha / 2)

    def estimate(i: int) -> Estimate:
        stat = params[i] / bse[i]
        return Estimate(float(params[i]), float(bse[i]), float(params[i] - q * bse[i]), float(params[i] + q * bse[i]),
                        float(2 * dist.sf(abs(stat))), alpha)

    effects = []
    for position in positions:
        li = names.index(f"level_{labels[position]}")
        level = estimate(li)
        slope = estimate(names.index(f"slope_{labels[position]}")) if slope_change else None
        ratio = None
        if family != "gaussian":
            ratio = {"estimate": math.exp(level.estimate), "ci_low": math.exp(level.ci_low), "ci_high": math.exp(level.ci_high)}
        effects.append(InterventionEffect(labels[position], level, slope, ratio))

    X_cf = X.copy()
    X_cf[:, intervention_columns] = 0.0

    log_exposure = np.log(exposure) if (family == "poisson" and exposure is not None) else 0.0

    def mean_from(eta: np.ndarray) -> np.ndarray:
        """Expected outcome from the linear predictor (the last axis is time): count, rate or level."""
        if family == "gaussian":
            return eta
        if family == "poisson":
            return np.exp(eta + log_exposure)
        return 1 / (1 + np.exp(-eta))  # a rate for binomial models

    fitted, counterfactual = mean_from(X @ params), mean_from(X_cf @ params)
    rng = np.random.default_rng(seed)
    betas = rng.multivariate_normal(params, cov, size=draws, method="cholesky")
    post = t >= positions[0]
    sims_fit = mean_from(betas @ X.T)[:, post]
    sims_cf_all = mean_from(betas @ X_cf.T)
    sims_cf = sims_cf_all[:, post]
    absolute = (sims_fit - sims_cf).mean(axis=1)
    relative = (sims_fit.sum(axis=1) / sims_cf.sum(axis=1)) - 1
    lo, hi = alpha / 2, 1 - alpha / 2
    observed = y / exposure if family == "binomial" else y
    point_abs = float((fitted[post] - counterfactual[post]).mean())
    point_rel = float(fitted[post].sum() / counterfactual[post].sum() - 1)
    post_effect = {"periods": int(post.sum()), "absolute": point_abs, "absolute_low": float(np.quantile(absolute, lo)),
                   "absolute_high": float(np.quantile(absolute, hi)), "relative": point_rel,
                   "relative_low": float(np.quantile(relative, lo)), "relative_high": float(np.quantile(relative, hi))}
    residuals = (y - fitted) if family == "gaussian" else fit.resid_pearson
    lb_lag = max(1, min(12, n // 5))
    ljung = acorr_ljungbox(residuals, lags=[lb_lag], return_df=True)
    diagnostics = {"durbin_watson": float(durbin_watson(residuals)), "ljung_box_p": float(ljung["lb_pvalue"].iloc[0]),
                   "ljung_box_lag": lb_lag, "dispersion": float(fit.scale) if family != "gaussian" else None,
                   "error_model": chosen if family == "gaussian" else f"{family} ({scale} scale)",
                   "converged": bool(getattr(fit, "converged", True))}
    chart = pd.DataFrame({
        "time": labels, "observed": observed, "fitted": fitted, "counterfactual": counterfactual,
        "counterfactual_low": np.quantile(sims_cf_all, lo, axis=0), "counterfactual_high": np.quantile(sims_cf_all, hi, axis=0),
        "post": post,
    })
    return ITSResult(family=family, n=n, alpha=alpha, seasonality=seasonality or "none", hac_lags=lags,
                     scale=scale if family != "gaussian" else chosen, effects=tuple(effects), post_effect=post_effect, diagnostics=diagnostics,
                     frame=chart, fit=fit)


@dataclass(frozen=True)
class AR1Fit:
    """A linear regression with stationary AR(1) errors, fitted by restricted maximum likelihood (:func:`fit_ar1`)."""

    params: np.ndarray  # the regression coefficients
    cov: np.ndarray  # their covariance: the GLS covariance at the estimated autocorrelation
    phi: float  # the errors' lag-1 autocorrelation
    sigma2: float  # the innovations' variance (REML: the transformed residuals' sum of squares over n - k)
    restricted_loglike: float
    nobs: int
    converged: bool  # False when the estimate is at the bound (the errors are nearly a random walk)


def _prais_winsten(y: np.ndarray, X: np.ndarray, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """The whitening transform of AR(1) errors, first observation included: ``y*`` and ``X*`` whose errors are
    independent with equal variance."""
    first = math.sqrt(1 - phi * phi)
    ys = np.concatenate([[first * y[0]], y[1:] - phi * y[:-1]])
    Xs = np.vstack([first * X[:1], X[1:] - phi * X[:-1]])
    return ys, Xs


def fit_ar1(y: np.ndarray, X: np.ndarray, *, bound: float = 0.99) -> AR1Fit:
    """Regression with stationary AR(1) errors by restricted maximum likelihood (REML), the default of R's
    ``nlme::gls(correlation = corAR1())``.

    For a given autocorrelation ``phi`` the Prais-Winsten transform makes the errors independent: the coefficients
    are least squares on the transformed data, the innovations' variance is ``SSR* / (n - k)``, and the restricted
    log-likelihood is a function of ``phi`` alone,
    ``-(n - k)/2 (log(2 pi sigma2) + 1) + log(1 - phi^2)/2 - log|X*'X*|/2``. It is maximised over
    ``|phi| <= bound`` on a grid of 0.01 and then by Brent's method within the best cell. The coefficients'
    covariance is ``sigma2 (X*'X*)^-1`` at that ``phi``, as ``gls`` reports it.

    Why not maximum likelihood (statsmodels' SARIMAX, which this replaced): ML underestimates ``phi`` in short
    series, so its intervals were too narrow. In simulated monthly series (AR(1) errors with ``phi`` = 0.5, 48
    points, Fourier seasonality, 300 series) the 95% interval of the level change covered the injected change
    in 83% of series with exact ML and GLS errors, and in 89% with SARIMAX's default (outer-product-of-gradients)
    errors, which were also erratic (3.6 times the observed-information error in one series); with REML, 93%
    (95% with independent errors). SARIMAX also took about 0.2 s a fit, and often stopped unconverged.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    n, k = X.shape
    if n - k < 2:
        raise OutcomesError(f"AR(1) errors need at least {k + 2} periods for {k} coefficients; there are {n}")

    def restricted(phi: float) -> tuple[float, np.ndarray, float, np.ndarray]:
        ys, Xs = _prais_winsten(y, X, phi)
        beta, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
        sigma2 = float(np.sum((ys - Xs @ beta) ** 2) / (n - k))
        logdet = np.linalg.slogdet(Xs.T @ Xs)[1]
        value = -(n - k) / 2 * (math.log(2 * math.pi * sigma2) + 1) + 0.5 * math.log(1 - phi * phi) - 0.5 * logdet
        return value, beta, sigma2, Xs

    grid = np.linspace(-bound, bound, int(round(2 * bound / 0.01)) + 1)
    values = np.array([restricted(float(phi))[0] for phi in grid])
    best = int(np.argmax(values))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = minimize_scalar(lambda phi: -restricted(phi)[0], bounds=(low, high), method="bounded",
                            options={"xatol": 1e-8})
    phi = float(found.x) if found.success and -found.fun >= values[best] else float(grid[best])
    value, beta, sigma2, Xs = restricted(phi)
    return AR1Fit(params=beta, cov=sigma2 * np.linalg.pinv(Xs.T @ Xs), phi=phi, sigma2=sigma2,
                  restricted_loglike=value, nobs=n, converged=abs(phi) < bound - 1e-4)


def _numeric(values: pd.Series, column: str) -> np.ndarray:
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        rows = list(np.flatnonzero(bad.to_numpy())[:5])
        raise OutcomesError(f"column '{column}' has non-numeric values in rows {rows}: e.g. {values.iloc[rows[0]]!r}")
    if converted.isna().any():
        raise OutcomesError(f"column '{column}' has missing values: an ITS needs a value for every period")
    return converted.to_numpy(dtype=float)


@dataclass(frozen=True, eq=False)
class BatchITSResult(Result):
    """Level and slope changes of many series fitted with one shared design (one row per series)."""

    method: ClassVar[str] = "interrupted time series, many series with one shared design (vectorised)"
    citation: ClassVar[str] = "Wagner et al. (2002), J Clin Pharm Ther 27:299; Newey & West (1987) for HAC errors"

    family: str
    errors: str
    names: tuple[str, ...]
    params: np.ndarray = field(repr=False)  # (series, coefficients)
    bse: np.ndarray = field(repr=False)
    alpha: float
    table: pd.DataFrame = field(repr=False)

    warnings: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        return self.table

    @property
    def nobs(self) -> int:
        """Series fitted."""
        return int(len(self.table))

    @property
    def headline(self) -> str:
        if "level_change" not in self.table:
            return f"{len(self.table)} series fitted."
        moved = int((self.table["level_p_value"] < self.alpha).sum())
        return (f"{moved} of {len(self.table)} series show a level change at alpha {self.alpha:g} "
                f"(about {self.alpha * len(self.table):.0f} would by chance alone if nothing changed).")

    def _payload(self) -> dict:
        return {"family": self.family, "errors": self.errors, "names": list(self.names),
                "series": self.table.to_dict(orient="records")}


def design_matrix(n: int, intervention: int, *, slope_change: bool = True, fourier: int = 0,
                  first_month: int = 1) -> tuple[np.ndarray, list[str]]:
    """The segmented-regression design shared by :func:`fit_its` and :func:`fit_many` (one intervention)."""
    t = np.arange(n, dtype=float)
    step = (t >= intervention).astype(float)
    columns, names = [np.ones(n), t, step], ["const", "trend", "level"]
    if slope_change:
        columns.append(step * (t - intervention))
        names.append("slope")
    months = (first_month - 1 + np.arange(n)) % 12 + 1
    for j in range(1, fourier + 1):
        angle = 2 * np.pi * months / 12.0
        columns += [np.sin(j * angle), np.cos(j * angle)]
        names += [f"sin{j}", f"cos{j}"]
    return np.column_stack(columns), names


def fit_many(Y: np.ndarray, X: np.ndarray, names: list[str], *, family: str = "gaussian", errors: str = "hac",
             hac_lags: int | None = None, offset: np.ndarray | None = None, scale: str = "model",
             alpha: float = 0.05, max_iter: int = 50, tol: float = 1e-10, chunk: int = 20_000) -> BatchITSResult:
    """Fit thousands of series that share one design matrix, vectorised across series.

    Gives the same estimates and standard errors as fitting each series alone with statsmodels: OLS with
    classical (``errors="ols"``) or Newey-West errors (``errors="hac"``, Bartlett kernel, statsmodels'
    small-sample correction), or Poisson by iteratively reweighted least squares run on all series at once
    (with ``offset`` as log-exposure; ``scale="pearson"`` for quasi-Poisson).

    Parameters
    ----------
    Y : array (series, periods)
    X : array (periods, coefficients), e.g. from :func:`design_matrix`
    offset : array (series, periods), optional
        Poisson exposure (not its log).
    """
    Y = np.asarray(Y, dtype=float)
    X = np.asarray(X, dtype=float)
    if Y.ndim != 2 or Y.shape[1] != X.shape[0]:
        raise OutcomesError(f"Y must be (series, periods) with periods = {X.shape[0]}, got {Y.shape}")
    if Y.shape[0] > chunk:  # bound memory: the HAC scores are (series x periods x coefficients)
        parts = [fit_many(Y[i:i + chunk], X, names, family=family, errors=errors, hac_lags=hac_lags,
                          offset=None if offset is None else np.asarray(offset)[i:i + chunk], scale=scale,
                          alpha=alpha, max_iter=max_iter, tol=tol, chunk=chunk)
                 for i in range(0, Y.shape[0], chunk)]
        table = pd.concat([p.table for p in parts], ignore_index=True)
        table["series"] = np.arange(len(table))
        return BatchITSResult(family=parts[0].family, errors=parts[0].errors, names=parts[0].names,
                              params=np.vstack([p.params for p in parts]), bse=np.vstack([p.bse for p in parts]),
                              alpha=alpha, table=table)
    if not np.all(np.isfinite(Y)):
        raise OutcomesError("Y has missing or infinite values: every series needs every period")
    m, n = Y.shape
    k = X.shape[1]
    if family == "gaussian":
        xtx_inv = np.linalg.inv(X.T @ X)
        params = Y @ X @ xtx_inv  # (m, k)
        resid = Y - params @ X.T
        if errors == "ols":
            sigma2 = (resid**2).sum(axis=1) / (n - k)
            cov_diag = sigma2[:, None] * np.diag(xtx_inv)[None, :]
        elif errors == "hac":
            lags = hac_lags if hac_lags is not None else int(math.floor(4 * (n / 100) ** (2 / 9)))
            # Because X is shared, each lag's meat is one matrix product: (u_t u_{t-l}) @ (x_t outer x_{t-l}).
            meat = (resid**2) @ np.einsum("ti,tj->tij", X, X).reshape(n, k * k)
            for lag in range(1, lags + 1):
                weight = 1 - lag / (lags + 1)
                outer = np.einsum("ti,tj->tij", X[lag:], X[:-lag]).reshape(n - lag, k * k)
                cross = ((resid[:, lag:] * resid[:, :-lag]) @ outer).reshape(m, k, k)
                meat += weight * (cross + cross.transpose(0, 2, 1)).reshape(m, k * k)
            meat *= n / (n - k)  # statsmodels' use_correction=True
            # Only the diagonal of (X'X)^-1 meat (X'X)^-1 is needed: one more matrix product.
            corner = np.einsum("ij,ki->jki", xtx_inv, xtx_inv).reshape(k * k, k)
            cov_diag = meat @ corner
        else:
            raise OutcomesError("fit_many supports errors='ols' or 'hac' for the gaussian family")
        dist = stats.t(df=n - k)
    elif family == "poisson":
        if np.any(Y < 0):
            raise OutcomesError("poisson counts must be non-negative")
        log_exposure = np.log(offset) if offset is not None else np.zeros_like(Y)
        if offset is not None and np.any(np.asarray(offset) <= 0):
            raise OutcomesError("offsets must be positive")
        mu = Y + 0.5
        eta = np.log(mu) - log_exposure
        params = np.zeros((m, k))
        for _ in range(max_iter):
            z = eta + (Y - mu) / mu  # working response (without the offset)
            w = mu
            xtwx = np.einsum("ti,mt,tj->mij", X, w, X)
            xtwz = np.einsum("ti,mt->mi", X, w * z)
            new = np.linalg.solve(xtwx, xtwz[..., None])[..., 0]
            eta = new @ X.T
            mu = np.exp(eta + log_exposure)
            change = np.max(np.abs(new - params))
            params = new
            if change < tol:
                break
        xtwx = np.einsum("ti,mt,tj->mij", X, mu, X)
        cov_diag = np.diagonal(np.linalg.inv(xtwx), axis1=1, axis2=2)
        if scale == "pearson":
            dispersion = (((Y - mu) ** 2) / mu).sum(axis=1) / (n - k)
            cov_diag = cov_diag * dispersion[:, None]
        dist = stats.norm()
    else:
        raise OutcomesError("fit_many supports the gaussian and poisson families")
    bse = np.sqrt(cov_diag)
    q = dist.ppf(1 - alpha / 2)
    table = pd.DataFrame({"series": np.arange(m)})
    for name in ("level", "slope"):
        if name in names:
            i = names.index(name)
            table[f"{name}_change"] = params[:, i]
            table[f"{name}_se"] = bse[:, i]
            table[f"{name}_ci_low"] = params[:, i] - q * bse[:, i]
            table[f"{name}_ci_high"] = params[:, i] + q * bse[:, i]
            table[f"{name}_p_value"] = 2 * dist.sf(np.abs(params[:, i] / bse[:, i]))
    return BatchITSResult(family=family, errors=errors if family == "gaussian" else scale, names=tuple(names),
                          params=params, bse=bse, alpha=alpha, table=table)
