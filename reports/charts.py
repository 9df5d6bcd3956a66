"""Charts as small hand-written inline SVG: titled, labelled, with units, and light enough to print fast.

matplotlib's SVG of a six-panel KPI chart was about 100 KB (every glyph, marker and clip path an element)
and WeasyPrint spent most of a PDF's time drawing it (3.6 of 5 s for an evidence pack). These charts
draw the same things (rate, interval band, target, change date, funnel limits) with a few elements per
series, so a panel is 2-4 KB and costs WeasyPrint milliseconds. Each panel is its own ``<svg
role="img">`` with a ``<title>`` and a ``<desc>`` (what it shows), so a screen reader announces it
and a page break never cuts one in half. The data of every chart is also in a table beside it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

_ID = "@chart-id@"  # replaced by a digest of the finished chart
WIDTH, HEIGHT = 680, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 40, 40
INK, MUTED, GRID = "#0b0c0c", "#383f43", "#d8d8d8"
BLUE, BAND, RED, ORANGE, ORANGE_BAND, GREY = "#08519c", "#b7d4ea", "#a50f15", "#a63603", "#fdd0a2", "#6f777b"


@dataclass
class _Layer:
    kind: str  # band, line, points
    x: np.ndarray
    y: np.ndarray
    y2: np.ndarray | None = None
    colour: str = BLUE
    dashed: bool = False
    label: str = ""
    marker: str = "circle"  # circle or diamond
    size: float = 2.2


@dataclass
class _Panel:
    title: str
    description: str
    x_label: str
    y_label: str
    layers: list[_Layer] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    vertical: float | None = None  # a dashed vertical rule (a change date), in x units
    height: int = HEIGHT
    extra: str = ""  # ready-made SVG drawn last (icons, rule marks), in pixels
    marks: list[tuple[float, float, str, str]] = field(default_factory=list)  # (x, y, text, colour) in data units
    legend: bool = True  # small multiples draw their shared key once, on the first panel


def _nice_step(span: float, ticks: int = 3) -> float:
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(panel: _Panel) -> str:
    values = [v for layer in panel.layers for arr in (layer.y, layer.y2) if arr is not None for v in arr
              if v is not None and np.isfinite(v)]
    xs = [v for layer in panel.layers for v in layer.x if np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 100.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high - x_low < 1e-9:
        x_low, x_high = x_low - 1, x_high + 1
    pad = (x_high - x_low) * 0.02
    x_low, x_high = x_low - pad, x_high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, panel.height - TOP - BOTTOM

    def sx(v):
        return LEFT + (v - x_low) / (x_high - x_low) * plot_w

    def sy(v):
        return TOP + (high - v) / (high - low) * plot_h

    title_id, desc_id = f"{_ID}-title", f"{_ID}-desc"
    out = [f'<svg class="chart" role="img" aria-labelledby="{title_id} {desc_id}" viewBox="0 0 {WIDTH} {panel.height}" '
           f'width="{WIDTH}" height="{panel.height}" xmlns="http://www.w3.org/2000/svg" font-family="DejaVu Sans, Arial, sans-serif">',
           f'<title id="{title_id}">{escape(panel.title)}</title><desc id="{desc_id}">{escape(panel.description)}</desc>',
           f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold" fill="{INK}">{escape(panel.title)}</text>']
    tick = low
    while tick <= high + step / 2:
        y = sy(tick)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="0.7"/>'
                   f'<text x="{LEFT - 5}" y="{y + 3.5:.1f}" font-size="9" text-anchor="end" fill="{MUTED}">{_fmt(tick)}</text>')
        tick += step
    out.append(f'<text transform="translate(12 {TOP + plot_h / 2:.1f}) rotate(-90)" font-size="9.5" text-anchor="middle" '
               f'fill="{MUTED}">{escape(panel.y_label)}</text>')
    base = TOP + plot_h
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" stroke="{MUTED}" stroke-width="0.8"/>')
    for x, label in panel.x_ticks:
        out.append(f'<text x="{sx(x):.1f}" y="{base + 13}" font-size="8.5" text-anchor="middle" fill="{MUTED}">{escape(label)}</text>')
    if panel.x_label:
        out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{panel.height - 6}" font-size="9.5" text-anchor="middle" '
                   f'fill="{MUTED}">{escape(panel.x_label)}</text>')
    if panel.vertical is not None:
        x = sx(panel.vertical)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{base}" stroke="{GREY}" stroke-width="1" stroke-dasharray="2 2"/>')
    legend_x = WIDTH - RIGHT
    legend = []
    for layer in panel.layers:
        ok = np.isfinite(layer.x) & np.isfinite(layer.y) & (np.isfinite(layer.y2) if layer.y2 is not None else True)
        x, y = layer.x[ok], layer.y[ok]
        if layer.kind == "band" and len(x):
            y2 = layer.y2[ok]
            points = [f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, y2, strict=True)]
            points += [f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x[::-1], y[::-1], strict=True)]
            out.append(f'<polygon points="{" ".join(points)}" fill="{layer.colour}" fill-opacity="0.7" stroke="none"/>')
        elif layer.kind == "line" and len(x):
            points = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, y, strict=True))
            dash = ' stroke-dasharray="5 3"' if layer.dashed else ""
            out.append(f'<polyline points="{points}" fill="none" stroke="{layer.colour}" stroke-width="1.5"{dash}/>')
        elif layer.kind == "points" and len(x):
            # Every marker of a layer in one path (a sub-path each): a PDF engine draws one shape, not one per point.
            s = layer.size
            if layer.marker == "diamond":
                marks = "".join(f"M{sx(a):.1f} {sy(b) - s:.1f}l{s} {s}l-{s} {s}l-{s} -{s}z" for a, b in zip(x, y, strict=True))
            else:
                marks = "".join(f"M{sx(a) - s:.1f} {sy(b):.1f}a{s} {s} 0 1 0 {2 * s:g} 0a{s} {s} 0 1 0 -{2 * s:g} 0z"
                                for a, b in zip(x, y, strict=True))
            out.append(f'<path class="points" fill="{layer.colour}" d="{marks}"/>')
        if layer.label and panel.legend:
            legend.append(layer)
    # Legend, right-aligned under the title: a swatch in the layer's style, then its words.
    for layer in reversed(legend):
        width = 6.2 * len(layer.label) + 24
        legend_x -= width
        y = 28
        if layer.kind == "band":
            swatch = f'<rect x="{legend_x:.1f}" y="{y - 6}" width="16" height="8" fill="{layer.colour}"/>'
        elif layer.kind == "points":
            swatch = f'<circle cx="{legend_x + 8:.1f}" cy="{y - 2}" r="3" fill="{layer.colour}"/>'
        else:
            dash = ' stroke-dasharray="5 3"' if layer.dashed else ""
            swatch = f'<line x1="{legend_x:.1f}" x2="{legend_x + 16:.1f}" y1="{y - 2}" y2="{y - 2}" stroke="{layer.colour}" stroke-width="1.5"{dash}/>'
        out.append(swatch + f'<text x="{legend_x + 20:.1f}" y="{y + 1}" font-size="9" fill="{MUTED}">{escape(layer.label)}</text>')
    for x, y, text, colour in panel.marks:
        if np.isfinite(x) and np.isfinite(y):
            out.append(f'<text x="{sx(x):.1f}" y="{sy(y) - 6:.1f}" font-size="8.5" font-weight="bold" text-anchor="middle" '
                       f'fill="{colour}">{escape(text)}</text>')
    out.append(panel.extra)
    out.append("</svg>")
    svg = "".join(out)
    # Ids from the chart's own content, so the same data draw the same bytes in any process and on a rerun.
    return svg.replace(_ID, f"chart-{hashlib.sha256(svg.encode()).hexdigest()[:12]}")


def _month_ticks(labels: Sequence[str], most: int = 6) -> list[tuple[float, str]]:
    step = max(1, math.ceil(len(labels) / most))
    return [(float(i), str(labels[i])) for i in range(0, len(labels), step)]


def _pct(series) -> np.ndarray:
    return 100 * pd.to_numeric(pd.Series(series), errors="coerce").to_numpy(dtype=float)


RULE_MARKS = {"outside limits": "O", "trend": "T", "two of three near a limit": "2", "shift": "S"}
RULE_KEY = "O outside the limits, T trend of 7, 2 two of three beyond 2 sigma, S shift of 7"


def _steps(values) -> tuple[np.ndarray, np.ndarray]:
    """A value per month drawn as a flat step across the month, so limits step at a rebase (not slope)."""
    v = np.asarray(values, dtype=float)
    x = np.repeat(np.arange(len(v), dtype=float), 2) + np.tile([-0.45, 0.45], len(v))
    return x, np.repeat(v, 2)


def spc_table(frame: pd.DataFrame, chart) -> list[dict]:
    """The chart's figures for the months of ``frame``: period, centre, lower, upper and the rules flagging each."""
    if chart is None:
        return [{"period": p, "centre": None, "lower": None, "upper": None, "signals": ""} for p in frame["period"]]
    points = chart.points
    # One pass over the columns into a dict (a .loc lookup per month was a tenth of a scorecard's CPU time).
    by_label = {str(label): {"centre": float(centre), "lower": float(lower), "upper": float(upper), "signals": signals}
                for label, centre, lower, upper, signals
                in zip(points["label"], points["centre"], points["lower"], points["upper"], points["signals"], strict=True)}
    missing = {"centre": None, "lower": None, "upper": None, "signals": ""}
    return [{"period": p, **by_label.get(p, missing)} for p in frame["period"]]


