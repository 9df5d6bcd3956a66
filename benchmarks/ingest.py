"""Benchmark: validate and load a 1,000,000-row ttg_resettlement return into SQLite.

Baseline, measured in the same run on the same file: a plain ``pandas.read_csv`` +
``DataFrame.to_sql`` (no checks, no pseudonymisation, no derived columns). Each phase
runs in its own process so that its peak RSS is its own. Targets (issue 4): under 60 s,
under 2 GB peak RSS. Figures go to ``benchmarks/results/ingest.json``.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
NAME = "gateway-resettlement_ttg_resettlement_2023-02.csv"


def make_file(folder: Path, rows: int) -> Path:
    import pandas as pd

    from cjmonitor.demo import generate_world

    generate_world(folder / "world", folder / "truth.json", seed=1, areas=5, months=24)
    template = pd.read_csv(folder / "world" / NAME, dtype=str, keep_default_na=False)
    copies = -(-rows // len(template))
    big = pd.concat([template] * copies, ignore_index=True).iloc[:rows].copy()
    big["episode_ref"] = [f"T{i:09d}" for i in range(rows)]
    path = folder / NAME
    big.to_csv(path, index=False, lineterminator="\n")
    return path


def phase_baseline(path: Path, db: Path) -> dict:
    import pandas as pd
    from sqlalchemy import create_engine

    started = time.perf_counter()
    frame = pd.read_csv(path)
    frame.to_sql("ttg", create_engine(f"sqlite:///{db}"), index=False, chunksize=50_000)
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def phase_cjmonitor(path: Path, home: Path) -> dict:
    from cjmonitor import pipeline
    from cjmonitor.db import session_scope
    from cjmonitor.demo import build_world, load_world
    from cjmonitor.settings import get_settings
    from contracts.ingest import ingest_file

    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    settings.ensure_dirs()
    key = settings.pseudonymisation_key()
    started = time.perf_counter()
    with session_scope(settings) as session:
        outcome = ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=key, source="bench",
                              max_bytes=2 * 1024**3)
    seconds = time.perf_counter() - started
    if outcome.status != "accepted":
        raise SystemExit(f"benchmark file was not accepted: {outcome.message} {outcome.issues[:3]}")
    return {"seconds": seconds, "rows": outcome.rows}


def _child(phase: str, path: Path, target: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--phase", phase, "--file", str(path), "--target", str(target)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["baseline", "cjmonitor"])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--target", type=Path)
    args = parser.parse_args()
    if args.phase:
        run = phase_baseline if args.phase == "baseline" else phase_cjmonitor
        figures = run(args.file, args.target)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_file(folder, args.rows)
        size_mb = path.stat().st_size / 1e6
        baseline = _child("baseline", path, folder / "baseline.db")
        ours = _child("cjmonitor", path, folder / "home")
    result = {
        "benchmark": "validate + pseudonymise + load one ttg_resettlement return into SQLite",
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "baseline_read_csv_to_sql": {k: round(v, 2) for k, v in baseline.items()},
        "cjmonitor_ingest": {k: round(v, 2) for k, v in ours.items()},
        "rows_per_second": round(args.rows / ours["seconds"]),
        "ratio_to_baseline": round(ours["seconds"] / baseline["seconds"], 2),
        "targets": {"seconds": 60, "peak_rss_mb": 2048},
        "meets_targets": {"seconds": ours["seconds"] < 60, "peak_rss": ours["peak_rss_mb"] < 2048},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
