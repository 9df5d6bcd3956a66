"""The demo world's system measures: every catalogue measure, realistic levels, breakdowns that add up."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cjmonitor.demo_system import simulate_system, write_system_measures
from contracts.geography import AREAS, AREAS_BY_NAME
from contracts.system import load_catalogue, validate_system_frame


@pytest.fixture(scope="module")
def panel():
    return simulate_system()


def test_every_measure_for_42_areas_and_36_months_at_national_levels(panel):
    catalogue = load_catalogue()
    frame = panel.frame(include_breakdowns=False)
    assert set(zip(frame.agency, frame.measure, strict=True)) == set(catalogue.by_key)
    assert frame.area_code.nunique() == 42 and frame.period.nunique() == 36
    population = {a.code: a.population_m for a in AREAS}
    for item in catalogue.measures:
        rows = frame[(frame.agency == item.agency) & (frame.measure == item.measure)]
        if item.unit == "count":
            level = (rows.value / rows.area_code.map(population)).median()
            assert level == pytest.approx(item.national, rel=0.25), item.label
        else:
            assert rows.value.median() == pytest.approx(item.national, rel=0.15), item.label
    # trial outcomes share their listings and add up to 100%
    crown = frame[frame.agency == "courts_crown"].pivot_table(index=["area_code", "period"], columns="measure",
                                                              values="numerator")
    listings = frame[(frame.agency == "courts_crown") & (frame.measure == "ineffective_trial_rate")]
    total = crown[["effective_trial_rate", "cracked_trial_rate", "ineffective_trial_rate"]].sum(axis=1)
    assert np.allclose(total.to_numpy(), listings.set_index(["area_code", "period"]).denominator.loc[total.index])


def test_the_frame_is_a_valid_return_and_groups_add_up(panel):
    frame = panel.frame()
    issues, typed = validate_system_frame(frame)
    assert typed is not None, [i for i in issues if i.severity == "error"][:5]
    whole = frame[frame.breakdown == ""].set_index(["area_code", "period", "agency", "measure"])
    groups = frame[frame.breakdown != ""]
    assert set(groups.breakdown) == {"sex", "age_band", "ethnic_group"}
    sums = groups.groupby(["area_code", "period", "agency", "measure", "breakdown"])[["numerator", "denominator"]].sum()
    joined = sums.join(whole[["numerator", "denominator"]].add_suffix("_whole"))
    assert (joined.numerator == joined.numerator_whole).all()
    rated = joined.denominator_whole.notna()
    assert (joined.denominator[rated] == joined.denominator_whole[rated]).all()
    # young adults complete fewer orders (an injected disproportionality)
    orders = groups[(groups.measure == "order_completion_rate") & (groups.breakdown == "age_band")]
    rates = orders.groupby("group")[["numerator", "denominator"]].sum()
    rate = rates.numerator / rates.denominator
    assert rate["18-20"] < rate.drop("18-20").min() - 0.05


def test_injected_links_are_in_the_data_and_in_the_truth(panel, tmp_path):
    wm = panel.area_codes.index(AREAS_BY_NAME["West Midlands"].code)
    quality = panel.value[panel.keys.index(("police", "file_quality")), wm]
    ineffective = panel.value[panel.keys.index(("courts_magistrates", "ineffective_trial_rate")), wm]
    assert quality[20:].mean() - quality[:20].mean() == pytest.approx(-20, abs=3)
    assert ineffective[22:].mean() - ineffective[:20].mean() == pytest.approx(9, abs=3)
    assert np.isnan(panel.value[panel.keys.index(("probation", "proven_reoffending_rate")), :, 18:]).all()

    world = SimpleNamespace(areas=list(AREAS[:6]) + [AREAS_BY_NAME["West Midlands"]], months=30, start="2023-01",
                            seed=7)
    links = write_system_measures(world, tmp_path)
    assert [(link["area_code"], link["lag_months"], link["from"]) for link in links] == [
        (AREAS_BY_NAME["West Midlands"].code, 2, "2024-09")]  # West Yorkshire is not in this small world
    assert set(links[0]) >= {"area_code", "cause", "effect", "lag_months", "from", "size"}
    files = sorted(tmp_path.glob("lcjb_cjs_system_measures_*.csv"))
    assert len(files) == 30 and files[0].name == "lcjb_cjs_system_measures_2023-01.csv"
    month = pd.read_csv(files[0], dtype=str, keep_default_na=False)
    issues, typed = validate_system_frame(month)
    assert typed is not None and set(typed.period) == {"2023-01"}