def kpi_small_multiples(series: dict[str, pd.DataFrame], titles: dict[str, str], alpha: float = 0.05,
                        spc: dict | None = None, units: dict[str, str] | None = None) -> str:
    """One panel per measure: the monthly rate and the target (dashed), and with ``spc`` (``{code: SPCResult}``)
    the process mean and limits (stepped at rebases), the special-cause points marked with their rule's letter and
    the variation and assurance icons; without a chart for a measure, its Wilson interval band.

    Each frame needs columns period, value, ci_low, ci_high, target. ``units``: a measure's unit when it is
    not a proportion (``days``, ``count``: declared services), drawn as it is rather than as a percentage.
    """
    from reports.icons import assurance_svg, icon_words, variation_svg

    spc = spc or {}
    level = f"{100 * (1 - alpha):g}%"
    panels = []
    # Each text element costs WeasyPrint a text layout (about 5 ms): the key is drawn once and the month
    # axis is named on the last panel only.
    last = len(series) - 1
    for number, (code, frame) in enumerate(series.items()):
        x = np.arange(len(frame), dtype=float)
        months = list(frame["period"])
        title = titles.get(code, code)
        chart = spc.get(code)
        unit = (units or {}).get(code) or "percent"
        if unit.startswith("percent"):
            scale, sign, y_label = _pct, "%", "% of cases"
        else:
            def scale(s):
                return pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=float)
            sign, y_label = f" {unit}", unit
        value, target = scale(frame["value"]), scale(frame["target"])
        layers, marks, extra = [], [], ""
        if chart is None:
            description = (f"Monthly rate of {title} from {months[0]} to {months[-1]} with its {level} interval and the target; "
                           f"latest {_fmt(value[-1])}{sign} against a target of {_fmt(target[-1])}{sign}." if len(frame)
                           else f"No values for {title}.")
            layers.append(_Layer("band", x, scale(frame["ci_low"]), scale(frame["ci_high"]), BAND, label=f"{level} interval"))
        else:
            table = spc_table(frame, chart)
            centre = scale([r["centre"] for r in table])
            lower, upper = scale([r["lower"] for r in table]), scale([r["upper"] for r in table])
            words = icon_words(chart.variation_icon, chart.assurance_icon)
            flagged = [i for i, r in enumerate(table) if r["signals"]]
            rules = sorted({rule for r in table for rule in r["signals"].split(", ") if rule})
            description = (f"{chart.why.split(':')[0]} of {title}, {months[0]} to {months[-1]}: monthly rate, process mean "
                           f"and limits, target. Latest {_fmt(value[-1])}{sign} against a target of {_fmt(target[-1])}{sign}. "
                           f"Variation: {words[0]}; assurance: {words[1]}. "
                           + (f"Special-cause months: {', '.join(months[i] for i in flagged)} ({'; '.join(rules)})."
                              if flagged else "No special-cause month."))
            layers += [_Layer("line", *_steps(lower), colour=GREY, dashed=True, label="limits"),
                       _Layer("line", *_steps(upper), colour=GREY, dashed=True),
                       _Layer("line", *_steps(centre), colour=INK, label="mean")]
            by_meaning = {"concern": [], "improvement": [], "neither": []}
            for signal in chart.signals:
                for i in signal.flagged:
                    label = str(chart.points["label"].iloc[i])
                    if label in months:
                        by_meaning[signal.meaning].append(months.index(label))
            for meaning, colour in (("improvement", BLUE), ("concern", ORANGE), ("neither", "#6a3d9a")):
                idx = sorted(set(by_meaning[meaning]))
                if idx:
                    layers.append(_Layer("points", x[idx], value[idx], colour=colour, marker="diamond", size=4.5,
                                         label={"improvement": "improving", "concern": "concerning", "neither": "special cause"}[meaning]))
            for i in flagged:
                letters = "".join(RULE_MARKS[r] for r in table[i]["signals"].split(", ") if r in RULE_MARKS)
                marks.append((x[i], value[i], letters, INK))
            extra = (variation_svg(chart.variation_icon, 20).replace("<svg ", f'<svg x="{WIDTH - RIGHT - 44}" y="0" ', 1)
                     + assurance_svg(chart.assurance_icon, 20).replace("<svg ", f'<svg x="{WIDTH - RIGHT - 20}" y="0" ', 1))
        layers += [_Layer("line", x, value, colour=BLUE, label="observed"),
                   _Layer("points", x, value, colour=BLUE),
                   _Layer("line", x, target, colour=RED, dashed=True, label="target")]
        panels.append(_svg(_Panel(
            title=title, description=description, x_label="month" if number == last else "", y_label=y_label,
            legend=number == 0, layers=layers, marks=marks, extra=extra, height=HEIGHT + (14 if number == 0 else 0),
            x_ticks=_month_ticks(months, 5))))
    return "".join(panels)


