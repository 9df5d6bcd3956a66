"""Interdependencies across agencies: the injected links are found, null worlds give few false links."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cjmonitor.demo_system import simulate_system
from outcomes.errors import OutcomesError
from outcomes.interdependence import analyse_interdependencies, analyse_panel, benjamini_hochberg


@pytest.fixture(scope="module")
def demo_panel():
    return simulate_system(breakdowns=False)  # the default demo world's seed, all 42 areas


@pytest.fixture(scope="module")
def demo_result(demo_panel):
    return analyse_interdependencies(demo_panel.frame(include_breakdowns=False))


def test_both_injected_links_are_found_at_their_lag_in_their_area(demo_panel, demo_result):
    assert len(demo_panel.interdependencies) == 2
    for link in demo_panel.interdependencies:
        cause = (link["cause"]["agency"], link["cause"]["measure"])
        effect = (link["effect"]["agency"], link["effect"]["measure"])
        found = [a for a in demo_result.area_links if a.cause == cause and a.effect == effect]
        assert [a.area for a in found] == [link["area_code"]], found
        assert found[0].lag_months == link["lag_months"]
        assert found[0].q_value < 0.05
        # the area's slope is near the injected one (effect units per cause unit), within its interval
        assert found[0].ci_low < link["per_unit"] < found[0].ci_high
        assert found[0].others_estimate == pytest.approx(0, abs=0.05)


def test_links_are_associations_never_causes(demo_result):
    sentences = [demo_result.headline, demo_result.summary()] + [a.headline for a in demo_result.area_links]
    sentences += [p.headline for p in demo_result.pairs]
    assert all("associated with" in s for s in sentences[:1] + [a.headline for a in demo_result.area_links])
    assert not any("caus" in s.lower() for s in sentences)


def test_result_api(demo_result):
    data = demo_result.to_dict()
    assert data["method"].startswith("panel distributed-lag") and data["alpha"] == 0.05
    assert data["tests"] == len(demo_result.pairs) * (1 + len(demo_result.areas))
    assert {"agency": "probation", "measure": "proven_reoffending_rate",
            "reason": "observed in every area for 18 of 36 months; the analysis needs a complete panel"} in data["skipped"]
    links = demo_result.links_for_area("E23000014")
    assert {(d["cause"]["measure"], d["effect"]["measure"], d["lag_months"]) for d in links} >= {
        ("file_quality", "ineffective_trial_rate", 2)}
    for d in links:
        assert d["ci_low"] <= d["estimate"] <= d["ci_high"] and 0 <= d["q_value"] < 0.05
    matrix = demo_result.matrix("E23000014")
    assert matrix.loc["police", "courts_magistrates"] >= 1 and matrix.loc["prisons", "police"] == 0


def test_a_link_everywhere_is_found_across_areas_with_its_interval():
    rng = np.random.default_rng(3)
    areas, months = 30, 36
    x = rng.normal(0, 1, size=(areas, months)) + rng.normal(0, 1, size=(areas, 1))
    y = np.zeros((areas, months))
    y[:, 2:] = 0.5 * x[:, :-2]
    y += rng.normal(0, 1, size=(areas, months)) + np.sin(np.arange(months) / 2)  # a shared month effect
    result = analyse_panel(np.stack([x, y]), [("police", "x"), ("courts_crown", "y")],
                           [f"A{i:02d}" for i in range(areas)], [f"{2023 + m // 12}-{m % 12 + 1:02d}" for m in range(months)])
    pair = next(p for p in result.pairs if p.cause == ("police", "x"))
    assert pair.significant and pair.lag_months == 2
    assert pair.ci_low < 0.5 < pair.ci_high
    assert pair.areas == ()  # the same slope everywhere: no area differs
    reverse = next(p for p in result.pairs if p.cause == ("courts_crown", "y"))
    assert not reverse.significant
    assert "is associated with" in pair.headline and "two months later" in pair.headline


def test_bad_panels_are_refused_with_reasons():
    frame = pd.DataFrame({"area_code": ["A"] * 2, "period": ["2024-01", "2024-03"], "agency": "police",
                          "measure": "x", "value": [1.0, 2.0]})
    with pytest.raises(OutcomesError, match="not consecutive: a gap before 2024-03"):
        analyse_interdependencies(frame)
    with pytest.raises(OutcomesError, match="repeat an area, period and series"):
        analyse_interdependencies(pd.concat([frame, frame]))
    with pytest.raises(OutcomesError, match="no column"):
        analyse_interdependencies(frame.drop(columns="value"))


def test_benjamini_hochberg_matches_the_textbook_example():
    # Benjamini & Hochberg (1995) section 4: 15 p-values, q = 0.05 rejects the four smallest.
    p = np.array([0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
                  0.5719, 0.6528, 0.7590, 1.0000])
    q = benjamini_hochberg(p)
    assert (q < 0.05).sum() == 4
    assert q[0] == pytest.approx(0.0015) and q[3] == pytest.approx(0.0095 * 15 / 4)


@pytest.mark.slow
def test_false_discovery_rate_on_200_worlds_without_links():
    """Every link reported in a world with none is false: the share of worlds reporting any is the FDR."""
    proportions = []
    for seed in range(200):
        panel = simulate_system(breakdowns=False, seed=5000 + seed, links=False)
        logs = {key for key, unit in zip(panel.keys, panel.units, strict=True) if unit == "count"}
        result = analyse_panel(panel.value, panel.keys, panel.area_codes, panel.periods, log_series=logs)
        proportions.append(1.0 if result.reported else 0.0)
    assert np.mean(proportions) <= 0.05
