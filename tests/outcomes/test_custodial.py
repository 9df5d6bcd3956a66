"""Custodial sentence for the first reoffence: a known effect among matched reoffenders, JDL rules, bad input."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from cjmonitor.demo import cohort_rows
from outcomes.custodial import custodial_first_reoffence
from outcomes.errors import OutcomesError

COVARIATES = ["age", "sex", "offence_group", "prior_offences", "risk_score", "sentence_type"]


def test_matched_reoffenders_recover_the_demo_worlds_custody_effect():
    frame = cohort_rows(np.random.default_rng(11), 30000, date(2023, 1, 1), -0.05)
    result = custodial_first_reoffence(frame, "served", "reoffended_12m", "custodial_first", COVARIATES)
    assert result.reportable
    assert result.effect.ci_low < -0.06 < result.effect.ci_high  # the demo's injected effect among reoffenders
    assert result.effect.ci_high < 0
    assert result.headline.startswith("For 100 typical people in the treatment group who reoffended, ")
    assert "fewer (95% CI" in result.headline
    assert result.to_dict()["n_treated_reoffenders"] == result.n_treated_reoffenders


def test_no_effect_area_is_inconclusive_and_rules_are_enforced():
    frame = cohort_rows(np.random.default_rng(12), 3000, date(2023, 1, 1), 0.0)
    result = custodial_first_reoffence(frame, "served", "reoffended_12m", "custodial_first", COVARIATES)
    if not result.effect.significant:
        assert "the true effect could be between" in result.headline
    small = cohort_rows(np.random.default_rng(13), 120, date(2023, 1, 1), 0.0)
    with pytest.raises(OutcomesError, match="needs at least 30"):
        custodial_first_reoffence(small, "served", "reoffended_12m", "custodial_first", COVARIATES)
    old = frame.assign(custodial_first=None)
    with pytest.raises(OutcomesError, match="predates spec v3"):
        custodial_first_reoffence(old, "served", "reoffended_12m", "custodial_first", COVARIATES)
