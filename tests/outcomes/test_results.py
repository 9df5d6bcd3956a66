"""The shared result API: Estimate arithmetic and the base every result carries."""

import json
import math

import pytest

from outcomes.results import Estimate, Result


def test_normal_and_student_intervals():
    e = Estimate.normal(-0.05, 0.02, 0.05)
    assert e.ci_low == pytest.approx(-0.05 - 1.959964 * 0.02, abs=1e-6)
    assert e.p_value == pytest.approx(0.012419, abs=1e-5)
    assert e.significant and e.level == "95%"
    t = Estimate.student(1.0, 0.5, 10, 0.1)
    assert t.ci_high == pytest.approx(1.0 + 1.812461 * 0.5, abs=1e-6)
    assert not Estimate.normal(0.01, 0.02, 0.05).significant


def test_interval_only_estimate_judges_by_the_interval():
    assert Estimate(1.0, math.nan, 0.2, 1.8, math.nan, 0.05).significant
    assert not Estimate(1.0, math.nan, -0.2, 1.8, math.nan, 0.05).significant
    assert Estimate(1.0, math.nan, 0.2, math.inf, math.nan).to_dict()["ci_high"] is None


class _Toy(Result):
    method = "toy"
    citation = "Nobody (2026)"

    def __init__(self):
        self.warnings = ("small sample",)

    alpha = 0.1
    nobs = 42

    @property
    def headline(self):
        return "a toy effect of 2"

    def estimates(self):
        return {"effect": Estimate.normal(2.0, 1.0, 0.1)}

    def _payload(self):
        return {"extra": 1}


def test_base_shares_names_and_serialises():
    r = _Toy()
    d = r.to_dict()
    assert {"method", "citation", "alpha", "nobs", "headline", "warnings", "estimates", "extra"} <= set(d)
    assert d["estimates"]["effect"]["ci_low"] == pytest.approx(2 - 1.644854, abs=1e-6)
    json.dumps(d)
    text = r.summary()
    assert "toy" in text and "a toy effect of 2" in text and "warning: small sample" in text
    assert "<table>" in r._repr_html_() and "small sample" in r._repr_html_()
    assert list(r.table()["name"]) == ["effect"]