def its_chart(frame: pd.DataFrame, title: str) -> str:
    """Observed rate, fitted line and the counterfactual (with its interval) after the change."""
    x = np.arange(len(frame), dtype=float)
    post = frame["post"].to_numpy(dtype=bool)
    first_post = int(np.argmax(post)) if post.any() else len(frame)
    months = [str(t) for t in frame["time"]]
    description = (f"Observed monthly rate, the fitted segmented regression, and the projection without the change "
                   f"from {months[first_post] if first_post < len(months) else 'the end'} with its 95% interval.")
    return _svg(_Panel(
        title=title, description=description, x_label="month", y_label="% of cases", height=220,
        layers=[_Layer("band", x[post], _pct(frame["counterfactual_low"])[post], _pct(frame["counterfactual_high"])[post],
                       ORANGE_BAND, label="counterfactual 95% interval"),
                _Layer("points", x, _pct(frame["observed"]), colour=BLUE, label="observed", size=2.6),
                _Layer("line", x, _pct(frame["fitted"]), colour=BLUE, label="fitted"),
                _Layer("line", x[post], _pct(frame["counterfactual"])[post], colour=ORANGE, dashed=True,
                       label="without the change")],
        x_ticks=_month_ticks(months), vertical=first_post - 0.5))


def funnel_panels(funnel: pd.DataFrame, titles: dict[str, str]) -> str:
    """One funnel plot per KPI: each contract's 12-month rate by volume, national rate, 95% and 99.8% limits."""
    panels = []
    for number, code in enumerate([c for c in titles if c in set(funnel["measure_code"])]):
        data = funnel[funnel["measure_code"] == code].sort_values("denominator")
        n = data["denominator"].to_numpy(dtype=float)
        grid = np.linspace(max(n.min() * 0.8, 1), n.max() * 1.1, 40)
        p0 = float(data["national"].iloc[0])
        layers = []
        for z, label, dashed in ((1.959964, "95% limits", False), (3.090232, "99.8% limits", True)):
            half = z * np.sqrt(p0 * (1 - p0) / grid)
            layers.append(_Layer("line", grid, 100 * (p0 + half), colour=GREY, dashed=dashed, label=label))
            layers.append(_Layer("line", grid, 100 * (p0 - half), colour=GREY, dashed=dashed))
        layers.append(_Layer("line", grid, np.full_like(grid, 100 * p0), colour=INK, label="all contracts"))
        others, mine = data[~data["this_contract"]], data[data["this_contract"]]
        layers.append(_Layer("points", others["denominator"].to_numpy(float), _pct(others["rate"]), colour="#4a90c2",
                             label="other contracts", size=2.8))
        layers.append(_Layer("points", mine["denominator"].to_numpy(float), _pct(mine["rate"]), colour=RED,
                             label="this contract", marker="diamond", size=5))
        ticks = np.linspace(grid.min(), grid.max(), 4)
        rate = f"{_fmt(100 * float(mine['rate'].iloc[0]))}%" if not mine.empty else "not known"
        panels.append(_svg(_Panel(
            title=titles[code], description=(f"Funnel plot: 12-month rate of each contract by its number of cases, the rate of "
                                             f"all contracts ({_fmt(100 * p0)}%) and 95% and 99.8% limits; this contract {rate}."),
            x_label="cases in 12 months", y_label="% of cases", layers=layers, legend=number == 0,
            x_ticks=[(float(t), f"{t:,.0f}") for t in ticks])))
    return "".join(panels)
