"""Propensity-score matching: published Lalonde results, known-truth cohorts, bad input."""

from __future__ import annotations

import json
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from outcomes.errors import OutcomesError
from outcomes.matching import (
    ComparisonGroupWarning,
    _greedy_without_replacement,
    _nearest_with_replacement,
    fit_propensity,
    match,
)
from tests.outcomes._groups_data import (
    EXPERIMENTAL_ATT,
    LALONDE_COVARIATES,
    biased_pool,
    lalonde,
    selected_cohort,
)


@pytest.fixture(scope="module")
def samples(shared_data):
    return lalonde(shared_data)


def quiet_match(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComparisonGroupWarning)
        return match(*args, **kwargs)


# ---------------------------------------------------------------- Lalonde (published results)


@pytest.mark.parametrize("replace,ratio", [(True, 1), (True, 5), (False, 1), (False, 5)])
def test_experimental_sample_interval_covers_1794(samples, replace, ratio):
    experimental, _ = samples
    result = quiet_match(experimental, "treat", "re78", LALONDE_COVARIATES, replace=replace, ratio=ratio)
    assert result.att.ci_low < EXPERIMENTAL_ATT < result.att.ci_high
    assert 500 < result.att.se < 1200  # a real interval, not a degenerate one
    assert result.naive.estimate == pytest.approx(EXPERIMENTAL_ATT, abs=0.5)  # randomised: naive is the benchmark
    assert result.n_treated == 185


def test_experimental_sample_is_nearly_balanced_before_matching(samples):
    experimental, stacked = samples
    randomised = quiet_match(experimental, "treat", "re78", LALONDE_COVARIATES, replace=True)
    survey = quiet_match(stacked, "treat", "re78", LALONDE_COVARIATES, replace=True)
    table = randomised.balance.table.set_index("covariate")
    # Randomisation leaves only chance differences: the largest is no-degree (0.30), every other under 0.2,
    # against 1.0 to 1.8 for the PSID survey pool.
    assert randomised.balance.max_smd_before == pytest.approx(0.304, abs=0.005)
    assert (table["smd_before"].abs().drop("nodegr") < 0.2).all()
    assert survey.balance.max_smd_before > 1.5
    assert table.loc["re74", "mean_treated_before"] == pytest.approx(2095.57, abs=0.01)


def test_psid_pool_naive_difference_is_badly_biased(samples):
    _, stacked = samples
    result = quiet_match(stacked, "treat", "re78", LALONDE_COVARIATES, replace=True)
    assert result.naive.estimate == pytest.approx(-15205, abs=1)
    assert result.naive.ci_high < -13000


@pytest.mark.parametrize("ratio", [1, 5])
def test_psid_pool_matching_recovers_the_experimental_effect(samples, ratio):
    _, stacked = samples
    result = quiet_match(stacked, "treat", "re78", LALONDE_COVARIATES, replace=True, ratio=ratio)
    # Smith & Todd (2005): PSID matching is specification-sensitive, so a band, not a point.
    assert 0 < result.att.estimate < 3500
    assert result.att.ci_low < EXPERIMENTAL_ATT < result.att.ci_high
    assert result.balance.max_smd_after < result.balance.max_smd_before / 3
    assert result.n_matched >= 180


def test_propensity_fit_agrees_with_statsmodels(samples):
    experimental, _ = samples
    model = fit_propensity(experimental, "treat", LALONDE_COVARIATES)
    reference = sm.Logit(experimental["treat"], sm.add_constant(experimental[LALONDE_COVARIATES])).fit(disp=0)
    np.testing.assert_allclose(model.coef, reference.params.to_numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.se, reference.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.score, reference.predict(), rtol=1e-7)


def test_penalised_propensity_shrinks_coefficients(samples):
    experimental, _ = samples
    plain = fit_propensity(experimental, "treat", LALONDE_COVARIATES)
    ridge = fit_propensity(experimental, "treat", LALONDE_COVARIATES, penalty=50.0)
    assert np.abs(ridge.coef[1:] * experimental[LALONDE_COVARIATES].std().to_numpy()).sum() < \
        0.7 * np.abs(plain.coef[1:] * experimental[LALONDE_COVARIATES].std().to_numpy()).sum()


# ---------------------------------------------------------------- known truth


def test_biased_pool_matching_removes_the_bias():
    frame = biased_pool(np.random.default_rng(11), effect=1.0)
    result = quiet_match(frame, "treated", "y", ["age", "prior", "sex"], replace=True)
    assert result.naive.estimate > 3.5  # the naive difference is several times the truth
    assert result.att.ci_low < 1.0 < result.att.ci_high
    assert abs(result.att.estimate - 1.0) < 0.35
    assert result.balance.max_smd_before > 1.0
    assert result.balance.max_smd_after < 0.1 and result.balance.balanced


