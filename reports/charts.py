"""Charts as inline SVG (matplotlib's SVG backend): titled, labelled, with units."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9})


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
    return svg[svg.index("<svg"):]
