"""Benchmark: the interdependency analysis on 42 areas x 36 months x every cross-agency pair of catalogue measures.

The vectorised analysis (``outcomes.interdependence``) against a baseline loop of statsmodels fits in the
same run: for a sample of pairs, the pooled two-way fixed-effects distributed-lag regression with
cluster-robust errors by area (``sm.OLS(...).fit(cov_type="cluster")`` on the within-transformed data),
whose estimates and standard errors are checked against the vectorised ones. Pairs a second are
compared. Figures go to ``benchmarks/results/interdependence.json``. Target: under 30 s.

    .venv/bin/python benchmarks/interdependence.py [--sample 40]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import statsmodels.api as sm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from cjmonitor.demo_system import simulate_system  # noqa: E402
from outcomes.interdependence import _demean, analyse_interdependencies  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "interdependence.json"
TARGET_SECONDS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=40, help="pairs fitted by the statsmodels loop")
    args = parser.parse_args()
    panel = simulate_system(breakdowns=False)
    frame = panel.frame(include_breakdowns=False)
    started = time.perf_counter()
    result = analyse_interdependencies(frame)
    seconds = time.perf_counter() - started
    pairs = len(result.pairs)

    # Baseline: statsmodels, one pair at a time, on the same within-transformed windows.
    keys = list(result.series)
    logs = {k for k, u in zip(panel.keys, panel.units, strict=True) if u == "count"}
    values = np.stack([np.log(panel.value[panel.keys.index(k)]) if k in logs else panel.value[panel.keys.index(k)]
                       for k in keys])
    lags = result.pairs[0].lags
    start, months = max(lags), values.shape[-1]
    rng = np.random.default_rng(0)
    sample = [result.pairs[i] for i in rng.choice(pairs, size=min(args.sample, pairs), replace=False)]
    clusters = np.repeat(np.arange(values.shape[1]), months - start)
    started = time.perf_counter()
    worst_beta = worst_se = 0.0
    for pair in sample:
        i, j = keys.index(pair.cause), keys.index(pair.effect)
        y = _demean(values[j, :, start:]).ravel()
        x = np.column_stack([_demean(values[i, :, start - lag:months - lag]).ravel() for lag in lags])
        fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": clusters})
        worst_beta = max(worst_beta, float(np.max(np.abs(fit.params - np.array(pair.lag_estimates)))))
        worst_se = max(worst_se, float(np.max(np.abs(fit.bse - np.array(pair.lag_ses)) / fit.bse)))
    loop_seconds = time.perf_counter() - started
    found = sorted((a.area, a.cause[1], a.effect[1], a.lag_months) for a in result.area_links)
    out = {
        "areas": len(result.areas), "months": len(result.periods), "series": len(keys), "pairs": pairs,
        "tests": result.tests, "seconds": round(seconds, 3),
        "pairs_per_s": round(pairs / seconds), "loop_pairs_per_s": round(len(sample) / loop_seconds, 1),
        "speedup": round((pairs / seconds) / (len(sample) / loop_seconds), 1),
        "note": "the loop fits only the pooled regression; the vectorised run also fits every pair x area x lag",
        "max_abs_diff_estimates": worst_beta, "max_rel_diff_se": worst_se,
        "area_links_found": found, "injected": [(d["area_code"], d["cause"]["measure"], d["effect"]["measure"],
                                                 d["lag_months"]) for d in panel.interdependencies],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "targets": {"seconds": TARGET_SECONDS, "tolerance": 1e-8},
        "python": platform.python_version(), "machine": platform.machine(),
    }
    out["meets_targets"] = bool(seconds < TARGET_SECONDS and worst_beta < 1e-8 and worst_se < 1e-6)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