def test_demo_world_reoffending_effect_is_recovered_and_naive_is_not():
    from cjmonitor.demo import cohort_rows

    frame = cohort_rows(np.random.default_rng(2023), 8000, date(2023, 1, 1), -0.05)
    covariates = ["age", "sex", "offence_group", "prior_offences", "risk_score", "sentence_type"]
    result = quiet_match(frame, "served", "reoffended_12m", covariates, replace=True, ratio=3)
    assert result.att.ci_low < -0.05 < result.att.ci_high
    assert result.att.ci_high < 0  # a real reduction is found
    assert not result.naive.ci_low < -0.05 < result.naive.ci_high
    assert result.naive.estimate > 0  # selection makes the served look worse
    assert result.headline.startswith(f"For 100 typical people in the treatment group, "
                                      f"{100 * result.treated_mean:.0f} reoffended within a year, against "
                                      f"{100 * result.control_mean:.0f} for 100 similar people who were not served: ")
    assert f": {-100 * result.att.estimate:.1f} fewer (95% CI" in result.headline


def test_caliper_ratio_and_exact_matching_are_honoured():
    frame = selected_cohort(np.random.default_rng(5), n=1500)
    frame["sex"] = np.where(np.random.default_rng(6).random(len(frame)) < 0.8, "M", "F")
    result = quiet_match(frame, "served", "reoffended", ["x1", "x2", "x3"], exact="sex", ratio=2, caliper=0.05)
    pairs = result.pairs
    assert (frame.loc[pairs.treated_row, "sex"].to_numpy() == frame.loc[pairs.control_row, "sex"].to_numpy()).all()
    assert pairs["distance"].max() <= result.settings["caliper_width"] + 1e-12
    assert pairs.groupby("treated_row").size().max() == 2
    assert not pairs["control_row"].duplicated().any()  # without replacement
    assert (frame.loc[pairs.treated_row, "served"] == 1).all() and (frame.loc[pairs.control_row, "served"] == 0).all()
    assert result.n_control_used == len(pairs)


