"""Benchmark: staggered DiD (Callaway & Sant'Anna) for 42 areas x 60 months with 1,000 bootstrap draws.

Target: under 10 s for the whole analysis (group-time effects, three aggregations, multiplier bootstrap,
uniform band). Baseline in the same run: the same panel's analytic-error fit (no bootstrap) and one
statsmodels OLS two-way fixed-effects fit (unit and month dummies), with ratios reported. Writes
benchmarks/results/staggered.json. Not a timed test.

    .venv/bin/python benchmarks/staggered.py [--draws 1000] [--areas 42] [--months 60]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from outcomes.staggered import _frame, simulate_panels, staggered_did  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "staggered.json"
TARGET_S = 10.0


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--areas", type=int, default=42)
    parser.add_argument("--months", type=int, default=60)
    args = parser.parse_args()
    cohorts = (12, 24, 36, 48)
    Y, first, truth = simulate_panels(np.random.default_rng(7), 1, n_units=args.areas, n_periods=args.months,
                                      cohorts=cohorts, shares=(0.15, 0.15, 0.15, 0.15))
    frame = _frame(Y[0], first[0])
    result, boot_s = timed(staggered_did, frame, "unit", "time", "y", "first", bootstrap=args.draws)
    _, analytic_s = timed(staggered_did, frame, "unit", "time", "y", "first")

    import statsmodels.formula.api as smf

    frame["treated_now"] = ((frame["first"] > 0) & (frame["time"] >= frame["first"])).astype(float)
    _, ols_s = timed(lambda: smf.ols("y ~ treated_now + C(unit) + C(time)", data=frame).fit())
    figures = {
        "areas": args.areas, "months": args.months, "draws": args.draws, "group_time_cells": len(result.group_time),
        "bootstrap_s": round(boot_s, 3), "analytic_s": round(analytic_s, 3), "statsmodels_twfe_ols_s": round(ols_s, 3),
        "bootstrap_over_analytic": round(boot_s / analytic_s, 2), "bootstrap_over_twfe_ols": round(boot_s / ols_s, 2),
        "target_s": TARGET_S, "meets_target": boot_s < TARGET_S, "att": result.att.estimate, "truth": truth,
        "twfe": result.twfe, "python": platform.python_version(), "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
