"""Statistical process control: XmR and p-charts with the NHS "Making Data Count" rules.

Limits: XmR (individuals) charts use the mean +/- 2.66 x the average moving range (Wheeler,
"Understanding Variation", 1993); p-charts use p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i) for each
point, and Laney's p'-chart (Laney 2002) widens those by the between-point variation when large
denominators make ordinary p-chart limits too tight. Limits come from a baseline (by default every
point) and can be recalculated after known breaks (e.g. a contract variation).

Signals, as in NHS England/Improvement's "Making Data Count" (2019):

1. ``outside limits``: a single point outside the process limits;
2. ``shift``: a run of 7 or more consecutive points on the same side of the centre line;
3. ``trend``: 6 or more consecutive points all increasing or all decreasing;
4. ``two of three near a limit``: two out of three consecutive points beyond 2 sigma on the same side.

Each signal is named, located and classed as ``improvement`` or ``concern`` given which direction
is better; the latest point's variation reads "common cause", "special cause improving" or
"special cause concerning"; and against a target the assurance reads "consistently passing",
"consistently failing" or "hit and miss".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from outcomes.errors import OutcomesError

XMR_CONSTANT = 2.66  # 3 / d2 with d2 = 1.128 for moving ranges of two points
SHIFT_RUN, TREND_RUN = 7, 6
MIN_BASELINE = 12


@dataclass(frozen=True)
class Signal:
    rule: str  # outside limits, shift, trend, two of three near a limit
    start: int
    end: int
    side: str  # high or low (for a trend: up or down)
    meaning: str  # improvement or concern

    def to_dict(self, labels: list[str] | None = None) -> dict:
        out = {"rule": self.rule, "start": self.start, "end": self.end, "side": self.side, "meaning": self.meaning}
        if labels is not None:
            out["start_label"], out["end_label"] = labels[self.start], labels[self.end]
        return out


@dataclass(frozen=True)
class SPCResult:
    """A control chart with its signals.

    ``points`` has one row per point: ``label``, ``value``, ``centre``, ``lower``, ``upper``,
    ``sigma`` and ``signals`` (a comma-separated list of the rules the point belongs to).
    """

    chart: str  # xmr, p, laney_p
    improvement: str  # higher or lower
    points: pd.DataFrame = field(repr=False)
    signals: tuple[Signal, ...]
    variation: str
    assurance: str | None
    target: float | None
    breaks: tuple[int, ...]

    def summary(self) -> str:
        lines = [f"{self.chart} chart, {len(self.points)} points; latest: {self.variation}"
                 + (f"; assurance against {self.target:g}: {self.assurance}" if self.assurance else "")]
        labels = list(self.points["label"])
        for signal in self.signals:
            lines.append(f"  {signal.rule} ({signal.meaning}) from {labels[signal.start]} to {labels[signal.end]}")
        if not self.signals:
            lines.append("  no special-cause signal")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        labels = [str(x) for x in self.points["label"]]
        last = self.points.iloc[-1]
        return {"chart": self.chart, "improvement": self.improvement, "variation": self.variation,
                "assurance": self.assurance, "target": self.target, "breaks": list(self.breaks),
                "latest": {"label": labels[-1], "value": float(last["value"]), "centre": float(last["centre"]),
                           "lower": float(last["lower"]), "upper": float(last["upper"])},
                "signals": [s.to_dict(labels) for s in self.signals]}


def _check_series(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise OutcomesError(f"{name} must be numbers") from None
    if array.ndim != 1 or array.size == 0:
        raise OutcomesError(f"{name} must be a non-empty list of numbers")
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array))[:5].tolist()
        raise OutcomesError(f"{name} has missing or infinite values at positions {bad}: remove or fill those months")
    return array


def _segments(n: int, breaks, baseline: int | None) -> list[tuple[int, int, int]]:
    """(start, end, baseline end) for each segment between breaks."""
    cuts = sorted(set(int(b) for b in (breaks or ())))
    if any(b <= 0 or b >= n for b in cuts):
        raise OutcomesError(f"breaks must lie inside the series (1 to {n - 1}), got {cuts}")
    edges = [0, *cuts, n]
    segments = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        base_end = end if baseline is None or start > 0 else min(end, start + baseline)
        segments.append((start, end, base_end))
    return segments


def xmr_chart(values, labels=None, *, improvement: str = "higher", baseline: int | None = None, breaks=(),
              target: float | None = None, min_baseline: int = MIN_BASELINE) -> SPCResult:
    """Individuals (XmR) chart.

    Parameters
    ----------
    values : sequence of float
    labels : sequence, optional
        Period labels (e.g. "2024-03"); default 0..n-1.
    improvement : {"higher", "lower"}
    baseline : int, optional
        Number of first points that set the limits (default: all points of each segment).
    breaks : sequence of int
        Indices where the process changed; limits are recalculated from each.
    target : float, optional
        For the assurance word.

    Examples
    --------
    >>> r = xmr_chart([10, 12, 11, 13, 12, 11, 12, 10, 11, 12, 13, 12])
    >>> round(float(r.points["upper"].iloc[0]), 2)
    14.97
    """
    y = _check_series(values, "values")
    centre, sigma = np.empty_like(y), np.empty_like(y)
    for start, end, base_end in _segments(len(y), breaks, baseline):
        base = y[start:base_end]
        if len(base) < min_baseline:
            raise OutcomesError(f"limits need at least {min_baseline} points; the segment from position {start} has "
                                f"{len(base)}: use fewer breaks or a longer baseline")
        mr_bar = np.mean(np.abs(np.diff(base)))
        centre[start:end] = base.mean()
        sigma[start:end] = XMR_CONSTANT * mr_bar / 3
    return _finish("xmr", y, labels, centre, sigma, improvement, target, breaks)


def p_chart(numerators, denominators, labels=None, *, improvement: str = "higher", baseline: int | None = None,
            breaks=(), target: float | None = None, laney: bool = False, min_baseline: int = MIN_BASELINE) -> SPCResult:
    """p-chart (or Laney p'-chart) for monthly proportions ``numerator / denominator``."""
    x = _check_series(numerators, "numerators")
    n = _check_series(denominators, "denominators")
    if x.shape != n.shape:
        raise OutcomesError(f"numerators and denominators differ in length ({x.size} and {n.size})")
    if np.any(n <= 0):
        raise OutcomesError(f"denominators must be positive; positions {np.flatnonzero(n <= 0)[:5].tolist()} are not: "
                            "drop months with no cases")
    if np.any(x < 0) or np.any(x > n):
        raise OutcomesError("each numerator must lie between 0 and its denominator")
    p = x / n
    centre, sigma = np.empty_like(p), np.empty_like(p)
    for start, end, base_end in _segments(len(p), breaks, baseline):
        if base_end - start < min_baseline:
            raise OutcomesError(f"limits need at least {min_baseline} points; the segment from position {start} has "
                                f"{base_end - start}")
        p_bar = x[start:base_end].sum() / n[start:base_end].sum()
        if p_bar in (0.0, 1.0):
            raise OutcomesError("every case in the baseline met (or failed) the measure: a p-chart has no width")
        sd = np.sqrt(p_bar * (1 - p_bar) / n[start:end])
        if laney:
            z = (p[start:base_end] - p_bar) / np.sqrt(p_bar * (1 - p_bar) / n[start:base_end])
            sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
            sd = sd * sigma_z
        centre[start:end] = p_bar
        sigma[start:end] = sd
    return _finish("laney_p" if laney else "p", p, labels, centre, sigma, improvement, target, breaks, bounds=(0.0, 1.0))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    runs, start = [], None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(flags) - 1))
    return runs


