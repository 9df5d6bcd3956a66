"""Statistical disclosure control for published tables (GSS conventions).

Counts from 1 to ``threshold - 1`` are shown as ``[c]``; so that a total cannot give a suppressed
cell back, a second cell in the same row is suppressed too (the smallest other non-zero cell):
secondary suppression. Rates built on a suppressed count are suppressed with it.
"""

from __future__ import annotations

import pandas as pd

SUPPRESSED = "[c]"


def suppress_row(counts: list[int], threshold: int = 5) -> list[int | str]:
    """Primary and secondary suppression of one row of counts that adds up to a published total."""
    out: list[int | str] = list(counts)
    primary = [i for i, c in enumerate(counts) if 0 < c < threshold]
    for i in primary:
        out[i] = SUPPRESSED
    if len(primary) == 1:
        others = [(c, i) for i, c in enumerate(counts) if i not in primary and c > 0]
        if others:
            out[min(others)[1]] = SUPPRESSED
    return out


def suppress_breakdown(frame: pd.DataFrame, count: str, denominator: str, threshold: int = 5) -> pd.DataFrame:
    """Suppress a breakdown table (one row per group): numerators and denominators below the threshold, the
    rate with them, and a second group's figures when only one group would be hidden (secondary)."""
    shown = frame.copy().astype(object)
    small = [i for i in frame.index if 0 < frame.at[i, denominator] < threshold or 0 < frame.at[i, count] < threshold]
    if len(small) == 1 and len(frame) > 1:
        others = frame.drop(index=small)
        others = others[others[denominator] > 0]
        if not others.empty:
            small.append(others[denominator].idxmin())
    for i in small:
        for column in shown.columns:
            if column in (count, denominator, "rate", "ci_low", "ci_high"):
                shown.at[i, column] = SUPPRESSED
    return shown
