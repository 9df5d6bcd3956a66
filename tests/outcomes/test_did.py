"""Difference-in-differences: Card & Krueger (1994), the event study, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from outcomes.did import did, event_study
from outcomes.errors import OutcomesError


@pytest.fixture(scope="module")
def card_krueger(shared_data):
    frame = pd.read_csv(shared_data / "card_krueger" / "njmin3.csv")
    return frame.dropna(subset=["fte"]).reset_index(drop=True)


def test_card_krueger_did_is_2_754(card_krueger):
    assert len(card_krueger) == 794
    result = did(card_krueger, "fte", treated="nj", post="d")
    assert round(result.did.estimate, 3) == 2.754
    assert round(result.did.se, 3) == 1.795  # HC1, as in the reference
    assert result.cov_type == "HC1" and result.n == 794
    assert result.did.ci_low < 0 < result.did.ci_high  # not significant at 5%, as published


def test_card_krueger_conventional_standard_error(card_krueger):
    result = did(card_krueger, "fte", treated="nj", post="d", cov_type="nonrobust")
    assert round(result.did.se, 3) == 1.688
    means = result.cell_means.set_index(["group", "period"])["mean"]
    by_cells = (means["treated", "after"] - means["treated", "before"]) - (
        means["control", "after"] - means["control", "before"])
    assert by_cells == pytest.approx(result.did.estimate, abs=1e-10)


def test_missing_outcome_is_an_error_not_a_silent_drop(shared_data):
    frame = pd.read_csv(shared_data / "card_krueger" / "njmin3.csv")
    with pytest.raises(OutcomesError, match="'fte' has 26 missing"):
        did(frame, "fte", treated="nj", post="d")


def panel(rng, units=40, periods=10, start=6, effect=2.0, trend_gap=0.0):
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(periods), units)
    treated = (unit < units // 2).astype(int)
    shock = rng.normal(0, 1, units)[unit]  # unit effect: errors correlated within unit
    y = shock + 0.1 * time + trend_gap * treated * time + effect * treated * (time >= start) + rng.normal(0, 1, len(unit))
    return pd.DataFrame({"unit": unit, "time": time, "treated": treated, "post": (time >= start).astype(int), "y": y})


def test_clustered_2x2_recovers_a_known_effect():
    frame = panel(np.random.default_rng(1))
    result = did(frame, "y", "treated", "post", unit="unit", time="time")
    assert result.cov_type == "cluster" and result.n_clusters == 40
    # Clustered 2x2 = difference of the per-unit before/after changes (unit shocks cancel).
    change = frame.groupby(["unit", "post"])["y"].mean().unstack()
    change = (change[1] - change[0]).groupby(frame.groupby("unit")["treated"].first()).mean()
    assert result.did.estimate == pytest.approx(change[1] - change[0], abs=1e-10)
    assert 1.0 < result.did.estimate < 3.0 and result.did.p_value < 1e-6
    # t with G - 1 degrees of freedom
    half = (result.did.ci_high - result.did.ci_low) / 2
    from scipy.stats import t

    assert half == pytest.approx(t.ppf(0.975, 39) * result.did.se)


def test_clustered_interval_covers_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    hits = []
    for _ in range(300):
        result = did(panel(rng, units=30), "y", "treated", "post", unit="unit")
        hits.append(result.did.ci_low < 2.0 < result.did.ci_high)
    assert 0.92 <= np.mean(hits) <= 0.98


def test_event_study_shows_effect_after_and_none_before():
    frame = panel(np.random.default_rng(2))
    result = event_study(frame, "y", "unit", "time", "treated", 6)
    table = result.table.set_index("relative_time")
    assert list(table.index) == list(range(-6, 4))
    assert table.loc[-1, "estimate"] == 0
    post = table.loc[0:]
    assert ((post["ci_low"] < 2.0) & (2.0 < post["ci_high"])).sum() >= 3
    assert (post["estimate"] > 0.5).all()
    assert (table.loc[:-2, "estimate"].abs() < 1.0).all()
    assert result.average_post.ci_low < 2.0 < result.average_post.ci_high
    assert result.pretrend_p_value > 0.05


def test_event_study_pretrend_test_detects_diverging_trends():
    frame = panel(np.random.default_rng(3), effect=0.0, trend_gap=0.4)
    result = event_study(frame, "y", "unit", "time", "treated", 6)
    assert result.pretrend_p_value < 0.01


def test_few_clusters_are_warned_about():
    frame = panel(np.random.default_rng(4), units=8)
    with pytest.warns(UserWarning, match="only 8 clusters"):
        result = did(frame, "y", "treated", "post", unit="unit")
    assert result.warnings


def test_did_bad_input():
    frame = panel(np.random.default_rng(5))
    with pytest.raises(OutcomesError, match="must hold only 0 and 1"):
        did(frame.assign(post=frame["time"]), "y", "treated", "post")
    with pytest.raises(OutcomesError, match="changes within"):
        did(frame.assign(treated=frame["post"]), "y", "treated", "post", unit="unit")
    with pytest.raises(OutcomesError, match="no rows for: treated after"):
        did(frame[~((frame.treated == 1) & (frame.post == 1))], "y", "treated", "post")
    with pytest.raises(OutcomesError, match="cluster-robust errors need the unit"):
        did(frame, "y", "treated", "post", cov_type="cluster")
    with pytest.raises(OutcomesError, match="takes both 0 and 1 within"):
        did(frame.assign(post=(frame.unit % 2 == 0).astype(int)), "y", "treated", "post", time="time")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(OutcomesError, match="not one of the values"):
            event_study(frame, "y", "unit", "time", "treated", 99)
    with pytest.raises(OutcomesError, match="repeat a"):
        event_study(pd.concat([frame, frame.head(1)]), "y", "unit", "time", "treated", 6)
