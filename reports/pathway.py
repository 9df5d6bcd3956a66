"""The pathway view as published: disclosure control on its counts (see ``reports.suppression``).

A stage volume from 1 to ``threshold - 1`` is shown as ``[c]``, with every figure built on it: its
rate, per-1,000 figure, conversion and attrition, and the next stage's conversion (which would give
it back). Each breakdown table (sex, age band, ethnic group) is suppressed as a whole table with
secondary suppression, so the whole-area figure cannot give a hidden group back.
"""

from __future__ import annotations

import pandas as pd

from contracts.pathway import PathwayView
from reports.suppression import SUPPRESSED, suppress_breakdown


def _small(value, threshold: int) -> bool:
    return value is not None and 0 < value < threshold


def published_pathway(view: PathwayView, threshold: int = 5) -> dict:
    """The view as a JSON-able dict with disclosure control applied."""
    data = view.to_dict()
    stages = data["stages"]
    for index, stage in enumerate(stages):
        hidden = _small(stage["volume"], threshold) or _small(stage["base"], threshold) or (
            stage["base"] is not None and stage["volume"] is not None and _small(stage["base"] - stage["volume"], threshold))
        if hidden:
            for key in ("volume", "conversion", "attrition", "rate", "base"):
                stage[key] = SUPPRESSED
            for part in stage["parts"]:
                part["total"] = SUPPRESSED
            if index + 1 < len(stages) and stages[index + 1]["conversion"] is not None:
                stages[index + 1]["conversion"] = SUPPRESSED
                stages[index + 1]["attrition"] = SUPPRESSED
        stage["breakdowns"] = _published_breakdowns(stage["breakdowns"], threshold)
    data["suppression_threshold"] = threshold
    return data


def _published_breakdowns(rows: list[dict], threshold: int) -> list[dict]:
    if not rows:
        return []
    out = []
    frame = pd.DataFrame(rows)
    for breakdown, table in frame.groupby("breakdown", sort=False):
        table = table.reset_index(drop=True).assign(rate=lambda t: t["numerator"] / t["denominator"].where(t["denominator"] > 0))
        shown = suppress_breakdown(table, "numerator", "denominator", threshold)
        for record in shown.to_dict("records"):
            record["breakdown"] = breakdown
            out.append(record)
    return out
