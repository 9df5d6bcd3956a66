"""The pathway funnel from stored system measures: figures that add up to the return, by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import Session

from contracts.geography import AREAS
from contracts.models import Area
from contracts.pathway import PathwayError, build_pathway, load_pathway, load_profiles, most_similar
from contracts.system import read_system_measures, store_system_measures
from reports.pathway import published_pathway
from reports.suppression import SUPPRESSED

A, B, C = "E23000039", "E23000037", "E23000038"  # Dorset 0.8m, Gloucestershire 0.65m, Wiltshire 0.7m
WINDOW = ("2024-01", "2024-02", "2024-03")


def _rows():
    rows = []

    def add(area, period, agency, measure, unit, num=None, den=None, value=None, breakdown="", group=""):
        if unit == "percent":
            value = round(100 * num / den, 4)
        if unit == "count":
            num = value
        rows.append({"area_code": area, "period": period, "agency": agency, "measure": measure, "numerator": num,
                     "denominator": den, "value": value, "unit": unit, "breakdown": breakdown, "group": group})

    for area, scale in ((A, 1), (B, 2), (C, 3)):
        for month, period in enumerate(WINDOW):
            add(area, period, "police", "recorded_crime", "count", value=1000 * scale + 100 * month)
            add(area, period, "police", "charge_summons_rate", "percent", num=60 * scale + 10 * month, den=900 * scale)
            add(area, period, "police", "days_offence_to_charge", "days", den=50 + 10 * month, value=30 + month)
            add(area, period, "courts_magistrates", "first_hearing_effectiveness", "percent", num=40 * scale,
                den=50 * scale + month)
            add(area, period, "cps", "conviction_rate", "percent", num=30 * scale + month, den=36 * scale + month)
            add(area, period, "courts_magistrates", "median_days_charge_to_completion", "days", den=100, value=40 + 2 * month)
            add(area, period, "courts_crown", "median_days_charge_to_completion", "days", den=10, value=300)
            add(area, period, "courts_magistrates", "custody_or_community_sentence", "percent", num=5 * scale, den=25 * scale)
            add(area, period, "courts_crown", "custody_or_community_sentence", "percent", num=4 * scale, den=5 * scale)
            add(area, period, "probation", "order_completion_rate", "percent", num=6 * scale, den=8 * scale)
        # a year earlier, for the trend of recorded crime
        for period in ("2023-01", "2023-02", "2023-03"):
            add(area, period, "police", "recorded_crime", "count", value=1000 * scale)
        # proven reoffending is published later: the latest window is mid-2022
        for period in ("2022-07", "2022-08", "2022-09"):
            add(area, period, "probation", "proven_reoffending_rate", "percent", num=10 * scale, den=40 * scale)
    # Dorset's convictions by sex: women are few (1, 1, 1 of 1, 1, 2 prosecutions)
    for month, period in enumerate(WINDOW):
        women_num, women_den = 1, 1 + (month == 2)
        add(A, period, "cps", "conviction_rate", "percent", num=30 + month - women_num, den=36 + month - women_den,
            breakdown="sex", group="M")
        add(A, period, "cps", "conviction_rate", "percent", num=women_num, den=women_den, breakdown="sex", group="F")
    return pd.DataFrame(rows)


@pytest.fixture
def stored(tmp_path):
    from cjmonitor.db import get_engine
    from cjmonitor.pipeline import upgrade_db
    from cjmonitor.settings import get_settings

    settings = get_settings(tmp_path)
    upgrade_db(settings)
    with Session(get_engine(settings)) as session:
        session.add_all([Area(code=a.code, name=a.name, region=a.region, commissioner_type=a.commissioner_type,
                              population_m=a.population_m) for a in AREAS])
        store_system_measures(session, _rows(), source="hand.csv")
        session.commit()
        yield read_system_measures(session, breakdowns=True)


def test_funnel_adds_up_to_the_return_by_hand(stored):
    view = build_pathway(stored, A, "2024-03")
    stage = {s.stage: s for s in view.stages}
    assert [s.stage for s in view.stages] == ["recorded_crime", "charge", "first_hearing", "conviction", "sentence",
                                             "completed_order", "reoffending"]
    # Dorset, Jan-Mar 2024, counted by hand from the rows above
    assert stage["recorded_crime"].volume == 1000 + 1100 + 1200
    assert stage["charge"].volume == 60 + 70 + 80
    assert stage["charge"].conversion == pytest.approx(210 / 3300)
    assert stage["charge"].attrition == pytest.approx(1 - 210 / 3300)
    assert stage["charge"].timeliness == {"police.days_offence_to_charge": pytest.approx((30 * 50 + 31 * 60 + 32 * 70) / 180)}
    assert stage["first_hearing"].volume == 50 + 51 + 52
    assert stage["conviction"].volume == 30 + 31 + 32
    assert stage["conviction"].timeliness["courts_crown.median_days_charge_to_completion"] == 300
    assert stage["sentence"].volume == 3 * (5 + 4)
    assert [p["total"] for p in stage["sentence"].parts] == [15, 12]
    assert stage["completed_order"].volume == 18
    # the trend: against Jan-Mar 2023 (3 x 1000)
    assert stage["recorded_crime"].trend == pytest.approx(3300 / 3000 - 1)
    # the lagging stage uses its latest published window
    assert stage["reoffending"].window == ("2022-07", "2022-09")
    assert stage["reoffending"].volume == 30 and stage["reoffending"].rate == pytest.approx(0.25)
    assert "latest published window" in stage["reoffending"].note
    # national = the three areas: 3300 + 6300 + 9300 crimes for 2.15 million people
    assert stage["recorded_crime"].national.per_1000 == pytest.approx((3300 + 6300 + 9300) / 2150)
    assert stage["charge"].national.conversion == pytest.approx((210 + 390 + 570) / (3300 + 6300 + 9300))
    # most similar: only the other two areas are in the data
    assert {code for code, _ in view.similar_areas} == {B, C}
    assert stage["recorded_crime"].similar.per_1000 == pytest.approx((6300 + 9300) / 1350)
    assert stage["conviction"].breakdowns == (
        {"breakdown": "sex", "group": "F", "numerator": 3.0, "denominator": 4.0},
        {"breakdown": "sex", "group": "M", "numerator": 90.0, "denominator": 107.0},
    )


def test_published_view_suppresses_small_groups_and_their_partner(stored):
    view = build_pathway(stored, A, "2024-03")
    published = published_pathway(view, threshold=5)
    conviction = next(s for s in published["stages"] if s["stage"] == "conviction")
    rows = {r["group"]: r for r in conviction["breakdowns"]}
    assert rows["F"]["numerator"] == SUPPRESSED and rows["F"]["denominator"] == SUPPRESSED
    assert rows["M"]["numerator"] == SUPPRESSED  # secondary: the whole-area total would give F back
    assert conviction["volume"] == 93  # the whole-area figure stays
    # a threshold of 1 suppresses nothing
    assert published_pathway(view, threshold=1)["stages"][3]["breakdowns"][0]["numerator"] == 3.0


def test_a_small_stage_volume_hides_what_would_give_it_back(stored):
    frame = stored.copy()
    mask = (frame.area_code == A) & (frame.measure == "order_completion_rate") & (frame.breakdown == "")
    frame.loc[mask, "numerator"] = 1.0
    published = published_pathway(build_pathway(frame, A, "2024-03"), threshold=5)
    completed = next(s for s in published["stages"] if s["stage"] == "completed_order")
    assert completed["volume"] == SUPPRESSED and completed["conversion"] == SUPPRESSED
    assert completed["parts"][0]["total"] == SUPPRESSED


def test_most_similar_areas_follow_the_declared_criteria():
    definition = load_pathway()
    profiles = load_profiles(definition.similarity)
    assert len(profiles) == 42
    near = [code for code, _ in most_similar("E23000014", profiles, definition.similarity)]  # West Midlands
    assert len(near) == 7 and "E23000005" in near  # Greater Manchester: big, dense, deprived
    assert "E23000031" not in near  # Surrey
    assert set(definition.similarity.sources) == {"population_m", "area_km2", "deprivation_score"}


@pytest.mark.parametrize("threshold", [5, 10])
def test_intruder_cannot_recover_a_suppressed_group(stored, threshold):
    """The monthly report's intruder (tests/test_disclosure.py): totals, rates and non-negativity known."""
    from tests.test_disclosure import assert_protected, intruder_ranges

    published = published_pathway(build_pathway(stored, A, "2024-03"), threshold=threshold)
    conviction = next(s for s in published["stages"] if s["stage"] == "conviction")
    rows = [{"completed": r["numerator"], "ended": r["denominator"],
             "rate": r["rate"] if r["rate"] != SUPPRESSED else None, "ratio": None} for r in conviction["breakdowns"]]
    assert any(r["completed"] == SUPPRESSED for r in rows)
    # the intruder also knows the whole-area prosecutions from the return itself
    total = {"completed": conviction["volume"], "ended": 36 + 37 + 38}
    assert_protected(intruder_ranges(rows, total, rate_step=0.001, ratio_step=0.01), f"conviction by sex, threshold {threshold}")


def test_a_figure_stored_twice_is_refused_with_the_measure_and_month(stored):
    doubled = pd.concat([stored, stored[(stored.area_code == B) & (stored.measure == "recorded_crime")
                                        & (stored.period == "2024-02")]], ignore_index=True)
    with pytest.raises(PathwayError, match=r"police\.recorded_crime is stored twice for E23000037 2024-02"):
        build_pathway(doubled, A, "2024-03")


def test_a_shared_store_gives_the_same_pathway_for_every_area(stored):
    """The LCJB packs index the stored frame once and build every area's pathway from that index."""
    from contracts.pathway import PathwayStore

    store = PathwayStore(stored[stored["period_type"] == "month"] if "period_type" in stored.columns else stored)
    for area in (A, B, C):
        assert build_pathway(stored, area, "2024-03", store=store).to_dict() == \
            build_pathway(stored, area, "2024-03").to_dict()