def _meaning(side: str, improvement: str) -> str:
    good = {"higher": ("high", "up"), "lower": ("low", "down")}[improvement]
    return "improvement" if side in good else "concern"


def _finish(chart, y, labels, centre, sigma, improvement, target, breaks, bounds=(-np.inf, np.inf)) -> SPCResult:
    if improvement not in ("higher", "lower"):
        raise OutcomesError(f"improvement must be 'higher' or 'lower', got {improvement!r}")
    n = len(y)
    labels = list(range(n)) if labels is None else list(labels)
    if len(labels) != n:
        raise OutcomesError(f"{len(labels)} labels for {n} points")
    upper = np.minimum(centre + 3 * sigma, bounds[1])
    lower = np.maximum(centre - 3 * sigma, bounds[0])
    signals: list[Signal] = []
    for i in np.flatnonzero(y > upper):
        signals.append(Signal("outside limits", int(i), int(i), "high", _meaning("high", improvement)))
    for i in np.flatnonzero(y < lower):
        signals.append(Signal("outside limits", int(i), int(i), "low", _meaning("low", improvement)))
    segment_id = np.searchsorted(sorted(set(int(b) for b in breaks)), np.arange(n), side="right")
    for side, flags in (("high", y > centre), ("low", y < centre)):
        for start, end in _runs(flags):
            # a run never spans a recalculation of the limits
            for s_id in np.unique(segment_id[start:end + 1]):
                idx = np.flatnonzero(segment_id[start:end + 1] == s_id) + start
                if len(idx) >= SHIFT_RUN:
                    signals.append(Signal("shift", int(idx[0]), int(idx[-1]), side, _meaning(side, improvement)))
    steps = np.sign(np.diff(y))
    for side, flags in (("up", steps > 0), ("down", steps < 0)):
        for start, end in _runs(flags):
            if end - start + 2 >= TREND_RUN:  # k rising steps join k + 1 points
                signals.append(Signal("trend", int(start), int(end + 1), side, _meaning(side, improvement)))
    near_high, near_low = y > centre + 2 * sigma, y < centre - 2 * sigma
    for side, flags in (("high", near_high), ("low", near_low)):
        i = 0
        while i + 2 < n:
            window = flags[i:i + 3]
            if window.sum() >= 2:
                hits = np.flatnonzero(window) + i
                signals.append(Signal("two of three near a limit", int(hits[0]), int(hits[-1]), side,
                                      _meaning(side, improvement)))
                i = int(hits[-1]) + 1
            else:
                i += 1
    signals.sort(key=lambda s: (s.start, s.rule))
    point_rules = [[] for _ in range(n)]
    for signal in signals:
        for i in range(signal.start, signal.end + 1):
            if signal.rule not in point_rules[i]:
                point_rules[i].append(signal.rule)
    latest = [s for s in signals if s.start <= n - 1 <= s.end]
    if any(s.meaning == "concern" for s in latest):
        variation = "special cause concerning"
    elif latest:
        variation = "special cause improving"
    else:
        variation = "common cause"
    assurance = None
    if target is not None:
        lo, hi = lower[-1], upper[-1]
        passing = lo > target if improvement == "higher" else hi < target
        failing = hi < target if improvement == "higher" else lo > target
        assurance = "consistently passing" if passing else "consistently failing" if failing else "hit and miss"
    points = pd.DataFrame({"label": labels, "value": y, "centre": centre, "lower": lower, "upper": upper,
                           "sigma": sigma, "signals": [", ".join(r) for r in point_rules]})
    return SPCResult(chart=chart, improvement=improvement, points=points, signals=tuple(signals), variation=variation,
                     assurance=assurance, target=target, breaks=tuple(int(b) for b in breaks))
