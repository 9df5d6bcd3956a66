"""Data for the comparison-group tests: the Lalonde samples and known-truth simulated cohorts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LALONDE_COVARIATES = ["age", "educ", "black", "hisp", "married", "nodegr", "re74", "re75", "u74", "u75"]
EXPERIMENTAL_ATT = 1794.3


def lalonde(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(experimental sample, NSW treated stacked on the PSID-1 comparison pool)."""
    folder = shared_data / "lalonde"
    experimental = pd.read_csv(folder / "nsw_experimental.csv")
    psid = pd.read_csv(folder / "psid1_controls.csv")
    stacked = pd.concat([experimental[experimental["treat"] == 1], psid], ignore_index=True)
    return experimental, stacked


def selected_cohort(rng: np.random.Generator, n: int = 1000, effect: float = -0.08) -> pd.DataFrame:
    """A cohort with selection on observed covariates: the people served are likelier to reoffend anyway.

    Reoffending is 0/1 with the same ``effect`` (probability scale) for every served person, so the
    ATT is exactly ``effect``; the naive served-minus-unserved difference is biased upwards.
    """
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x3 = (rng.random(n) < 0.4).astype(float)
    served = rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.8 * x1 - 0.5 * x2 + 0.5 * x3)))
    p0 = np.clip(1 / (1 + np.exp(-(-0.8 + 0.6 * x1 + 0.4 * x2 + 0.3 * x3))), 0.1, 0.85)
    reoffended = rng.random(n) < p0 + effect * served
    return pd.DataFrame({"served": served.astype(int), "reoffended": reoffended.astype(int),
                         "x1": x1, "x2": x2, "x3": x3})


def biased_pool(rng: np.random.Generator, n_treated: int = 600, n_pool: int = 6000, effect: float = 1.0) -> pd.DataFrame:
    """A non-experimental comparison pool unlike the treated group, with a continuous outcome.

    Treated people are younger with more previous offences, both of which raise the outcome, so the
    naive difference is far above the true effect ``effect``.
    """
    # Equal-variance normal ages and Poisson counts: the true propensity logit is linear in both.
    age_t, age_c = rng.normal(27, 6, n_treated), rng.normal(34, 6, n_pool)
    prior_t, prior_c = rng.poisson(7, n_treated), rng.poisson(3, n_pool)
    age, prior = np.r_[age_t, age_c], np.r_[prior_t, prior_c].astype(float)
    treated = np.r_[np.ones(n_treated), np.zeros(n_pool)].astype(int)
    sex = rng.choice(["M", "F"], n_treated + n_pool, p=[0.8, 0.2])
    y = 5 - 0.15 * (age - 30) + 0.5 * prior + 0.8 * (sex == "M") + effect * treated + rng.normal(0, 1.5, len(age))
    return pd.DataFrame({"treated": treated, "y": y, "age": age, "prior": prior, "sex": sex})
