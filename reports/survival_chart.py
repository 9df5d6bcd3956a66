"""Kaplan-Meier curves for the evidence pack: treatment and matched comparison groups with their bands.

Drawn with the same SVG primitives as ``reports.charts`` (kept apart so that module stays as it is).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.charts import BAND, BLUE, ORANGE, ORANGE_BAND, _Layer, _Panel, _svg


def _steps(curve: pd.DataFrame, column: str, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """A right-continuous step function as a polyline: each value held until the next time."""
    t = curve["time"].to_numpy(dtype=float)
    v = curve[column].to_numpy(dtype=float)
    keep = t <= horizon
    t, v = t[keep], v[keep]
    x = np.repeat(np.r_[t, horizon], 2)[1:-1]
    y = np.repeat(v, 2)
    return x, y


def km_chart(km: pd.DataFrame, title: str, horizon: float = 12.0, unit: str = "months") -> str:
    """Share still free of proven reoffending over time, per group, with pointwise 95% bands."""
    layers = []
    for group, line, band, label in (("comparison", ORANGE, ORANGE_BAND, "matched comparison group"),
                                     ("treatment", BLUE, BAND, "people served")):
        curve = km[km["group"] == group].sort_values("time")
        if curve.empty:
            continue
        x, low = _steps(curve, "ci_low", horizon)
        _, high = _steps(curve, "ci_high", horizon)
        _, surv = _steps(curve, "survival", horizon)
        layers.append(_Layer("band", x, 100 * low, 100 * high, band, label=f"{label}: 95% band"))
        layers.append(_Layer("line", x, 100 * surv, colour=line, label=label, dashed=group == "comparison"))
    ticks = [(float(v), f"{v:g}") for v in np.linspace(0, horizon, 5)]
    return _svg(_Panel(title=title, description=(f"Kaplan-Meier estimate of the share of people not yet proven to "
                                                 f"have reoffended, over the first {horizon:g} {unit}, for the people "
                                                 f"served and their matched comparison group, with 95% bands."),
                       x_label=unit, y_label="% not reoffended", height=220, layers=layers, x_ticks=ticks))
