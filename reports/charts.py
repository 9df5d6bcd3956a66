"""Charts as inline SVG (matplotlib's SVG backend): titled, labelled, with units."""

from __future__ import annotations

import io
import itertools
import re

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9})
_CHART_NUMBERS = itertools.count(1)


def _unique_ids(svg: str) -> str:
    """Prefix the ids inside one SVG so that several charts inline in one page never share an id."""
    prefix = f"c{next(_CHART_NUMBERS)}_"
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    return re.sub(r'(href="#|url\(#)([^")]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)


def kpi_small_multiples(series: dict[str, pd.DataFrame], titles: dict[str, str]) -> str:
    """One panel per measure: monthly rate with its interval, and the target as a dashed line.

    Each frame needs columns period, value, ci_low, ci_high, target.
    """
    n = max(len(series), 1)
    fig, axes = plt.subplots(n, 1, figsize=(7.2, 2.0 * n), sharex=False, squeeze=False)
    for ax, (code, frame) in zip(axes[:, 0], series.items(), strict=False):
        x = np.arange(len(frame))
        ax.fill_between(x, 100 * frame["ci_low"], 100 * frame["ci_high"], color="#9ecae1", alpha=0.6, linewidth=0, label="95% interval")
        ax.plot(x, 100 * frame["value"], color="#08519c", marker="o", markersize=2.5, linewidth=1.4, label="observed")
        ax.plot(x, 100 * frame["target"], color="#a50f15", linestyle="--", linewidth=1.2, label="target")
        ax.set_title(titles.get(code, code), loc="left", fontsize=9.5)
        ax.set_ylabel("% of cases")
        step = max(1, len(frame) // 9)
        ax.set_xticks(x[::step])
        ax.set_xticklabels(frame["period"].iloc[::step], fontsize=7.5)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.02), fontsize=7.5, frameon=False, ncol=3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return _unique_ids(svg[svg.index("<svg"):])


def _svg(fig) -> str:
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return _unique_ids(svg[svg.index("<svg"):])


def its_chart(frame: pd.DataFrame, title: str) -> str:
    """Observed rate, fitted line and the counterfactual (with its interval) after the change."""
    fig, ax = plt.subplots(figsize=(7.2, 2.8))
    x = np.arange(len(frame))
    post = frame["post"].to_numpy(dtype=bool)
    ax.fill_between(x[post], 100 * frame["counterfactual_low"][post], 100 * frame["counterfactual_high"][post],
                    color="#fdd0a2", alpha=0.7, linewidth=0, label="counterfactual 95% interval")
    ax.plot(x, 100 * frame["observed"], "o", color="#08519c", markersize=3, label="observed")
    ax.plot(x, 100 * frame["fitted"], color="#08519c", linewidth=1.4, label="fitted")
    ax.plot(x[post], 100 * frame["counterfactual"][post], color="#a63603", linestyle="--", linewidth=1.4,
            label="without the change")
    first_post = int(np.argmax(post))
    ax.axvline(first_post - 0.5, color="#555555", linewidth=0.8)
    ax.set_title(title, loc="left", fontsize=9.5)
    ax.set_ylabel("% of cases")
    step = max(1, len(frame) // 9)
    ax.set_xticks(x[::step])
    ax.set_xticklabels(frame["time"].iloc[::step], fontsize=7.5)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, ncol=2, loc="best")
    return _svg(fig)


def funnel_panels(funnel: pd.DataFrame, titles: dict[str, str]) -> str:
    """One funnel plot per KPI: each contract's 12-month rate by volume, national rate, 95% and 99.8% limits."""
    codes = [c for c in titles if c in set(funnel["measure_code"])]
    if not codes:
        return ""
    cols = 2
    rows = -(-len(codes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(codes):]:
        ax.axis("off")
    for ax, code in zip(axes.flat, codes, strict=False):
        data = funnel[funnel["measure_code"] == code].sort_values("denominator")
        n = data["denominator"].to_numpy()
        grid = np.linspace(max(n.min() * 0.8, 1), n.max() * 1.1, 100)
        p0 = float(data["national"].iloc[0])
        for z, style in ((1.959964, ":"), (3.090232, "--")):
            half = z * np.sqrt(p0 * (1 - p0) / grid)
            ax.plot(grid, 100 * (p0 + half), color="#777777", linestyle=style, linewidth=0.8)
            ax.plot(grid, 100 * (p0 - half), color="#777777", linestyle=style, linewidth=0.8)
        ax.axhline(100 * p0, color="#333333", linewidth=0.8)
        others = data[~data["this_contract"]]
        mine = data[data["this_contract"]]
        ax.plot(others["denominator"], 100 * others["rate"], "o", color="#9ecae1", markersize=3.5)
        ax.plot(mine["denominator"], 100 * mine["rate"], "D", color="#a50f15", markersize=6, label="this contract")
        ax.set_title(titles[code], loc="left", fontsize=8)
        ax.set_xlabel("cases in 12 months", fontsize=7.5)
        ax.set_ylabel("%", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    axes.flat[0].legend(fontsize=7, frameon=False, loc="lower right")
    return _svg(fig)
