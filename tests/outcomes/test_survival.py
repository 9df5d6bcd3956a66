"""Time to first reoffence: Rossi (Fox & Weisberg's Cox model), Kaplan-Meier, RMST, JDL rule, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from outcomes.errors import OutcomesError
from outcomes.survival import cox, kaplan_meier, rmst, survival_at, time_to_reoffence

# Fox & Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R" (appendix to An R Companion to
# Applied Regression), coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi).
# Their race, wexp, mar, paro are coded 1 = black / yes / married / yes; here text levels become dummies
# with the first level dropped (race=other, mar=not married), which flips those two signs.
FOX_WEISBERG = {
    "fin=yes": (-0.3794, 0.1914),
    "age": (-0.0574, 0.0220),
    "race=other": (-0.3139, 0.3080),
    "wexp=yes": (-0.1498, 0.2122),
    "mar=not married": (0.4337, 0.3819),
    "paro=yes": (-0.0849, 0.1958),
    "prio": (0.0915, 0.0286),
}


@pytest.fixture(scope="module")
def rossi(shared_data):
    return pd.read_csv(shared_data / "rossi" / "rossi.csv")


def test_cox_reproduces_fox_and_weisberg_to_three_decimals(rossi):
    fit = cox(rossi, "week", "arrest", ["fin", "age", "race", "wexp", "mar", "paro", "prio"])
    table = fit.table.set_index("term")
    for term, (coef, se) in FOX_WEISBERG.items():
        assert table.loc[term, "coef"] == pytest.approx(coef, abs=5e-4), term
        assert table.loc[term, "se"] == pytest.approx(se, abs=5e-4), term
    assert table.loc["fin=yes", "hazard_ratio"] == pytest.approx(0.684, abs=5e-4)
    assert table.loc["fin=yes", "p_value"] == pytest.approx(0.047, abs=1e-3)
    assert fit.events == 114 and fit.n == 432


def test_kaplan_meier_at_week_52_is_the_reference_proportion(rossi):
    # Everyone is followed to week 52, so S(52) is the share never re-arrested: 1 - 48/216 with aid,
    # 1 - 66/216 without (22.2% vs 30.6% re-arrested, the data set's reference), and with no censoring the
    # Greenwood variance is the binomial p(1 - p)/n.
    for fin, arrested in (("yes", 48), ("no", 66)):
        group = rossi[rossi["fin"] == fin]
        row = survival_at(kaplan_meier(group["week"], group["arrest"]), 52)
        s = 1 - arrested / 216
        assert row["survival"] == pytest.approx(s, abs=1e-12)
        assert row["se"] == pytest.approx(math.sqrt(s * (1 - s) / 216), rel=1e-9)
        # log(-log) band: S ** exp(+-z se / (S |log S|))
        v = (row["se"] / (s * math.log(s))) ** 2
        assert row["ci_low"] == pytest.approx(s ** math.exp(1.959964 * math.sqrt(v)), rel=1e-6)
        assert row["ci_low"] < s < row["ci_high"]


def test_kaplan_meier_with_censoring_by_hand():
    # Times 1, 2+, 3, 3, 4+, 5: S(1) = 5/6, S(3) = 5/6 * (1 - 2/4), S(5) = 0 (the last one at risk).
    curve = kaplan_meier([1, 2, 3, 3, 4, 5], [1, 0, 1, 1, 0, 1])
    assert curve["survival"].round(6).tolist() == [1.0, round(5 / 6, 6), round(5 / 12, 6), 0.0]
    assert curve["at_risk"].tolist() == [6, 6, 4, 1]


def test_rmst_without_censoring_is_the_mean_truncated_time(rossi):
    for horizon in (30, 52):
        area, variance = rmst(rossi["week"], rossi["arrest"], horizon)
        truncated = np.minimum(rossi["week"], horizon)
        assert area == pytest.approx(truncated.mean(), rel=1e-12)
        assert variance == pytest.approx(truncated.var(ddof=0) / len(rossi), rel=1e-9)


def _simulated(rng, n=3000, hr=0.7, censor=18.0, truth=False):
    x = rng.normal(size=n)
    served = (rng.random(n) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    base = rng.exponential(1.0, n) / (0.08 * np.exp(0.5 * x))  # time to reoffence if not served
    t = np.where(served == 1, base / hr, base)  # proportional hazards: served people's hazard x hr
    c = rng.uniform(6, censor, n)
    frame = pd.DataFrame({"months": np.minimum(t, c), "reoffended": (t <= c).astype(int), "served": served, "x": x})
    if truth:  # the effect on restricted mean time at 12 months among the served (potential outcomes)
        on = served == 1
        return frame, float((np.minimum(base[on] / hr, 12) - np.minimum(base[on], 12)).mean())
    return frame


def test_matched_design_recovers_a_known_effect_with_pair_clustered_errors():
    frame, rmst_truth = _simulated(np.random.default_rng(7), truth=True)
    result = time_to_reoffence(frame, "months", "reoffended", "served", covariates=["x"], match=True)
    assert result.matched and result.cox_fit.robust
    assert result.rmst_difference.ci_low < rmst_truth < result.rmst_difference.ci_high
    assert result.rmst_difference.ci_low > 0  # served people stay free longer
    # The matched (marginal) hazard ratio is below 1 but nearer 1 than the conditional 0.7 (non-collapsibility);
    # the Cox model adjusted for x recovers the conditional 0.7.
    assert 0.7 < result.hazard_ratio.estimate < 0.9 and result.hazard_ratio.ci_high < 1
    adjusted = time_to_reoffence(frame, "months", "reoffended", "served", covariates=["x"])
    assert adjusted.hazard_ratio.ci_low < 0.7 < adjusted.hazard_ratio.ci_high
    naive = time_to_reoffence(frame, "months", "reoffended", "served")
    assert naive.hazard_ratio.estimate > result.hazard_ratio.estimate + 0.1  # selection on x biases it upwards
    assert "stayed free of proven reoffending" in result.headline and "longer" in result.headline
    d = result.to_dict()
    assert {"hazard_ratio", "rmst_difference", "n", "events", "km"} <= set(d)
    assert {"group", "time", "survival", "ci_low", "ci_high"} <= set(d["km"][0])
    json.dumps(d)


def test_fewer_than_30_reoffenders_withholds_the_figures():
    rng = np.random.default_rng(3)
    frame = _simulated(rng, n=400)
    frame = frame.assign(reoffended=0)
    frame.loc[frame.index[:25], "reoffended"] = 1
    result = time_to_reoffence(frame, "months", "reoffended", "served")
    assert not result.reportable and result.events == 25
    assert result.headline.startswith("Time to first reoffence is not shown: only 25 people reoffended")


def test_bad_input_is_named():
    frame = pd.DataFrame({"m": [1.0, -2.0, 3.0], "e": [1, 0, 1], "s": [1, 0, 1]})
    with pytest.raises(OutcomesError, match="negative in rows"):
        time_to_reoffence(frame, "m", "e", "s")
    with pytest.raises(OutcomesError, match="must hold only 0 and 1"):
        time_to_reoffence(frame.assign(e=[2, 0, 1], m=1.0), "m", "e", "s")
    with pytest.raises(OutcomesError, match="--match needs --covariates"):
        time_to_reoffence(frame, "m", "e", "s", match=True)


def test_cli_survival_json(tmp_path):
    path = tmp_path / "people.csv"
    _simulated(np.random.default_rng(11), n=1500).to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyse", "survival", "--csv", str(path), "--duration", "months", "--event",
                                      "reoffended", "--treatment", "served", "--covariates", "x", "--match",
                                      "--horizon", "12", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("hazard_ratio", "rmst_difference"):
        assert {"estimate", "ci_low", "ci_high", "p_value"} <= set(data[key])
    assert data["n"] > 0 and data["events"] >= 30 and data["horizon"] == 12
    assert {row["group"] for row in data["km"]} == {"treatment", "comparison"}
    bad = CliRunner().invoke(cli, ["analyse", "survival", "--csv", str(path), "--duration", "nope", "--event",
                                   "reoffended", "--treatment", "served"])
    assert bad.exit_code == 2 and "'nope'" in bad.output
