"""Interrupted time series: the Sicily published results, known injected effects, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from outcomes.errors import OutcomesError
from outcomes.its import fit_its


@pytest.fixture(scope="module")
def sicily(shared_data):
    data = pd.read_csv(shared_data / "sicily" / "sicily.csv")
    data["month_label"] = [f"{y}-{m:02d}" for y, m in zip(data["year"], data["month"], strict=True)]
    return data


@pytest.mark.parametrize("options, expected", [
    ({}, (0.894, 0.865, 0.925)),
    ({"scale": "pearson"}, (0.894, 0.839, 0.953)),
    ({"scale": "pearson", "seasonality": "fourier:2"}, (0.885, 0.839, 0.933)),
])
def test_sicily_reference_results(sicily, options, expected):
    """Lopez Bernal, Cummins & Gasparrini (2017): level-change rate ratio of the smoking ban, to 3 decimals."""
    result = fit_its(sicily, "month_label", "aces", "2005-01", family="poisson", offset="stdpop",
                     slope_change=False, **options)
    ratio = result.to_dict()["rate_ratio"]
    assert (round(ratio["estimate"], 3), round(ratio["ci_low"], 3), round(ratio["ci_high"], 3)) == expected
    assert result.n == 59 and result.post_effect["periods"] == 23


def test_integer_time_gives_the_same_fit(sicily):
    by_month = fit_its(sicily, "month_label", "aces", "2005-01", family="poisson", offset="stdpop", slope_change=False)
    by_step = fit_its(sicily, "time", "aces", 37, family="poisson", offset="stdpop", slope_change=False)
    assert by_step.level_change.estimate == pytest.approx(by_month.level_change.estimate)


def _series(rng, n=48, at=24, level=8.0, slope=0.0, phi=0.4, sd=2.0):
    noise = np.zeros(n)
    shocks = rng.normal(0, sd, n)
    for i in range(n):
        noise[i] = phi * (noise[i - 1] if i else 0) + shocks[i]
    t = np.arange(n)
    season = 1.5 * np.sin(2 * np.pi * t / 12)
    y = 60 + 0.1 * t + level * (t >= at) + slope * np.maximum(t - at, 0) + season + noise
    months = pd.period_range("2021-01", periods=n, freq="M").astype(str)
    return pd.DataFrame({"month": months, "y": y})


def test_injected_level_and_slope_changes_are_recovered():
    rng = np.random.default_rng(11)
    data = _series(rng, level=8.0, slope=0.5, phi=0.0, sd=1.0)
    result = fit_its(data, "month", "y", "2023-01", seasonality="fourier:1")
    assert result.level_change.ci_low < 8.0 < result.level_change.ci_high
    assert result.slope_change.ci_low < 0.5 < result.slope_change.ci_high
    assert result.level_change.p_value < 0.001
    frame = result.frame
    assert list(frame.columns) == ["time", "observed", "fitted", "counterfactual", "counterfactual_low",
                                   "counterfactual_high", "post"]
    # Before the intervention the counterfactual is the fit; after it, the fit minus the level and slope changes.
    assert np.allclose(frame["counterfactual"].iloc[:24], frame["fitted"].iloc[:24])
    gap = frame["fitted"] - frame["counterfactual"]
    assert gap.iloc[24] == pytest.approx(result.level_change.estimate)
    assert gap.iloc[30] == pytest.approx(result.level_change.estimate + 6 * result.slope_change.estimate)
    assert "points" in result.sentence(scale=1, unit="points")


@pytest.mark.slow
@pytest.mark.simulation
def test_coverage_and_false_positives_with_seasonality():
    """Over 1,000 simulated series each (white noise, seasonality, a trend): 95% intervals cover the injected
    level change 93-97% of the time, and with no effect it is 'significant' at alpha 0.05 in 4-6% of series."""
    rng = np.random.default_rng(2024)
    covered = false_positive = 0
    sims = 1000
    for _ in range(sims):
        data = _series(rng, n=60, at=30, level=4.0, phi=0.0, sd=2.0)
        r = fit_its(data, "month", "y", "2023-07", seasonality="fourier:1", slope_change=False, draws=20)
        covered += r.level_change.ci_low < 4.0 < r.level_change.ci_high
        null = _series(rng, n=60, at=30, level=0.0, phi=0.0, sd=2.0)
        false_positive += fit_its(null, "month", "y", "2023-07", seasonality="fourier:1", slope_change=False,
                                  draws=20).level_change.p_value < 0.05
    assert 0.93 <= covered / sims <= 0.97, covered / sims
    assert 0.04 <= false_positive / sims <= 0.06, false_positive / sims


def test_ar1_errors_recover_the_effect_under_autocorrelation():
    rng = np.random.default_rng(8)
    data = _series(rng, n=96, at=48, level=4.0, phi=0.6, sd=2.0)
    hac = fit_its(data, "month", "y", "2025-01", seasonality="fourier:1", slope_change=False)
    ar1 = fit_its(data, "month", "y", "2025-01", seasonality="fourier:1", slope_change=False, errors="ar1")
    assert hac.diagnostics["durbin_watson"] < 1.2, "the diagnostics show the autocorrelation"
    assert ar1.level_change.ci_low < 4.0 < ar1.level_change.ci_high
    assert ar1.level_change.se > 0


def _dense_reml(y, X, phi):
    """The restricted log-likelihood of AR(1) errors from the full covariance matrix (an independent check of the
    Prais-Winsten profile in fit_ar1): the coefficients by GLS, then Harville's REML criterion."""
    n, k = X.shape
    lags = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    R = phi ** lags / (1 - phi ** 2)  # correlation structure up to sigma2
    Ri = np.linalg.inv(R)
    XtRiX = X.T @ Ri @ X
    beta = np.linalg.solve(XtRiX, X.T @ Ri @ y)
    r = y - X @ beta
    sigma2 = r @ Ri @ r / (n - k)
    value = -0.5 * ((n - k) * np.log(2 * np.pi * sigma2) + np.linalg.slogdet(R)[1] + np.linalg.slogdet(XtRiX)[1]
                    + (n - k))
    return value, beta, sigma2 * np.linalg.inv(XtRiX)


