"""Judge KPI values against the targets in force: the RAG word and a statistical verdict.

RAG compares the observed rate with the target and its tolerance band. The verdict
asks whether the target is met beyond sampling noise: the Wilson interval of the
rate at ``1 - alpha`` lies wholly on the right side of the target (``met``), wholly
on the wrong side (``not met``), or straddles it (``inconclusive``); below the
contract's minimum volume the verdict is ``insufficient volume``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from outcomes.proportions import wilson_interval

RAG_WORDS = ("Green", "Amber", "Red", "No data")


@dataclass(frozen=True)
class TargetTerms:
    value: float
    tolerance: float
    min_volume: int
    direction: str  # higher / lower


def rag(value: float | None, terms: TargetTerms) -> str:
    if value is None or np.isnan(value):
        return "No data"
    gap = value - terms.value if terms.direction == "higher" else terms.value - value
    if gap >= -1e-12:
        return "Green"
    if gap >= -terms.tolerance - 1e-12:
        return "Amber"
    return "Red"


def judge_frame(values: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add ``value, rag, ci_low, ci_high, verdict`` to a frame of numerator, denominator and target terms.

    ``values`` needs columns numerator, denominator, target, tolerance, min_volume, direction.
    """
    frame = values.copy()
    den = frame["denominator"].to_numpy(dtype=float)
    num = frame["numerator"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["value"] = np.where(den > 0, num / den, np.nan)
    frame["ci_low"], frame["ci_high"] = wilson_interval(num, den, alpha)
    frame["rag"] = [
        rag(v, TargetTerms(t, tol, int(mv), d))
        for v, t, tol, mv, d in zip(frame["value"], frame["target"], frame["tolerance"], frame["min_volume"], frame["direction"], strict=True)
    ]
    higher = frame["direction"] == "higher"
    met = np.where(higher, frame["ci_low"] >= frame["target"], frame["ci_high"] <= frame["target"])
    not_met = np.where(higher, frame["ci_high"] < frame["target"], frame["ci_low"] > frame["target"])
    verdict = np.where(met, "met", np.where(not_met, "not met", "inconclusive"))
    verdict = np.where(den < frame["min_volume"].to_numpy(), "insufficient volume", verdict)
    frame["verdict"] = verdict
    frame["alpha"] = alpha
    return frame