def test_greedy_matching_takes_the_nearest_free_neighbour():
    treated = np.array([0.0, 0.1, 5.0])
    pool = np.array([0.05, 0.2, 4.0, 10.0])
    rows, cols, dist = _greedy_without_replacement(treated, pool, 1, np.inf)
    got = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    # Highest score first: 5.0 takes 4.0; 0.1 takes 0.05 (distance 0.05 beats 0.1); 0.0 is left with 0.2.
    assert got == {2: 2, 1: 0, 0: 1}
    np.testing.assert_allclose(dist, [1.0, 0.05, 0.2])
    rows, cols, _ = _nearest_with_replacement(treated, pool, 2, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_variance_without_replacement_is_the_paired_difference_variance():
    frame = selected_cohort(np.random.default_rng(9), n=800)
    result = quiet_match(frame, "served", "reoffended", ["x1", "x2", "x3"], caliper=None)
    pairs = result.pairs
    diff = frame.loc[pairs.treated_row, "reoffended"].to_numpy() - frame.loc[pairs.control_row, "reoffended"].to_numpy()
    assert result.att.estimate == pytest.approx(diff.mean())
    assert result.att.se == pytest.approx(np.sqrt(((diff - diff.mean()) ** 2).sum()) / len(diff))


def test_reuse_of_controls_widens_the_interval():
    frame = selected_cohort(np.random.default_rng(10), n=800)
    result = quiet_match(frame, "served", "reoffended", ["x1", "x2", "x3"], replace=True)
    pairs = result.pairs
    diff = frame.loc[pairs.treated_row, "reoffended"].to_numpy() - frame.loc[pairs.control_row, "reoffended"].to_numpy()
    naive_se = np.sqrt(((diff - diff.mean()) ** 2).sum()) / len(diff)
    assert pairs["control_row"].duplicated().any()
    assert result.att.se > 1.05 * naive_se


def test_result_serialises_to_the_cli_shape(samples):
    experimental, _ = samples
    data = quiet_match(experimental, "treat", "re78", LALONDE_COVARIATES).to_dict()
    text = json.dumps(data)
    assert set(data["att"]) >= {"estimate", "ci_low", "ci_high", "p_value"}
    assert {"n_treated", "n_matched", "n_control_used", "balance"} <= set(data)
    assert set(data["balance"]) >= {"max_smd_before", "max_smd_after", "table"}
    assert len(data["balance"]["table"]) == len(LALONDE_COVARIATES)
    assert "NaN" not in text


def test_summary_flags_imbalance(samples):
    _, stacked = samples
    with pytest.warns(ComparisonGroupWarning) as caught:
        result = match(stacked, "treat", "re78", LALONDE_COVARIATES, caliper=None)
    assert any("SMD" in str(w.message) for w in caught)
    assert result.balance.flagged
    assert "IMBALANCED" in result.summary()
    assert any("SMD" in note for note in result.warnings)


# ---------------------------------------------------------------- bad input


@pytest.fixture
def cohort():
    return selected_cohort(np.random.default_rng(1), n=600)


def test_missing_values_are_an_error(cohort):
    cohort.loc[[3, 7], "x1"] = np.nan
    with pytest.raises(OutcomesError, match=r"'x1' has 2 missing value\(s\) \(rows 3, 7\)"):
        match(cohort, "served", "reoffended", ["x1", "x2"])


def test_treatment_must_be_0_1(cohort):
    cohort["served"] = np.where(cohort["served"] == 1, "Y", "N")
    with pytest.raises(OutcomesError, match="must hold only 0 and 1.*'Y'"):
        match(cohort, "served", "reoffended", ["x1", "x2"])


def test_fewer_than_30_treated_is_an_error(cohort):
    few = pd.concat([cohort[cohort.served == 1].head(29), cohort[cohort.served == 0]])
    with pytest.raises(OutcomesError, match="only 29 treated people"):
        match(few, "served", "reoffended", ["x1", "x2"])


def test_constant_covariate_is_an_error(cohort):
    cohort["region"] = 3.0
    with pytest.raises(OutcomesError, match="'region' takes the same value"):
        match(cohort, "served", "reoffended", ["x1", "region"])


def test_collinear_covariates_are_an_error(cohort):
    cohort["x1_again"] = 2 * cohort["x1"] + 1
    with pytest.raises(OutcomesError, match="linear combinations"):
        match(cohort, "served", "reoffended", ["x1", "x2", "x1_again"])


def test_perfect_separation_is_an_error(cohort):
    cohort["score"] = cohort["served"] * 10 + np.random.default_rng(2).random(len(cohort))
    with pytest.raises(OutcomesError, match="perfect separation.*'score'"):
        match(cohort, "served", "reoffended", ["x1", "score"])


def test_quasi_separation_on_a_combination_is_an_error(cohort):
    # Neither covariate separates alone; their sum does (a + b = +/-(1 + u) for treated / untreated).
    rng = np.random.default_rng(3)
    a = rng.normal(size=len(cohort))
    sign = np.where(cohort["served"] == 1, 1.0, -1.0)
    cohort["a"] = a
    cohort["b"] = -a + sign * (1 + rng.uniform(0, 0.5, len(cohort)))
    with pytest.raises(OutcomesError, match="did not converge.*separat"):
        match(cohort, "served", "reoffended", ["a", "b"])


def test_no_overlap_is_an_error():
    rng = np.random.default_rng(4)
    treated = pd.DataFrame({"t": 1, "y": rng.random(200), "age": rng.uniform(18, 30, 200)})
    # Only 10 of 2,000 comparison people are as young as the people served.
    pool = pd.DataFrame({"t": 0, "y": rng.random(2000), "age": np.r_[rng.uniform(31, 70, 1990), rng.uniform(25, 30, 10)]})
    with pytest.raises(OutcomesError, match="no overlap: only \\d+ of 200 treated"):
        match(pd.concat([treated, pool]), "t", "y", ["age"])


def test_dropped_treated_people_are_warned_about_and_recorded():
    rng = np.random.default_rng(8)
    treated = pd.DataFrame({"t": 1, "y": rng.random(300), "age": rng.uniform(18, 40, 300)})
    pool = pd.DataFrame({"t": 0, "y": rng.random(3000), "age": rng.uniform(25, 70, 3000)})
    with pytest.warns(ComparisonGroupWarning, match="have no comparable comparison person"):
        result = match(pd.concat([treated, pool], ignore_index=True), "t", "y", ["age"], replace=True)
    assert result.n_dropped_support > 50
    assert result.n_matched == 300 - result.n_dropped_support - result.n_dropped_caliper
    assert any("left out" in note for note in result.warnings)


@pytest.mark.parametrize("kwargs,message", [
    ({"caliper": -1}, "caliper must be a positive"),
    ({"ratio": 0}, "ratio must be a whole number"),
    ({"alpha": 1.5}, "alpha must lie between 0 and 1"),
    ({"penalty": -1}, "penalty must be"),
])
def test_bad_settings_are_errors(cohort, kwargs, message):
    with pytest.raises(OutcomesError, match=message):
        match(cohort, "served", "reoffended", ["x1", "x2"], **kwargs)


def test_unknown_column_is_an_error(cohort):
    with pytest.raises(OutcomesError, match="'x9' not found"):
        match(cohort, "served", "reoffended", ["x1", "x9"])