@pytest.mark.parametrize("phi, n", [(0.0, 48), (0.6, 36), (-0.4, 60), (0.85, 96)])
def test_ar1_fit_is_the_reml_of_the_full_covariance(phi, n):
    from scipy.optimize import minimize_scalar

    from outcomes.its import fit_ar1

    rng = np.random.default_rng(int(100 * phi) + n)
    data = _series(rng, n=n, at=n // 2, level=4.0, phi=phi, sd=2.0)
    t = np.arange(n)
    X = np.column_stack([np.ones(n), t, (t >= n // 2).astype(float), np.sin(2 * np.pi * t / 12),
                         np.cos(2 * np.pi * t / 12)])
    fit = fit_ar1(data["y"].to_numpy(), X)
    found = minimize_scalar(lambda p: -_dense_reml(data["y"].to_numpy(), X, p)[0], bounds=(-0.99, 0.99),
                            method="bounded", options={"xatol": 1e-9})
    value, beta, cov = _dense_reml(data["y"].to_numpy(), X, found.x)
    assert fit.phi == pytest.approx(found.x, abs=1e-4)
    assert fit.restricted_loglike == pytest.approx(value, abs=1e-6)
    assert np.allclose(fit.params, beta, atol=1e-4)
    assert np.allclose(np.sqrt(np.diag(fit.cov)), np.sqrt(np.diag(cov)), rtol=1e-3)
    assert fit.converged


def test_ar1_fit_refuses_too_few_periods():
    from outcomes.its import fit_ar1

    with pytest.raises(OutcomesError, match="at least 7 periods for 5 coefficients"):
        fit_ar1(np.arange(6.0), np.column_stack([np.ones(6), *np.eye(6)[:4]]))


@pytest.mark.slow
@pytest.mark.simulation
def test_ar1_intervals_cover_under_autocorrelation():
    """200 monthly series of 48 points with AR(1) errors (phi 0.5) and a level change of 4: the REML intervals
    cover it in 90-97% of series (maximum likelihood, which these replaced, covered 83% in the same design)."""
    rng = np.random.default_rng(3)
    covered, sims = 0, 200
    for _ in range(sims):
        data = _series(rng, n=48, at=24, level=4.0, phi=0.5, sd=2.0)
        r = fit_its(data, "month", "y", data["month"][24], seasonality="fourier:1", slope_change=False,
                    errors="ar1", draws=20)
        covered += r.level_change.ci_low < 4.0 < r.level_change.ci_high
    assert 0.90 <= covered / sims <= 0.97, covered / sims


def test_binomial_rates_with_a_known_jump():
    rng = np.random.default_rng(5)
    n = np.full(36, 400)
    t = np.arange(36)
    p = 0.70 + 0.08 * (t >= 18)
    data = pd.DataFrame({"month": pd.period_range("2023-01", periods=36, freq="M").astype(str),
                         "met": rng.binomial(n, p), "cases": n})
    result = fit_its(data, "month", "met", "2024-07", family="binomial", denominator="cases", slope_change=False)
    effect = result.post_effect
    assert effect["absolute_low"] < 0.08 < effect["absolute_high"]
    assert result.to_dict()["odds_ratio"]["ci_low"] > 1
    # Binomial data are not overdispersed: the quasi-binomial (Pearson) scale is close to 1, per trial.
    quasi = fit_its(data, "month", "met", "2024-07", family="binomial", denominator="cases", slope_change=False,
                    scale="pearson")
    assert 0.5 < quasi.diagnostics["dispersion"] < 2.0
    assert quasi.level_change.se == pytest.approx(result.level_change.se * quasi.diagnostics["dispersion"] ** 0.5)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.iloc[:27], "periods before and"),
    (lambda d: pd.concat([d, d.iloc[[3]]]), "duplicate months"),
    (lambda d: d.drop(index=[10, 11]), "gap"),
    (lambda d: d.assign(y=d["y"].astype(object).where(d.index != 5, "n/a")), "non-numeric"),
])
def test_bad_series(change, message):
    data = change(_series(np.random.default_rng(1), n=36, at=24))
    with pytest.raises(OutcomesError, match=message):
        fit_its(data, "month", "y", "2023-01")


