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


def rate_ratio(x1, n1, x2, n2, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio of two proportions ``(x1/n1) / (x2/n2)`` with Katz's log interval at ``1 - alpha``.

    The disproportionality ratio of official statistics (e.g. the relative rate index in youth justice):
    Katz, Baptista, Azen & Pike (1978), ``se(log RR) = sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2)``. Where either
    numerator is 0, 0.5 is added to every count (Haldane) so the interval stays finite; where a
    denominator is 0 the result is NaN.

    Examples
    --------
    >>> ratio, low, high = rate_ratio([60], [100], [70], [100])
    >>> round(float(ratio[0]), 3), round(float(low[0]), 3), round(float(high[0]), 3)
    (0.857, 0.698, 1.052)
    """
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    a, n, c, m = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    if np.any(a < 0) or np.any(c < 0) or np.any(a > n) or np.any(c > m):
        raise OutcomesError("each numerator must lie between 0 and its denominator")
    zero = (a == 0) | (c == 0)
    a, n, c, m = (np.where(zero, v + 0.5, v) for v in (a, n, c, m))
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (a / n) / (c / m)
        se = np.sqrt(1 / a - 1 / n + 1 / c - 1 / m)
        low, high = ratio * np.exp(-z * se), ratio * np.exp(z * se)
    empty = (n <= 0.5) | (m <= 0.5)
    return tuple(np.where(empty, np.nan, v) for v in (ratio, low, high))


def funnel_limits(target: float, volume, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Control limits of a funnel plot for a proportion ``target`` at each ``volume`` (Spiegelhalter 2005).

    Normal approximation to the binomial: ``target +/- z sqrt(target (1 - target) / n)``, clipped to [0, 1].
    ``alpha = 0.05`` gives the 95% limits, ``alpha = 0.002`` the 99.8% limits.
    """
    n = np.asarray(volume, dtype=float)
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = z * np.sqrt(target * (1 - target) / n)
    return np.clip(target - half, 0, 1), np.clip(target + half, 0, 1)
