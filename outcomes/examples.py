"""Small data sets bundled for the documentation examples (the doctests of ``outcomes``).

- ``card_krueger()``: the published ``njmin3`` extract of Card & Krueger (1994), New Jersey and eastern
  Pennsylvania fast-food restaurants before and after New Jersey's 1992 minimum-wage rise (Wooldridge's
  *Introductory Econometrics* data; ``outcomes/data/njmin3.csv``, 26 KB). Its difference in differences
  of full-time-equivalent employment is +2.754 (Card & Krueger 1994, Table 3).
- ``selected_cohort()``: a synthetic cohort (no real people) in which older people with more previous
  offences are likelier both to be served and to reoffend, and being served lowers the chance of
  reoffending within 12 months by ``effect`` (default 8 points).
- ``area_panel()``: a synthetic monthly panel of areas; one of them drops by ``effect`` from ``intervention``.
- ``rossi()``: Rossi, Berk & Lenihan's (1980) randomised trial of financial aid for 432 men leaving prison
  (R's ``carData::Rossi``, the columns of Fox & Weisberg's Cox model; ``outcomes/data/rossi.csv``, 16 KB).
  Their Cox regression gives ``fin`` a coefficient of -0.379 (SE 0.191).
- ``staggered_panel()``: a synthetic panel of areas adopting a service at different months, with an effect
  that grows with time since adoption (the case where two-way fixed effects are biased).

Deterministic (fixed seeds): the same call gives the same numbers on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"


def card_krueger() -> pd.DataFrame:
    """The 794 restaurants x survey waves of ``njmin3`` with a recorded ``fte``."""
    return pd.read_csv(DATA / "njmin3.csv").dropna(subset=["fte"]).reset_index(drop=True)


def selected_cohort(n: int = 2000, effect: float = -0.08, seed: int = 20231) -> pd.DataFrame:
    """``served`` (0/1), ``reoffended_12m`` (0/1), ``age``, ``prior_offences``, ``risk_score`` for ``n`` people."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 60, n)
    prior = rng.poisson(2.0, n)
    risk = np.clip(rng.normal(0.4 + 0.03 * prior, 0.1), 0, 1)
    served = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.02 * (age - 35) + 0.3 * (prior - 2))))
    base = 1 / (1 + np.exp(-(-0.6 + 0.01 * (age - 35) + 0.25 * (prior - 2))))
    reoffended = rng.random(n) < np.clip(base + effect * served, 0, 1)
    return pd.DataFrame({"served": served.astype(int), "reoffended_12m": reoffended.astype(int), "age": age,
                         "prior_offences": prior, "risk_score": risk.round(3)})


def area_panel(treated: str = "West Yorkshire", intervention: str = "2024-09", effect: float = -0.06,
               seed: int = 7) -> pd.DataFrame:
    """``area``, ``month`` (YYYY-MM), ``rate``: 8 areas x 36 months from 2022-01, ``treated`` shifted by ``effect``."""
    rng = np.random.default_rng(seed)
    areas = [treated, "Lancashire", "Merseyside", "Cumbria", "Durham", "Cleveland", "Northumbria", "Humberside"]
    months = pd.period_range("2022-01", periods=36, freq="M").astype(str)
    trend = np.linspace(0, 0.02, len(months))
    rows = []
    for i, area in enumerate(areas):
        level = 0.36 if area == treated else 0.30 + 0.02 * i  # the treated area sits inside the donors' range
        rate = level + trend + rng.normal(0, 0.004, len(months))
        if area == treated:
            rate = rate + effect * (months >= intervention)
        rows += [{"area": area, "month": m, "rate": round(float(r), 4)} for m, r in zip(months, rate, strict=True)]
    return pd.DataFrame(rows)


def rossi() -> pd.DataFrame:
    """``week``, ``arrest`` and the covariates ``fin, age, race, wexp, mar, paro, prio`` for the 432 men."""
    return pd.read_csv(DATA / "rossi.csv")


def staggered_panel(seed: int = 11) -> pd.DataFrame:
    """``area``, ``month`` (1..36), ``rate``, ``first_month`` (0 = never): 24 areas, 3 adoption cohorts.

    From its adoption month an area's rate rises by 1 + 0.1 x months since adoption (the truth averaged over
    the treated area-months is 2.01).
    """
    rng = np.random.default_rng(seed)
    cohorts = [0] * 6 + [10] * 6 + [18] * 6 + [26] * 6
    rows = []
    for area, first in enumerate(cohorts):
        level = rng.normal(10, 1)
        for month in range(1, 37):
            effect = 1 + 0.1 * (month - first) if first and month >= first else 0.0
            rate = level + 0.05 * month + effect + rng.normal(0, 0.3)
            rows.append({"area": f"A{area:02d}", "month": month, "rate": round(float(rate), 3), "first_month": first})
    return pd.DataFrame(rows)
