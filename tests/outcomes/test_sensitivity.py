"""E-values (VanderWeele & Ding 2017) and Rosenbaum bounds (Rosenbaum 2002), on published examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from outcomes.errors import OutcomesError
from outcomes.sensitivity import (
    e_value,
    e_value_interval,
    rosenbaum_gamma,
    rosenbaum_p_upper,
    sensitivity_sentence,
)


@pytest.mark.parametrize("rr,expected", [
    (0.80, 1.81),  # the figure: 1/0.8 = 1.25, 1.25 + sqrt(1.25 x 0.25)
    (3.9, 7.26),  # VanderWeele & Ding (2017): breastfeeding and infections, RR 3.9 -> E-value 7.26
    (1.0, 1.0),
    (2.0, 2.0 + math.sqrt(2.0)),
    (0.5, 2.0 + math.sqrt(2.0)),  # symmetric on the ratio scale
])
def test_e_value_formula(rr, expected):
    assert e_value(rr) == pytest.approx(expected, abs=5e-3)


def test_e_value_of_the_interval_limit_nearer_no_effect():
    # VanderWeele & Ding (2017): RR 3.9, CI 1.8 to 8.7 -> the lower limit's E-value is 3.0.
    assert e_value_interval(3.9, 1.8, 8.7) == pytest.approx(3.0, abs=5e-3)
    assert e_value_interval(0.8, 0.7, 0.9) == pytest.approx(e_value(0.9))
    assert e_value_interval(0.8, 0.6, 1.05) == 1.0
    with pytest.raises(OutcomesError):
        e_value(-1.0)


def test_rosenbaum_bounds_reproduce_hammonds_smoking_pairs():
    # Rosenbaum (2002, Observational Studies, section 4.3.2; the example of rbounds::binarysens(12, 110)):
    # 122 discordant pairs, 110 in which only the smoker died of lung cancer. Rosenbaum's conclusion: the
    # association stays significant (one-sided 0.05) up to Gamma = 5 and is explained away only by a hidden
    # factor about six times as strong (Gamma = 6), whether by the exact tail or the large-sample approximation.
    for method in ("exact", "normal"):
        assert rosenbaum_p_upper(110, 122, 5, method=method) < 0.05 < rosenbaum_p_upper(110, 122, 6, method=method)
        assert rosenbaum_p_upper(110, 122, 3, method=method) < 1e-3
    # The exact bound is the binomial tail sum, written out.
    p = 4 / 5
    tail = sum(math.comb(122, k) * p**k * (1 - p) ** (122 - k) for k in range(110, 123))
    assert rosenbaum_p_upper(110, 122, 4) == pytest.approx(tail, rel=1e-10)
    gamma = rosenbaum_gamma(110, 122, alpha=0.10)  # one-sided 0.05
    assert 5 < gamma < 6
    assert rosenbaum_p_upper(110, 122, gamma) == pytest.approx(0.05, abs=1e-8)
    assert rosenbaum_gamma(60, 120) == 1.0  # not significant even without hidden bias


def test_matching_result_carries_sensitivity_and_cli_json_has_it(tmp_path):
    from tests.outcomes.test_survival import _simulated

    rng = np.random.default_rng(4)
    frame = _simulated(rng, n=4000)
    frame["reoffended_12m"] = (rng.random(len(frame)) < np.where(frame["served"] == 1, 0.25, 0.40)).astype(int)
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyse", "match", "--csv", str(path), "--treatment", "served", "--outcome",
                                      "reoffended_12m", "--covariates", "x", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rr = data["treated_mean"] / data["control_mean"]
    assert data["e_value"]["estimate"] == pytest.approx(e_value(rr))
    assert 1 < data["e_value"]["ci"] < data["e_value"]["estimate"]
    assert data["rosenbaum_gamma"] > 1.2
    assert "times more likely to be served" in data["sensitivity"]


def test_sentence_in_plain_words():
    s = sensitivity_sentence(1.81, 1.3, 1.4)
    assert s.startswith("An unmeasured factor would need to make people 1.8 times more likely to be served and 1.8 "
                        "times more likely to reoffend to explain this difference away")
    assert "1.40 times as likely" in s
    assert "already includes no difference" in sensitivity_sentence(1.5, 1.0)
