"""Intervals for proportions, vectorised across many KPI values."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from outcomes.errors import OutcomesError


def wilson_interval(numerator, denominator, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval at ``1 - alpha`` for each ``numerator / denominator``.

    Follows Wilson (1927); the interval recommended for binomial proportions by
    Brown, Cai & DasGupta (2001). Where the denominator is 0 the bounds are NaN.

    Examples
    --------
    >>> low, high = wilson_interval([72], [100])
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.625, 0.799)
    """
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    x = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    if np.any(x < 0) or np.any(n < 0) or np.any(x > n):
        raise OutcomesError("each numerator must lie between 0 and its denominator")
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high
