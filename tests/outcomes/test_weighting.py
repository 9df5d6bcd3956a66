"""Inverse-probability weighting: Lalonde, a biased pool with known truth, diagnostics, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from outcomes.errors import OutcomesError
from outcomes.matching import ComparisonGroupWarning
from outcomes.weighting import ipw
from tests.outcomes._groups_data import (
    EXPERIMENTAL_ATT,
    LALONDE_COVARIATES,
    biased_pool,
    lalonde,
    selected_cohort,
)


def quiet_ipw(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComparisonGroupWarning)
        return ipw(*args, **kwargs)


@pytest.fixture(scope="module")
def samples(shared_data):
    return lalonde(shared_data)


@pytest.mark.parametrize("common_support", [True, False])
def test_experimental_sample_interval_covers_1794(samples, common_support):
    experimental, _ = samples
    result = quiet_ipw(experimental, "treat", "re78", LALONDE_COVARIATES, common_support=common_support)
    assert result.att.ci_low < EXPERIMENTAL_ATT < result.att.ci_high
    assert abs(result.att.estimate - EXPERIMENTAL_ATT) < 100  # randomised: weights barely move the means
    assert result.balance.max_smd_after < 0.1
    assert result.ess_control > 200  # 260 controls with near-equal weights


def test_psid_pool_weighting_recovers_the_experimental_effect(samples):
    _, stacked = samples
    result = quiet_ipw(stacked, "treat", "re78", LALONDE_COVARIATES)
    assert result.naive.estimate == pytest.approx(-15205, abs=1)
    assert 0 < result.att.estimate < 3500
    assert result.att.ci_low < EXPERIMENTAL_ATT < result.att.ci_high
    # The PSID weights are extreme: a handful of men carry the comparison group, and the result says so.
    assert result.ess_control < 20
    assert result.max_weight_share > 0.2
    assert any("carries" in note for note in result.warnings)


def test_sandwich_standard_error_matches_the_bootstrap(samples):
    experimental, _ = samples
    result = quiet_ipw(experimental, "treat", "re78", LALONDE_COVARIATES, common_support=False)
    rng = np.random.default_rng(0)
    draws = [quiet_ipw(experimental.iloc[rng.integers(0, len(experimental), len(experimental))]
                       .reset_index(drop=True), "treat", "re78", LALONDE_COVARIATES, common_support=False).att.estimate
             for _ in range(200)]
    assert result.att.se == pytest.approx(np.std(draws), rel=0.15)


def test_biased_pool_weighting_removes_the_bias():
    frame = biased_pool(np.random.default_rng(11), effect=1.0)
    result = quiet_ipw(frame, "treated", "y", ["age", "prior", "sex"])
    assert result.naive.estimate > 3.5
    assert result.att.ci_low < 1.0 < result.att.ci_high
    assert abs(result.att.estimate - 1.0) < 0.3
    assert result.balance.max_smd_before > 1.0 and result.balance.max_smd_after < 0.1


def test_weights_are_att_odds_and_capping_caps_them():
    frame = selected_cohort(np.random.default_rng(3), n=2000)
    plain = quiet_ipw(frame, "served", "reoffended", ["x1", "x2", "x3"], common_support=False)
    score = plain.propensity.score
    served = frame["served"].to_numpy() == 1
    np.testing.assert_allclose(plain.weights[served], 1.0)
    np.testing.assert_allclose(plain.weights[~served], score[~served] / (1 - score[~served]))
    w = plain.weights[~served].to_numpy()
    assert plain.ess_control == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert plain.max_weight == pytest.approx(w.max() * served.sum() / w.sum())
    capped = quiet_ipw(frame, "served", "reoffended", ["x1", "x2", "x3"], common_support=False,
                       max_weight_quantile=0.95)
    cap = np.quantile(w, 0.95)
    assert capped.weights[~served].max() == pytest.approx(cap)
    assert capped.n_capped == int((w > cap).sum()) > 0
    assert capped.ess_control > plain.ess_control


def test_output_has_the_match_shape():
    frame = selected_cohort(np.random.default_rng(4), n=800)
    data = quiet_ipw(frame, "served", "reoffended", ["x1", "x2", "x3"]).to_dict()
    assert {"att", "n_treated", "n_matched", "n_control_used", "balance"} <= set(data)
    assert {"estimate", "ci_low", "ci_high", "p_value"} <= set(data["att"])
    assert {"ess_control", "max_weight", "max_weight_share"} <= set(data["diagnostics"])


def test_no_overlap_is_an_error():
    rng = np.random.default_rng(4)
    treated = pd.DataFrame({"t": 1, "y": rng.random(200), "age": rng.uniform(18, 30, 200)})
    pool = pd.DataFrame({"t": 0, "y": rng.random(2000), "age": np.r_[rng.uniform(31, 70, 1990), rng.uniform(29, 30, 10)]})
    with pytest.raises(OutcomesError, match="no overlap"):
        ipw(pd.concat([treated, pool]), "t", "y", ["age"])


def test_bad_input_is_an_error():
    frame = selected_cohort(np.random.default_rng(1), n=600)
    with pytest.raises(OutcomesError, match="must hold only 0 and 1"):
        ipw(frame.assign(served=frame["served"] * 2), "served", "reoffended", ["x1"])
    with pytest.raises(OutcomesError, match="missing value"):
        ipw(frame.assign(x2=frame["x2"].where(frame.index != 5)), "served", "reoffended", ["x1", "x2"])
    with pytest.raises(OutcomesError, match="max_weight_quantile"):
        ipw(frame, "served", "reoffended", ["x1"], max_weight_quantile=1.5)
