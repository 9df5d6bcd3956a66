"""Statistical disclosure control for published tables (GSS conventions).

Counts from 1 to ``threshold - 1`` are shown as ``[c]``; so that a total cannot give a suppressed
cell back, a second cell in the same row is suppressed too (the smallest other non-zero cell):
secondary suppression. Rates built on a suppressed count are suppressed with it, and so is everything
else in that row computed from the counts (intervals, ratios to the overall rate), since any of them
with the published total gives the counts back. The threshold is the setting
``CJMONITOR_SUPPRESSION_THRESHOLD`` (default 5); callers pass it in.

``tests/test_disclosure.py`` checks a rendered report the way an intruder would: for each suppressed
cell it finds the smallest and largest value consistent with everything published (totals, rates,
non-negativity) by linear programming, and requires more than one possible whole number.
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


DERIVED_COLUMNS = ("rate", "ci_low", "ci_high", "ratio_to_overall")


def suppress_breakdown(frame: pd.DataFrame, count: str, denominator: str, threshold: int = 5) -> pd.DataFrame:
    """Suppress a breakdown table (one row per group): numerators, denominators and their difference (the
    people without the outcome) below the threshold, every figure derived from them in that row, and a
    second group's figures when only one group would be hidden (secondary)."""
    shown = frame.copy().astype(object)
    rest = frame[denominator] - frame[count]
    small = [i for i in frame.index if 0 < frame.at[i, denominator] < threshold or 0 < frame.at[i, count] < threshold
             or 0 < rest[i] < threshold]
    if len(small) == 1 and len(frame) > 1:
        others = frame.drop(index=small)
        others = others[others[denominator] > 0]
        if not others.empty:
            small.append(others[denominator].idxmin())
    for i in small:
        for column in shown.columns:
            if column in (count, denominator, *DERIVED_COLUMNS):
                shown.at[i, column] = SUPPRESSED
    return shown
