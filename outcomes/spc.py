"""Statistical process control to NHS "Making Data Count" (MDC) parity.

Charts (``CHARTS``), each with the reason it was chosen (``SPCResult.why``):

* ``xmr``: individuals, mean +/- 2.66 x the mean moving range (Wheeler 1993); MDC's default for a
  measure that is not a rate. Optional outlier screening (moving ranges at or above 3.267 x their
  mean are left out of the mean moving range), as NHSRplotthedots does by default; the MDC Excel tool
  does not screen, and neither do we unless asked.
* ``p`` and ``pp`` (Laney's p', 2002): proportions, p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i), p'
  widening those by the moving-range spread of the standardised points.
* ``u`` and ``up`` (Laney's u'): rates per unit of exposure, u-bar +/- 3 sqrt(u-bar / n_i).
* ``c``: counts with a constant opportunity, c-bar +/- 3 sqrt(c-bar).
* ``run``: median only, for series shorter than ``MIN_BASELINE`` points: shift and trend rules, no
  limits and no assurance.

Rules, MDC's, in its priority order; no rule crosses a rebase:

1. ``outside limits``: a point beyond a process limit;
2. ``trend``: 7 consecutive points each higher (or each lower) than the one before (a tie breaks it);
3. ``two of three near a limit``: of 3 consecutive points all on one side of the mean, at least 2 are
   beyond 2 sigma on that side. Since MDC's change of late 2023 (``two_of_three="2023"``, the default)
   a point beyond 3 sigma counts; before it (``"pre-2023"``) only points between 2 and 3 sigma did.
   The points beyond 2 sigma are flagged, not the third;
4. ``shift``: 7 consecutive points on one side of the mean (a point on the mean breaks it).

A signal is an improvement or a concern by the measure's direction (``higher``, ``lower`` or
``neutral``: then neither). When improvement and concern both flag the latest point, MDC's Excel tool
shows improvement, and so do we (``conflict="improvement"``; ``"concern"`` is offered).

Limits are recalculated at each rebase (a :class:`Rebase`, with its reason, e.g. a contract
variation), and can be frozen: ``fix_after`` = N takes each segment's limits from its first N points.

Icons (MDC's): variation from the latest point (``common_cause``, ``improvement_high``/``_low``,
``concern_high``/``_low``, ``neither_high``/``_low``) and assurance from the target against the latest
segment's process limits (``pass``, ``fail``, ``hit_and_miss``; none without a target or direction).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from outcomes.errors import OutcomesError
from outcomes.results import Result

XMR_CONSTANT = 2.66  # 3 / d2 with d2 = 1.128 for moving ranges of two points
D2 = 1.128
SCREEN_CONSTANT = 3.267  # upper range limit for moving ranges (D4 x mR-bar)
SHIFT_RUN, TREND_RUN = 7, 7
RUN_CHART_SHIFT, RUN_CHART_TREND = 6, 5  # run-chart rules (NHS/IHI "run chart" guide)
MIN_BASELINE = 12
CHARTS = ("xmr", "p", "pp", "u", "up", "c", "run")
CHART_NAMES = {"xmr": "XmR (individuals)", "p": "p-chart", "pp": "Laney p'-chart", "u": "u-chart",
               "up": "Laney u'-chart", "c": "c-chart", "run": "run chart"}
CITATION = ("NHS England, Making Data Count (2019; two-of-three rule revised 2023); Wheeler, Understanding "
            "Variation (1993); Laney, Improved control charts for attributes, Quality Engineering 14 (2002)")

VARIATION_LABELS = {
    "common_cause": "common cause variation",
    "improvement_high": "special cause: improving, higher",
    "improvement_low": "special cause: improving, lower",
    "concern_high": "special cause: concerning, higher",
    "concern_low": "special cause: concerning, lower",
    "neither_high": "special cause: neither, higher",
    "neither_low": "special cause: neither, lower",
}
ASSURANCE_LABELS = {"pass": "consistently passing", "fail": "consistently failing", "hit_and_miss": "hit and miss"}
MEANINGS = {"improvement": "improvement", "concern": "concern", "neither": "neither"}


@dataclass(frozen=True)
class Rebase:
    """Limits are recalculated from this point: ``at`` is a position or a label; ``reason`` says why."""

    at: int | str
    reason: str = ""


@dataclass(frozen=True)
class Signal:
    rule: str  # outside limits, trend, two of three near a limit, shift
    start: int
    end: int
    side: str  # high or low (for a trend: up or down)
    meaning: str  # improvement, concern or neither
    points: tuple[int, ...] = ()  # the flagged points (all of start..end unless the rule flags fewer)

    @property
    def flagged(self) -> tuple[int, ...]:
        return self.points or tuple(range(self.start, self.end + 1))

    def to_dict(self, labels: list[str] | None = None) -> dict:
        out = {"rule": self.rule, "start": self.start, "end": self.end, "side": self.side, "meaning": self.meaning}
        if labels is not None:
            out["start_label"], out["end_label"] = labels[self.start], labels[self.end]
            out["times"] = [labels[i] for i in self.flagged]
        return out


@dataclass(frozen=True)
class SPCResult(Result):
    """A control chart with its signals and MDC icons.

    ``points`` has one row per point: ``label``, ``value``, ``centre``, ``lower``, ``upper``,
    ``sigma``, ``segment`` and ``signals`` (a comma-separated list of the rules the point belongs to).
    The shared result attributes (``method``, ``citation``, ``alpha``, ``nobs``, ``warnings``,
    ``headline``, ``summary()``, ``to_dict()``, ``_repr_html_``) follow outcomes' one result API.
    """

    chart: str  # one of CHARTS
    improvement: str  # higher, lower or neutral
    points: pd.DataFrame = field(repr=False)
    signals: tuple[Signal, ...]
    variation: str  # common cause, special cause improving / concerning / neither
    assurance: str | None  # consistently passing / failing, hit and miss
    target: float | None
    breaks: tuple[int, ...]
    why: str = ""
    variation_icon: str = "common_cause"
    assurance_icon: str | None = None
    rebases: tuple[Rebase, ...] = ()
    fix_after: int | None = None
    two_of_three: str = "2023"
    screen_outliers: bool = False
    warnings: tuple[str, ...] = ()
    alpha: float = 0.0027  # no test: 3-sigma limits put about 0.27% of in-control (normal) points outside
    citation: str = CITATION

    @property
    def method(self) -> str:
        return f"spc_{self.chart}"

    @property
    def nobs(self) -> int:
        return len(self.points)

    @property
    def variation_label(self) -> str:
        return VARIATION_LABELS[self.variation_icon]

    @property
    def assurance_label(self) -> str | None:
        return ASSURANCE_LABELS[self.assurance_icon] if self.assurance_icon else None

    @property
    def centre(self) -> float:
        return float(self.points["centre"].iloc[-1])

    @property
    def headline(self) -> str:
        text = f"{CHART_NAMES[self.chart]} of {self.nobs} points: {self.variation_label}"
        if self.assurance_label:
            text += f"; against the target of {self.target:g}, {self.assurance_label}"
        return text

    def summary(self) -> str:
        lines = [self.headline, f"  chart: {self.why}"]
        labels = [str(x) for x in self.points["label"]]
        for rebase, at in zip(self.rebases, self.breaks, strict=False):
            lines.append(f"  limits recalculated from {labels[at]}" + (f": {rebase.reason}" if rebase.reason else ""))
        for signal in self.signals:
            lines.append(f"  {signal.rule} ({signal.meaning}) from {labels[signal.start]} to {labels[signal.end]}")
        if not self.signals:
            lines.append("  no special-cause signal")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def limits(self) -> list[dict]:
        finite = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        return [{"time": str(r.label), "value": float(r.value), "centre": float(r.centre), "lower": finite(r.lower),
                 "upper": finite(r.upper)} for r in self.points.itertuples()]

    def to_dict(self) -> dict:
        labels = [str(x) for x in self.points["label"]]
        last = self.points.iloc[-1]
        finite = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        return {
            "method": self.method, "chart": self.chart, "chart_name": CHART_NAMES[self.chart], "why": self.why,
            "improvement": self.improvement, "centre": self.centre, "limits": self.limits(),
            "signals": [{"rule": s.rule, "times": [labels[i] for i in s.flagged], "meaning": s.meaning,
                         "side": s.side, "start": s.start, "end": s.end} for s in self.signals],
            "variation": self.variation, "variation_icon": self.variation_icon, "variation_label": self.variation_label,
            "assurance": self.assurance, "assurance_icon": self.assurance_icon, "assurance_label": self.assurance_label,
            "target": self.target, "breaks": list(self.breaks),
            "rebases": [{"time": labels[at], "reason": r.reason} for r, at in zip(self.rebases, self.breaks, strict=False)],
            "fix_after": self.fix_after, "two_of_three": self.two_of_three, "screen_outliers": self.screen_outliers,
            "latest": {"label": labels[-1], "value": float(last["value"]), "centre": float(last["centre"]),
                       "lower": finite(last["lower"]), "upper": finite(last["upper"])},
            "nobs": self.nobs, "alpha": self.alpha, "citation": self.citation, "warnings": list(self.warnings),
            "headline": self.headline, "estimates": {},
        }

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(str(r['time']))}</td><td>{r['value']:.4g}</td><td>{r['centre']:.4g}</td>"
                       f"<td>{'' if r['lower'] is None else format(r['lower'], '.4g')}</td>"
                       f"<td>{'' if r['upper'] is None else format(r['upper'], '.4g')}</td></tr>" for r in self.limits())
        return (f"<p>{html.escape(self.headline)}</p><p>{html.escape(self.why)}</p><table><thead><tr><th>time</th>"
                f"<th>value</th><th>centre</th><th>lower</th><th>upper</th></tr></thead><tbody>{rows}</tbody></table>")


# --------------------------------------------------------------------------- input checks

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


def _rebases(n: int, labels: list, breaks, rebases) -> tuple[list[int], list[Rebase]]:
    """Positions of the rebases (from ``breaks`` positions and ``Rebase`` objects), sorted, with their reasons."""
    found: dict[int, Rebase] = {}
    for b in breaks or ():
        found.setdefault(int(b), Rebase(int(b), ""))
    text_labels = [str(x) for x in labels]
    for r in rebases or ():
        r = r if isinstance(r, Rebase) else Rebase(r)
        if isinstance(r.at, str):
            if r.at not in text_labels:
                raise OutcomesError(f"rebase at '{r.at}': no point has that label (first {text_labels[0]}, "
                                    f"last {text_labels[-1]})")
            at = text_labels.index(r.at)
        else:
            at = int(r.at)
        found[at] = r
    cuts = sorted(found)
    if any(b <= 0 or b >= n for b in cuts):
        raise OutcomesError(f"breaks must lie inside the series (1 to {n - 1}), got {cuts}")
    return cuts, [found[c] for c in cuts]


def _segments(n: int, cuts: list[int], fix_after: int | None) -> list[tuple[int, int, int]]:
    """(start, end, baseline end) for each segment between rebases."""
    edges = [0, *cuts, n]
    return [(s, e, e if fix_after is None else min(e, s + fix_after)) for s, e in zip(edges[:-1], edges[1:], strict=True)]


def _check_direction(improvement: str) -> None:
    if improvement not in ("higher", "lower", "neutral"):
        raise OutcomesError(f"improvement must be 'higher', 'lower' or 'neutral', got {improvement!r}")


def _mr_bar(y: np.ndarray, screen: bool) -> float:
    mr = np.abs(np.diff(y))
    if screen and mr.size:
        mr = mr[mr < SCREEN_CONSTANT * mr.mean()]
    return float(mr.mean()) if mr.size else 0.0


# --------------------------------------------------------------------------- the charts

def spc(values, denominators=None, labels=None, *, chart: str | None = None, improvement: str = "higher",
        target=None, rebases=(), breaks=(), fix_after: int | None = None, baseline: int | None = None,
        two_of_three: str = "2023", screen_outliers: bool = False, conflict: str = "improvement",
        min_baseline: int = MIN_BASELINE, kind: str | None = None) -> SPCResult:
    """One SPC chart, chosen (or as asked) and said why.

    Parameters
    ----------
    values : sequence of float
        The measure, or the numerators when ``denominators`` are given.
    denominators : sequence of float, optional
        Cases (for a proportion) or exposure (for a rate).
    chart : one of ``CHARTS``, optional
        Default: a run chart below ``min_baseline`` points; else p' or u' when the denominators are large
        (median over 500, where ordinary attribute limits are too tight), p or u otherwise (p when every
        numerator is within its denominator, unless ``kind="rate"``); XmR without denominators.
    improvement : {"higher", "lower", "neutral"}
    target : float or sequence of float, optional
        For the assurance icon (the value in force at the latest point is used).
    rebases : sequence of :class:`Rebase` (or positions/labels)
        Limits recalculated from each; ``breaks`` (positions) is the older spelling.
    fix_after : int, optional
        Freeze each segment's limits at those of its first N points (``baseline`` is the older spelling).
    two_of_three : {"2023", "pre-2023"}
    screen_outliers : bool
        XmR only: leave out moving ranges at or above 3.267 x their mean (NHSRplotthedots' default).
    conflict : {"improvement", "concern"}
        What the latest point shows when it is in signals of both kinds.
    """
    fix_after = fix_after if fix_after is not None else baseline
    y = _check_series(values, "values")
    n_points = len(y)
    den = None if denominators is None else _check_series(denominators, "denominators")
    if den is not None and den.shape != y.shape:
        raise OutcomesError(f"values and denominators differ in length ({y.size} and {den.size})")
    if chart is not None and chart not in CHARTS:
        raise OutcomesError(f"chart must be one of {', '.join(CHARTS)}, got {chart!r}")
    if chart is not None:
        why = f"{CHART_NAMES[chart]}, as asked"
    elif n_points < min_baseline:
        chart = "run"
        why = (f"run chart: {n_points} points, fewer than the {min_baseline} that process limits need (MDC); "
               "median, shift and trend rules only")
    elif den is None:
        chart = "xmr"
        why = "XmR: a measure without a denominator (MDC's default chart)"
    else:
        proportion = kind != "rate" and bool(np.all(y <= den)) and bool(np.all(y >= 0))
        large = float(np.median(den)) > 500
        chart = ("pp" if large else "p") if proportion else ("up" if large else "u")
        why = (f"{CHART_NAMES[chart]}: {'a proportion (numerator within denominator)' if proportion else 'a rate per unit of exposure'}"
               + (f"; median denominator {np.median(den):g} over 500, where ordinary limits flag nearly every point"
                  if large else f"; median denominator {np.median(den):g}"))
    if chart in ("p", "pp", "u", "up") and den is None:
        raise OutcomesError(f"a {CHART_NAMES[chart]} needs denominators")
    common = dict(labels=labels, improvement=improvement, target=target, rebases=rebases, breaks=breaks,
                  fix_after=fix_after, two_of_three=two_of_three, conflict=conflict, min_baseline=min_baseline)
    if chart == "xmr":
        series = y / den if den is not None else y
        result = xmr_chart(series, screen_outliers=screen_outliers, **common)
    elif chart in ("p", "pp"):
        result = p_chart(y, den, laney=chart == "pp", **common)
    elif chart in ("u", "up"):
        result = u_chart(y, den, laney=chart == "up", **common)
    elif chart == "c":
        result = c_chart(y, **common)
    else:
        result = run_chart(y / den if den is not None else y, **{k: v for k, v in common.items() if k != "min_baseline"})
    return _replace(result, why=why)


def _replace(result: SPCResult, **changes) -> SPCResult:
    from dataclasses import replace
    return replace(result, **changes)


def _need(base_len: int, start: int, min_baseline: int) -> None:
    if base_len < min_baseline:
        raise OutcomesError(f"limits need at least {min_baseline} points; the segment from position {start} has "
                            f"{base_len}: use fewer rebases, a longer fixed baseline, or a run chart")


def xmr_chart(values, labels=None, *, improvement: str = "higher", baseline: int | None = None, breaks=(),
              target=None, min_baseline: int = MIN_BASELINE, rebases=(), fix_after: int | None = None,
              screen_outliers: bool = False, two_of_three: str = "2023", conflict: str = "improvement") -> SPCResult:
    """Individuals (XmR) chart: mean +/- 2.66 x mean moving range of each segment's baseline.

    Examples
    --------
    >>> r = xmr_chart([10, 12, 11, 13, 12, 11, 12, 10, 11, 12, 13, 12])
    >>> round(float(r.points["upper"].iloc[0]), 2)
    14.97
    """
    y = _check_series(values, "values")
    labels = _labels(labels, len(y))
    cuts, reasons = _rebases(len(y), labels, breaks, rebases)
    fix_after = fix_after if fix_after is not None else baseline
    centre, sigma = np.empty_like(y), np.empty_like(y)
    for start, end, base_end in _segments(len(y), cuts, fix_after):
        base = y[start:base_end]
        _need(len(base), start, min_baseline)
        centre[start:end] = base.mean()
        sigma[start:end] = XMR_CONSTANT * _mr_bar(base, screen_outliers) / 3
    return _finish("xmr", y, labels, centre, sigma, improvement, target, cuts, reasons, fix_after=fix_after,
                   two_of_three=two_of_three, conflict=conflict, screen=screen_outliers,
                   why=f"{CHART_NAMES['xmr']}, as asked")


def _attribute(kind: str, x: np.ndarray, n: np.ndarray, labels, improvement, target, breaks, rebases, fix_after,
               laney: bool, min_baseline: int, two_of_three: str, conflict: str) -> SPCResult:
    if np.any(n <= 0):
        raise OutcomesError(f"denominators must be positive; positions {np.flatnonzero(n <= 0)[:5].tolist()} are not: "
                            "drop months with no cases")
    if np.any(x < 0) or (kind == "p" and np.any(x > n)):
        raise OutcomesError("each numerator must lie between 0 and its denominator" if kind == "p"
                            else "counts must not be negative")
    labels = _labels(labels, len(x))
    cuts, reasons = _rebases(len(x), labels, breaks, rebases)
    rate = x / n
    centre, sigma = np.empty_like(rate), np.empty_like(rate)
    warnings = []
    for start, end, base_end in _segments(len(rate), cuts, fix_after):
        _need(base_end - start, start, min_baseline)
        bar = x[start:base_end].sum() / n[start:base_end].sum()
        if kind == "p" and bar in (0.0, 1.0):
            raise OutcomesError("every case in the baseline met (or failed) the measure: a p-chart has no width")
        if kind == "u" and bar == 0.0:
            raise OutcomesError("no events in the baseline: a u-chart has no width")
        spread = bar * (1 - bar) if kind == "p" else bar  # variance x n
        sd = np.sqrt(spread / n[start:end])
        if laney:
            z = (rate[start:base_end] - bar) / np.sqrt(spread / n[start:base_end])
            sigma_z = float(np.mean(np.abs(np.diff(z)))) / D2
            sd = sd * sigma_z
            warnings.append(f"Laney sigma_z {sigma_z:.2f} for the segment from position {start}")
        centre[start:end] = bar
        sigma[start:end] = sd
    name = ("pp" if laney else "p") if kind == "p" else ("up" if laney else "u")
    bounds = (0.0, 1.0) if kind == "p" else (0.0, np.inf)
    return _finish(name, rate, labels, centre, sigma, improvement, target, cuts, reasons, bounds=bounds,
                   fix_after=fix_after, two_of_three=two_of_three, conflict=conflict, extra_warnings=warnings,
                   why=f"{CHART_NAMES[name]}, as asked")


def p_chart(numerators, denominators, labels=None, *, improvement: str = "higher", baseline: int | None = None,
            breaks=(), target=None, laney: bool = False, min_baseline: int = MIN_BASELINE, rebases=(),
            fix_after: int | None = None, two_of_three: str = "2023", conflict: str = "improvement") -> SPCResult:
    """p-chart (or Laney p'-chart) for proportions ``numerator / denominator``."""
    x, n = _pair(numerators, denominators)
    return _attribute("p", x, n, labels, improvement, target, breaks, rebases,
                      fix_after if fix_after is not None else baseline, laney, min_baseline, two_of_three, conflict)


def u_chart(counts, exposures, labels=None, *, improvement: str = "lower", breaks=(), target=None, laney: bool = False,
            min_baseline: int = MIN_BASELINE, rebases=(), fix_after: int | None = None, two_of_three: str = "2023",
            conflict: str = "improvement") -> SPCResult:
    """u-chart (or Laney u'-chart) for rates ``count / exposure``: u-bar +/- 3 sqrt(u-bar / n_i)."""
    x, n = _pair(counts, exposures)
    return _attribute("u", x, n, labels, improvement, target, breaks, rebases, fix_after, laney, min_baseline,
                      two_of_three, conflict)


def c_chart(counts, labels=None, *, improvement: str = "lower", breaks=(), target=None, min_baseline: int = MIN_BASELINE,
            rebases=(), fix_after: int | None = None, two_of_three: str = "2023", conflict: str = "improvement") -> SPCResult:
    """c-chart for counts with a constant opportunity: c-bar +/- 3 sqrt(c-bar), the lower limit at least 0."""
    y = _check_series(counts, "counts")
    if np.any(y < 0):
        raise OutcomesError(f"counts must not be negative; positions {np.flatnonzero(y < 0)[:5].tolist()} are")
    labels = _labels(labels, len(y))
    cuts, reasons = _rebases(len(y), labels, breaks, rebases)
    centre, sigma = np.empty_like(y), np.empty_like(y)
    for start, end, base_end in _segments(len(y), cuts, fix_after):
        _need(base_end - start, start, min_baseline)
        bar = y[start:base_end].mean()
        centre[start:end], sigma[start:end] = bar, np.sqrt(bar)
    return _finish("c", y, labels, centre, sigma, improvement, target, cuts, reasons, bounds=(0.0, np.inf),
                   fix_after=fix_after, two_of_three=two_of_three, conflict=conflict, why=f"{CHART_NAMES['c']}, as asked")


def run_chart(values, labels=None, *, improvement: str = "higher", breaks=(), target=None, rebases=(),
              fix_after: int | None = None, two_of_three: str = "2023", conflict: str = "improvement") -> SPCResult:
    """Run chart: each segment's median, the shift (6 points) and trend (5 points) run-chart rules; no limits."""
    del two_of_three  # no sigma on a run chart
    y = _check_series(values, "values")
    labels = _labels(labels, len(y))
    cuts, reasons = _rebases(len(y), labels, breaks, rebases)
    centre = np.empty_like(y)
    for start, end, base_end in _segments(len(y), cuts, fix_after):
        centre[start:end] = np.median(y[start:base_end])
    sigma = np.full_like(y, np.nan)
    return _finish("run", y, labels, centre, sigma, improvement, target, cuts, reasons, fix_after=fix_after,
                   conflict=conflict, why=f"{CHART_NAMES['run']}, as asked",
                   extra_warnings=["a run chart has no process limits: no assurance icon"])


def _pair(numerators, denominators) -> tuple[np.ndarray, np.ndarray]:
    x = _check_series(numerators, "numerators")
    n = _check_series(denominators, "denominators")
    if x.shape != n.shape:
        raise OutcomesError(f"numerators and denominators differ in length ({x.size} and {n.size})")
    return x, n


def _labels(labels, n: int) -> list:
    labels = list(range(n)) if labels is None else list(labels)
    if len(labels) != n:
        raise OutcomesError(f"{len(labels)} labels for {n} points")
    return labels


# --------------------------------------------------------------------------- the rules

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
    if improvement == "neutral":
        return "neither"
    good = {"higher": ("high", "up"), "lower": ("low", "down")}[improvement]
    return "improvement" if side in good else "concern"


def find_signals(y: np.ndarray, centre: np.ndarray, sigma: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 segments: np.ndarray, improvement: str, *, two_of_three: str = "2023", shift_run: int = SHIFT_RUN,
                 trend_run: int = TREND_RUN, limits: bool = True) -> list[Signal]:
    """Every MDC signal in one series; no rule crosses a change of ``segments`` (the rebase groups)."""
    if two_of_three not in ("2023", "pre-2023"):
        raise OutcomesError(f"two_of_three must be '2023' or 'pre-2023', got {two_of_three!r}")
    signals: list[Signal] = []
    if limits:
        for i in np.flatnonzero(y > upper):
            signals.append(Signal("outside limits", int(i), int(i), "high", _meaning("high", improvement)))
        for i in np.flatnonzero(y < lower):
            signals.append(Signal("outside limits", int(i), int(i), "low", _meaning("low", improvement)))
    for seg in np.unique(segments):
        idx = np.flatnonzero(segments == seg)
        s0 = int(idx[0])
        ys, cs = y[idx], centre[idx]
        steps = np.sign(np.diff(ys))
        for side, flags in (("up", steps > 0), ("down", steps < 0)):
            for start, end in _runs(flags):
                if end - start + 2 >= trend_run:  # k rising steps join k + 1 points
                    signals.append(Signal("trend", s0 + start, s0 + end + 1, side, _meaning(side, improvement)))
        if limits:
            ss = sigma[idx]
            for side, sign in (("high", 1.0), ("low", -1.0)):
                same_side = sign * (ys - cs) > 0
                beyond2 = sign * (ys - cs) > 2 * ss
                if two_of_three == "pre-2023":
                    beyond2 &= ~(sign * (ys - cs) > 3 * ss)
                flagged: set[int] = set()
                for i in range(len(ys) - 2):
                    if same_side[i:i + 3].all() and beyond2[i:i + 3].sum() >= 2:
                        flagged.update(i + int(k) for k in np.flatnonzero(beyond2[i:i + 3]))
                for start, end in _runs(np.isin(np.arange(len(ys)), sorted(flagged))):
                    pts = tuple(s0 + k for k in range(start, end + 1) if k in flagged)
                    signals.append(Signal("two of three near a limit", pts[0], pts[-1], side,
                                          _meaning(side, improvement), pts))
                # adjacent flagged points separated by an unflagged one (1, 0, 1) belong to one window
        for side, flags in (("high", ys > cs), ("low", ys < cs)):
            for start, end in _runs(flags):
                if end - start + 1 >= shift_run:
                    signals.append(Signal("shift", s0 + start, s0 + end, side, _meaning(side, improvement)))
    _merge_gaps(signals)
    order = {"outside limits": 0, "trend": 1, "two of three near a limit": 2, "shift": 3}
    signals.sort(key=lambda s: (s.start, order[s.rule]))
    return signals


def _merge_gaps(signals: list[Signal]) -> None:
    """A two-of-three window flags points 1 and 3 of (1, 0, 1): keep them as one signal."""
    twos = sorted((s for s in signals if s.rule == "two of three near a limit"), key=lambda s: (s.side, s.start))
    merged: list[Signal] = []
    for s in twos:
        if merged and merged[-1].side == s.side and s.start - merged[-1].end == 2:
            prev = merged.pop()
            s = Signal(s.rule, prev.start, s.end, s.side, s.meaning, prev.flagged + s.flagged)
        merged.append(s)
    signals[:] = [s for s in signals if s.rule != "two of three near a limit"] + merged


def _finish(chart, y, labels, centre, sigma, improvement, target, cuts, reasons, *, bounds=(-np.inf, np.inf),
            fix_after=None, two_of_three="2023", conflict="improvement", screen=False, extra_warnings=(),
            why="") -> SPCResult:
    _check_direction(improvement)
    if conflict not in ("improvement", "concern"):
        raise OutcomesError(f"conflict must be 'improvement' or 'concern', got {conflict!r}")
    n = len(y)
    run = chart == "run"
    if run:
        upper = np.full(n, np.nan)
        lower = np.full(n, np.nan)
    else:
        upper = np.minimum(centre + 3 * sigma, bounds[1])
        lower = np.maximum(centre - 3 * sigma, bounds[0])
    segments = np.searchsorted(np.asarray(cuts, dtype=int), np.arange(n), side="right")
    signals = find_signals(y, centre, sigma, lower, upper, segments, improvement, two_of_three=two_of_three,
                           shift_run=RUN_CHART_SHIFT if run else SHIFT_RUN,
                           trend_run=RUN_CHART_TREND if run else TREND_RUN, limits=not run)
    point_rules: list[list[str]] = [[] for _ in range(n)]
    for signal in signals:
        for i in signal.flagged:
            if signal.rule not in point_rules[i]:
                point_rules[i].append(signal.rule)
    latest = [s for s in signals if n - 1 in s.flagged]
    kinds = {s.meaning for s in latest}
    if not latest:
        variation, icon = "common cause", "common_cause"
    else:
        if improvement == "neutral":
            kind = "neither"
        elif kinds == {"improvement", "concern"}:
            kind = conflict
        else:
            kind = kinds.pop()
        chosen = [s for s in latest if s.meaning == kind]
        sides = {"up": "high", "down": "low", "high": "high", "low": "low"}
        side = sides[chosen[0].side]
        icon = f"{kind}_{side}"
        variation = {"improvement": "special cause improving", "concern": "special cause concerning",
                     "neither": "special cause neither"}[kind]
    warnings = list(extra_warnings)
    segment_sizes = np.bincount(segments)
    assurance = assurance_icon = None
    target_now = None
    if target is not None:
        target_arr = np.broadcast_to(np.asarray(target, dtype=float), (n,))
        target_now = float(target_arr[-1])
        if run:
            pass  # no limits, no assurance (said in the warnings)
        elif improvement == "neutral":
            warnings.append("no assurance icon: the measure has no direction of improvement")
        else:
            assurance_icon = assurance_of(target_now, float(lower[-1]), float(upper[-1]), improvement)
            assurance = ASSURANCE_LABELS[assurance_icon]
    if not run and segment_sizes[-1] < 20:
        warnings.append(f"the latest limits rest on {min(segment_sizes[-1], fix_after or segment_sizes[-1])} points; "
                        "MDC treats limits from fewer than 20 as provisional")
    points = pd.DataFrame({"label": labels, "value": y, "centre": centre, "lower": lower, "upper": upper,
                           "sigma": sigma, "segment": segments, "signals": [", ".join(r) for r in point_rules]})
    return SPCResult(chart=chart, improvement=improvement, points=points, signals=tuple(signals), variation=variation,
                     assurance=assurance, target=target_now, breaks=tuple(int(b) for b in cuts), why=why,
                     variation_icon=icon, assurance_icon=assurance_icon, rebases=tuple(reasons), fix_after=fix_after,
                     two_of_three=two_of_three, screen_outliers=screen, warnings=tuple(warnings))


def assurance_of(target: float, lower: float, upper: float, improvement: str) -> str | None:
    """MDC assurance: ``pass`` when the whole process is on the right side of the target, ``fail`` when the
    whole process is on the wrong side, ``hit_and_miss`` when the target lies within the limits."""
    if improvement == "neutral" or not (np.isfinite(lower) or np.isfinite(upper)):
        return None
    if improvement == "higher":
        return "pass" if lower > target else "fail" if upper < target else "hit_and_miss"
    return "pass" if upper < target else "fail" if lower > target else "hit_and_miss"