def test_bad_arguments():
    data = _series(np.random.default_rng(1), n=36, at=24)
    data["pop"] = 100.0
    data["count"] = 50
    with pytest.raises(OutcomesError, match="outside the series"):
        fit_its(data, "month", "y", "2030-01")
    with pytest.raises(OutcomesError, match="must be positive"):
        fit_its(data.assign(pop=data["pop"].where(data.index != 3, 0)), "month", "count", "2023-01", family="poisson", offset="pop")
    with pytest.raises(OutcomesError, match="needs --denominator"):
        fit_its(data, "month", "count", "2023-01", family="binomial")
    with pytest.raises(OutcomesError, match="not in the data"):
        fit_its(data, "month", "nothing", "2023-01")
    with pytest.raises(OutcomesError, match="fourier:K"):
        fit_its(data, "month", "y", "2023-01", seasonality="weekly")


@pytest.mark.parametrize("family, errors", [("gaussian", "hac"), ("gaussian", "ols"), ("poisson", "model"),
                                            ("poisson", "pearson")])
def test_batched_fits_equal_one_at_a_time(family, errors):
    from outcomes.its import design_matrix, fit_many

    rng = np.random.default_rng(12)
    n, at, m = 48, 24, 40
    X, names = design_matrix(n, at, fourier=1, first_month=1)
    t = np.arange(n)
    months = pd.period_range("2021-01", periods=n, freq="M").astype(str)
    if family == "gaussian":
        Y = 40 + 0.2 * t + 3 * (t >= at) + rng.normal(0, 2, (m, n))
        batch = fit_many(Y, X, names, errors=errors)
        singles = [fit_its(pd.DataFrame({"month": months, "y": Y[i]}), "month", "y", "2023-01",
                           seasonality="fourier:1", errors=errors, draws=10) for i in range(m)]
    else:
        exposure = rng.uniform(500, 900, (m, n))
        Y = rng.poisson(exposure * np.exp(-2 + 0.01 * t - 0.2 * (t >= at))).astype(float)
        batch = fit_many(Y, X, names, family="poisson", offset=exposure, scale=errors)
        singles = [fit_its(pd.DataFrame({"month": months, "y": Y[i], "e": exposure[i]}), "month", "y", "2023-01",
                           family="poisson", offset="e", seasonality="fourier:1", scale=errors, draws=10)
                   for i in range(m)]
    tolerance = 1e-8 if family == "gaussian" else 1e-6
    for i, single in enumerate(singles):
        assert batch.table.loc[i, "level_change"] == pytest.approx(single.level_change.estimate, abs=tolerance)
        assert batch.table.loc[i, "level_se"] == pytest.approx(single.level_change.se, abs=tolerance)
        assert batch.table.loc[i, "slope_change"] == pytest.approx(single.slope_change.estimate, abs=tolerance)
        assert batch.table.loc[i, "slope_p_value"] == pytest.approx(single.slope_change.p_value, abs=1e-6)
