"""Staggered DiD (Callaway & Sant'Anna): hand-checked cells, Bacon decomposition, coverage where TWFE is biased."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from outcomes.errors import OutcomesError
from outcomes.staggered import (
    _aggregate,
    _frame,
    _group_time,
    _twfe_coefficient,
    bacon_decomposition,
    simulate_panels,
    staggered_did,
)


@pytest.fixture(scope="module")
def panel():
    Y, first, truth = simulate_panels(np.random.default_rng(1), 1)
    return _frame(Y[0], first[0]), truth


def test_group_time_cells_are_the_two_by_two_means(panel):
    frame, _ = panel
    result = staggered_did(frame, "unit", "time", "y", "first")
    wide = frame.pivot(index="unit", columns="time", values="y")
    g_of = frame.drop_duplicates("unit").set_index("unit")["first"]
    for g, t in [(3, 3), (3, 8), (5, 9), (7, 7)]:
        base = g - 1
        change = wide[t] - wide[base]
        expected = change[g_of == g].mean() - change[g_of == 0].mean()
        row = result.group_time[(result.group_time["group"] == g) & (result.group_time["time"] == t)].iloc[0]
        assert row["estimate"] == pytest.approx(expected, abs=1e-12)
    # Pre-period cells use the previous period as base.
    change = wide[2] - wide[1]
    row = result.group_time[(result.group_time["group"] == 5) & (result.group_time["time"] == 2)].iloc[0]
    assert row["estimate"] == pytest.approx(change[g_of == 5].mean() - change[g_of == 0].mean(), abs=1e-12)
    assert row["e"] == -3 and not row["post"]


def test_not_yet_treated_controls_include_later_cohorts(panel):
    frame, _ = panel
    result = staggered_did(frame, "unit", "time", "y", "first", control="notyet")
    wide = frame.pivot(index="unit", columns="time", values="y")
    g_of = frame.drop_duplicates("unit").set_index("unit")["first"]
    change = wide[4] - wide[2]  # cohort 3 at t = 4: controls are never-treated and cohorts 5 and 7
    controls = (g_of == 0) | (g_of > 4)
    row = result.group_time[(result.group_time["group"] == 3) & (result.group_time["time"] == 4)].iloc[0]
    assert row["estimate"] == pytest.approx(change[g_of == 3].mean() - change[controls].mean(), abs=1e-12)


def test_bootstrap_and_analytic_errors_agree_and_json_has_the_cli_keys(panel):
    frame, truth = panel
    analytic = staggered_did(frame, "unit", "time", "y", "first")
    boot = staggered_did(frame, "unit", "time", "y", "first", bootstrap=2000)
    assert boot.att.se == pytest.approx(analytic.att.se, rel=0.12)
    assert (boot.event_time["band_high"] >= boot.event_time["ci_high"]).all()  # uniform band is wider
    assert analytic.att.ci_low < truth < analytic.att.ci_high
    d = analytic.to_dict()
    assert {"estimate", "ci_low", "ci_high", "p_value"} <= set(d["att"])
    assert {"group", "time", "estimate", "ci_low", "ci_high"} <= set(d["group_time"][0])
    assert {"e", "estimate", "ci_low", "ci_high"} <= set(d["event_time"][0])
    json.dumps(d)


def test_bacon_decomposition_sums_to_twfe_and_shows_the_forbidden_comparisons(panel):
    frame, truth = panel
    bacon = bacon_decomposition(frame, "unit", "time", "y", "first")
    assert (bacon.table["weight"] * bacon.table["estimate"]).sum() == pytest.approx(bacon.twfe, abs=1e-10)
    assert bacon.table["weight"].sum() == pytest.approx(1.0)
    assert bacon.forbidden_weight > 0.05
    forbidden = bacon.table[bacon.table["kind"] == "later vs earlier treated"]
    assert (forbidden["estimate"] < truth).all()  # growing effects make already-treated controls biased
    assert "already treated" in bacon.headline


def test_bad_input_is_named(panel):
    frame, _ = panel
    with pytest.raises(OutcomesError, match="control must be"):
        staggered_did(frame, "unit", "time", "y", "first", control="sometimes")
    with pytest.raises(OutcomesError, match="unbalanced"):
        staggered_did(frame.drop(index=[3]), "unit", "time", "y", "first")
    with pytest.raises(OutcomesError, match="same in every row"):
        staggered_did(frame.assign(first=np.where(frame.index == 5, 3, frame["first"])), "unit", "time", "y", "first")
    with pytest.raises(OutcomesError, match="not one of the values"):
        staggered_did(frame.assign(first=frame["first"].replace(5, 5.5)), "unit", "time", "y", "first")
    with pytest.raises(OutcomesError, match="no never-treated units"):
        staggered_did(frame[frame["first"] > 0], "unit", "time", "y", "first")


@pytest.mark.slow
def test_coverage_on_1000_panels_where_twfe_is_biased():
    """Heterogeneous, dynamic effects: 95% intervals of the simple ATT cover the truth 93-97% of the time,
    while TWFE on the same panels is biased (it weights growing effects with already-treated controls)."""
    sims = 1000
    Y, first, truth = simulate_panels(np.random.default_rng(2026), sims)
    covered, estimates, twfes = 0, np.empty(sims), np.empty(sims)
    for s in range(sims):
        cells, att, psi = _group_time(Y[s], first[s], "never")
        post = np.array([t >= g for g, t in cells])
        est, influence = _aggregate(post, cells, att, psi, first[s])
        se = np.sqrt((influence**2).sum()) / len(influence)
        covered += abs(est - truth) <= 1.959964 * se
        estimates[s], twfes[s] = est, _twfe_coefficient(Y[s], first[s])
    coverage = covered / sims
    assert 0.93 <= coverage <= 0.97, coverage
    assert abs(estimates.mean() - truth) < 0.02
    twfe_bias = twfes.mean() - truth
    assert twfe_bias < -0.1 and abs(twfe_bias) > 10 * abs(estimates.mean() - truth), (twfe_bias, truth)


def test_cli_staggered_did(tmp_path, panel):
    frame, _ = panel
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyse", "did", "--staggered", "--csv", str(path), "--unit", "unit", "--time",
                                      "time", "--outcome", "y", "--first-treated", "first", "--control", "notyet",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"att", "group_time", "event_time"} and data["control"] == "notyet"
    missing = CliRunner().invoke(cli, ["analyse", "did", "--staggered", "--csv", str(path), "--unit", "unit", "--time",
                                       "time", "--outcome", "y"])
    assert missing.exit_code == 2 and "--first-treated" in missing.output
