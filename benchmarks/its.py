"""Benchmark: batched ITS fits against a loop of statsmodels fits over a sample of the same series.

100,000 series x 60 months, one intervention, one Fourier pair. Gaussian with Newey-West errors and
Poisson with a log offset (IRLS batched across series). The loop baseline fits a sample of the series
with statsmodels in the same run; rates (series a second) are compared, and the batched estimates and
standard errors are checked against the loop's. Figures go to ``benchmarks/results/its.json``.

    .venv/bin/python benchmarks/its.py [--series 100000] [--sample 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import statsmodels.api as sm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from outcomes.its import design_matrix, fit_many  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "its.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, at = 60, 30
    X, names = design_matrix(n, at, fourier=1)
    t = np.arange(n)
    Y = 50 + 0.1 * t + 4 * (t >= at) + 1.5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, (args.series, n))
    exposure = rng.uniform(800, 1200, (args.series, n))
    counts = rng.poisson(exposure * np.exp(-3 + 0.002 * t - 0.1 * (t >= at)))
    lags = int(math.floor(4 * (n / 100) ** (2 / 9)))
    out = {"series": args.series, "periods": n, "loop_sample": args.sample}

    started = time.perf_counter()
    gaussian = fit_many(Y, X, names, errors="hac")
    g_seconds = time.perf_counter() - started
    started = time.perf_counter()
    loop = [sm.OLS(Y[i], X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
            for i in range(args.sample)]
    g_loop = time.perf_counter() - started
    g_diff = max(np.max(np.abs(f.params - gaussian.params[i])) for i, f in enumerate(loop))
    g_se = max(np.max(np.abs(f.bse - gaussian.bse[i])) for i, f in enumerate(loop))
    out["gaussian_hac"] = {"batched_seconds": round(g_seconds, 2), "batched_series_per_s": round(args.series / g_seconds),
                           "loop_series_per_s": round(args.sample / g_loop),
                           "speedup": round((args.series / g_seconds) / (args.sample / g_loop), 1),
                           "max_abs_diff_params": float(g_diff), "max_abs_diff_se": float(g_se)}

    started = time.perf_counter()
    poisson = fit_many(counts, X, names, family="poisson", offset=exposure)
    p_seconds = time.perf_counter() - started
    sample = max(200, args.sample // 4)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loop = [sm.GLM(counts[i], X, family=sm.families.Poisson(), offset=np.log(exposure[i])).fit(tol=1e-12)
                for i in range(sample)]
    p_loop = time.perf_counter() - started
    p_diff = max(np.max(np.abs(f.params - poisson.params[i])) for i, f in enumerate(loop))
    p_se = max(np.max(np.abs(f.bse - poisson.bse[i])) for i, f in enumerate(loop))
    out["poisson_offset"] = {"batched_seconds": round(p_seconds, 2), "batched_series_per_s": round(args.series / p_seconds),
                             "loop_series_per_s": round(sample / p_loop),
                             "speedup": round((args.series / p_seconds) / (sample / p_loop), 1),
                             "max_abs_diff_params": float(p_diff), "max_abs_diff_se": float(p_se)}
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)
    out["targets"] = {"gaussian_seconds": 3, "gaussian_speedup": 20, "poisson_seconds": 15, "poisson_speedup": 10,
                      "gaussian_tolerance": 1e-8, "poisson_tolerance": 1e-6, "peak_rss_gb": 4}
    out["meets_targets"] = {k: bool(v) for k, v in {
        "gaussian": g_seconds < 3 and out["gaussian_hac"]["speedup"] >= 20 and g_diff < 1e-8 and g_se < 1e-8,
        "poisson": p_seconds < 15 and out["poisson_offset"]["speedup"] >= 10 and p_diff < 1e-6 and p_se < 1e-6,
        "memory": out["peak_rss_gb"] < 4,
    }.items()}
    out["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
