"""Proven-reoffending measures and the MoJ 12 + 6 month definition."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from outcomes.errors import OutcomesError
from outcomes.reoffending import proven_reoffending, reoffending_measures


def test_moj_window_counts_offences_within_12_months_proven_within_18():
    cohort = pd.DataFrame({"person_id": ["a", "b", "c", "d"],
                           "cohort_date": ["2022-01-10", "2022-01-10", "2022-02-01", "2022-03-01"]})
    offences = pd.DataFrame({
        "person_id": ["a", "a", "a", "b", "b", "c", "z"],
        "offence_date": ["2022-03-01", "2022-12-01", "2023-01-11", "2022-12-20", "2022-05-01", "2022-02-01", "2022-04-01"],
        "disposal_date": ["2022-04-01", "2023-07-09", "2023-02-01", "2023-07-11", "2022-06-01", "2022-03-01", "2022-05-01"],
    })
    out = proven_reoffending(cohort, offences).set_index("person_id")
    # a: two offences in the window (the 2023-01-11 one is a day late); b: the December offence is proven
    # a day after the waiting period closes; c: an offence on the cohort date itself is the index offence.
    assert out["reoffences_12m"].to_dict() == {"a": 2, "b": 1, "c": 0, "d": 0}
    assert out["reoffended_12m"].to_dict() == {"a": 1, "b": 1, "c": 0, "d": 0}
    assert out.loc["a", "days_to_first"] == 50 and out.loc["b", "days_to_first"] == 111
    assert pd.isna(out.loc["c", "days_to_first"])


def test_measures_by_group():
    frame = pd.DataFrame({"served": [1, 1, 1, 1, 0, 0, 0, 0, 0],
                          "reoffended_12m": [1, 0, 0, 1, 1, 1, 1, 0, 0],
                          "reoffences_12m": [2, 0, 0, 6, 1, 3, 2, 0, 0],
                          "days_to_first": [10, None, None, 30, 100, 200, 300, None, None]})
    table = reoffending_measures(frame, group="served").table.set_index("group")
    assert table.loc[1, "binary_rate"] == 0.5 and table.loc[0, "binary_rate"] == 0.6
    assert table.loc[1, "frequency_per_person"] == 2.0 and table.loc[1, "frequency_per_reoffender"] == 4.0
    assert table.loc[0, "frequency_per_reoffender"] == 2.0 and table.loc[0, "median_days_to_first"] == 200
    assert table.loc[1, "rate_ci_low"] == pytest.approx(0.150, abs=0.001)  # Wilson 2/4


def test_demo_cohort_frequencies_are_in_the_domain_range():
    from cjmonitor.demo import cohort_rows

    frame = cohort_rows(np.random.default_rng(1), 5000, date(2023, 1, 1), 0.0)
    row = reoffending_measures(frame).table.iloc[0]
    assert 0.2 < row["binary_rate"] < 0.4
    assert 3.5 < row["frequency_per_reoffender"] < 4.1  # "about 3.5-4 per reoffender" (domain.md)
    assert reoffending_measures(frame).to_dict()["groups"][0]["n"] == 5000


def test_inconsistent_columns_are_errors():
    frame = pd.DataFrame({"reoffended_12m": [1, 0, 0], "reoffences_12m": [0, 2, 0], "days_to_first": [5, None, 400]})
    with pytest.raises(OutcomesError, match="1 reoffenders have no reoffences.*1 non-reoffenders have reoffences"):
        reoffending_measures(frame)
    with pytest.raises(OutcomesError, match="must hold only 0 and 1"):
        reoffending_measures(frame.assign(reoffended_12m=[2, 0, 0]))
    with pytest.raises(OutcomesError, match="twice in the cohort"):
        proven_reoffending(pd.DataFrame({"person_id": ["a", "a"], "cohort_date": ["2022-01-01"] * 2}),
                           pd.DataFrame({"person_id": [], "offence_date": [], "disposal_date": []}))
