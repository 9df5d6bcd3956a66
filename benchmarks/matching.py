"""Benchmark: propensity-score matching at Justice Data Lab scale and beyond.

50,000 treated people against a pool of 1,000,000 with 20 covariates: propensity fit, caliper
nearest-neighbour matching, balance table and ATT with its Abadie-Imbens interval, with and without
replacement. Baseline in the same run: a statsmodels Logit fit on the same data (ratio reported).
Writes benchmarks/results/matching.json. Not a timed test.

    .venv/bin/python benchmarks/matching.py [--scale 0.1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from outcomes.matching import ComparisonGroupWarning, match  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "matching.json"
TARGETS = {"with_replacement_s": 10.0, "without_replacement_s": 30.0, "peak_rss_gb": 4.0}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kilobytes on Linux


def make_data(n_treated: int, n_pool: int, p: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_treated + n_pool
    X = rng.normal(size=(n, p))
    treated = np.r_[np.ones(n_treated, dtype=int), np.zeros(n_pool, dtype=int)]
    X[:n_treated] += 0.25  # the served differ on every covariate by a quarter of an SD
    beta = rng.uniform(-0.3, 0.3, p)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.8 + X @ beta - 0.2 * treated)))).astype(np.int8)
    frame = pd.DataFrame(X, columns=[f"x{j:02d}" for j in range(p)])
    frame.insert(0, "reoffended", y)
    frame.insert(0, "served", treated)
    return frame


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply both group sizes (0.1 for a quick run).")
    parser.add_argument("--covariates", type=int, default=20)
    args = parser.parse_args()
    n_treated, n_pool = int(50_000 * args.scale), int(1_000_000 * args.scale)
    covariates = [f"x{j:02d}" for j in range(args.covariates)]
    frame, build_s = timed(make_data, n_treated, n_pool, args.covariates)
    print(f"data: {n_treated:,} treated, {n_pool:,} pool, {args.covariates} covariates ({build_s:.1f} s to build)")

    import statsmodels.api as sm

    def baseline_fit():
        design = sm.add_constant(frame[covariates].to_numpy())
        return sm.Logit(frame["served"].to_numpy(), design).fit(disp=0)

    _, baseline_s = timed(baseline_fit)
    print(f"baseline statsmodels Logit fit: {baseline_s:.2f} s")

    runs = {}
    for label, replace in (("with_replacement", True), ("without_replacement", False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ComparisonGroupWarning)
            result, seconds = timed(match, frame, "served", "reoffended", covariates, replace=replace, caliper=0.2)
        runs[label] = {
            "seconds": round(seconds, 2),
            "ratio_to_statsmodels_logit": round(seconds / baseline_s, 2),
            "att": result.att.estimate, "ci_low": result.att.ci_low, "ci_high": result.att.ci_high,
            "n_matched": result.n_matched, "n_control_used": result.n_control_used,
            "max_smd_before": result.balance.max_smd_before, "max_smd_after": result.balance.max_smd_after,
        }
        print(f"{label}: {seconds:.2f} s ({seconds / baseline_s:.2f} x the Logit fit); ATT {result.att.estimate:.4f} "
              f"({result.att.ci_low:.4f} to {result.att.ci_high:.4f}); matched {result.n_matched:,}; "
              f"max |SMD| {result.balance.max_smd_before:.3f} -> {result.balance.max_smd_after:.3f}")
    peak = peak_rss_gb()
    print(f"peak RSS {peak:.2f} GB")

    others = {}
    for package in ("psmpy", "causalinference"):
        installed = importlib.util.find_spec(package) is not None
        others[package] = ("installed but not timed by this script" if installed else
                           "not installed in this environment: skipped (the issue times it only in the benchmark "
                           "environment, on 20,000 vs 500,000)")
    report = {
        "benchmark": "propensity-score matching (fit + caliper NN matching + balance + ATT with Abadie-Imbens interval)",
        "scale": args.scale, "n_treated": n_treated, "n_pool": n_pool, "covariates": args.covariates,
        "baseline": {"statsmodels_logit_fit_s": round(baseline_s, 2)},
        "runs": runs, "peak_rss_gb": round(peak, 2), "targets": TARGETS,
        "meets_targets": {
            "with_replacement": runs["with_replacement"]["seconds"] < TARGETS["with_replacement_s"],
            "without_replacement": runs["without_replacement"]["seconds"] < TARGETS["without_replacement_s"],
            "peak_rss": peak < TARGETS["peak_rss_gb"],
        } if args.scale == 1.0 else "targets apply at --scale 1 only",
        "other_packages": others,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "numpy": np.__version__, "pandas": pd.__version__},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
