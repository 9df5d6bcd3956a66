"""Benchmark: the monthly derive + judge for two consecutive new months, full recomputation vs incremental.

Setup (timed, not compared): generate a world of ``--months`` months of history plus two more, load the register
and the history's returns, and derive and judge them (the state the day before month N+1's returns arrive).

Then for month N+1, and again for month N+2: ingest the month's returns, and time

* ``full``: the recomputation every monthly run did before issue #20 (``derive_kpis`` over every month, then
  ``judge_all``), on a copy of the database taken after the ingest;
* ``incremental``: ``pipeline.derive`` and ``pipeline.judge`` on the home itself (only the months and series
  whose inputs changed; the counts are recorded).

After each month the KPI values and judgements of the two are compared table against table (they must be equal).
The goal (issue #20): the second month's incremental run costs about the same as the first's (cost grows with the
month's data, not with history). Figures go to ``benchmarks/results/incremental.json``.

    .venv/bin/python benchmarks/incremental.py [--areas 42 --months 36 --seed 20231 --scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "incremental.json"


def _copy_db(source, target) -> None:
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _timed(work):
    started = time.perf_counter()
    result = work()
    return round(time.perf_counter() - started, 2), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=42)
    parser.add_argument("--months", type=int, default=36, help="months of history before the two measured months")
    parser.add_argument("--seed", type=int, default=20231)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    from cjmonitor import pipeline
    from cjmonitor.db import session_scope
    from cjmonitor.demo import generate_world, load_world
    from cjmonitor.settings import get_settings
    from contracts.judge import judge_all
    from contracts.kpis import derive_kpis
    from contracts.returns import RETURN_TYPES, SYSTEM_RETURN_TYPE, parse_file_name
    from tests.db_checksums import table_rows

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cjm-incremental-") as tmp:
        folder = Path(tmp)
        settings = get_settings(folder / "home")
        pipeline.upgrade_db(settings)
        staging = folder / "staging"
        started = time.perf_counter()
        world = generate_world(staging, settings.truth_path, seed=args.seed, areas=args.areas,
                               months=args.months + 2, scale=args.scale)
        load_world(settings, world)
        generate_seconds = time.perf_counter() - started
        first_new, second_new = world.period(args.months), world.period(args.months + 1)
        types = (*RETURN_TYPES, SYSTEM_RETURN_TYPE)
        files = sorted(p for p in staging.iterdir() if p.is_file())
        period_of = {p: (parsed.period if (parsed := parse_file_name(p.name, types)) else None) for p in files}
        by_month = {m: [p for p in files if period_of[p] == m] for m in (first_new, second_new)}
        history = [p for p in files if period_of[p] not in (first_new, second_new)]
        started = time.perf_counter()
        loaded = pipeline.ingest(settings, paths=history)
        load_seconds = time.perf_counter() - started
        history_derive, _ = _timed(lambda: pipeline.derive(settings))
        history_judge, _ = _timed(lambda: pipeline.judge(settings))
        print(f"setup: {loaded.accepted} history returns loaded in {load_seconds:.0f} s; derived in {history_derive} s, "
              f"judged in {history_judge} s", file=sys.stderr)

        months = []
        for index, month in enumerate((first_new, second_new)):
            ingested = pipeline.ingest(settings, paths=by_month[month])
            full_home = folder / f"full-{index}"
            full = get_settings(full_home)
            _copy_db(folder / "home" / "var" / "cjmonitor.db", full_home / "var" / "cjmonitor.db")

            def full_derive(full=full):
                with session_scope(full) as session:
                    return derive_kpis(session, home=settings.home, alpha=settings.alpha)

            def full_judge(full=full):
                with session_scope(full) as session:
                    return judge_all(session, settings.alpha)

            full_derive_s, _ = _timed(full_derive)
            full_judge_s, _ = _timed(full_judge)
            incr_derive_s, derived = _timed(lambda: pipeline.derive(settings))
            incr_judge_s, judged = _timed(lambda: pipeline.judge(settings))
            same = (table_rows(settings, "kpi_value") == table_rows(full, "kpi_value")
                    and table_rows(settings, "judgement") == table_rows(full, "judgement"))
            shutil.rmtree(full_home)
            entry = {
                "period": month, "history_months": args.months + index, "returns_accepted": ingested.accepted,
                "full": {"derive_seconds": full_derive_s, "judge_seconds": full_judge_s,
                         "seconds": round(full_derive_s + full_judge_s, 2)},
                "incremental": {"derive_seconds": incr_derive_s, "judge_seconds": incr_judge_s,
                                "seconds": round(incr_derive_s + incr_judge_s, 2),
                                "derive": derived.summary(), "judge": judged.summary(),
                                "months_computed": derived.computed, "months_skipped": derived.skipped,
                                "series_computed": judged.computed, "series_skipped": judged.skipped,
                                "judgement_rows_written": judged.rows_written, "judgements_stored": judged.stored},
                "incremental_equals_full": same,
            }
            entry["incremental_over_full"] = round(entry["incremental"]["seconds"] / entry["full"]["seconds"], 3)
            print(json.dumps(entry), file=sys.stderr)
            months.append(entry)

    first, second = months
    result = {
        "benchmark": "monthly derive + judge for months N+1 and N+2: full recomputation vs incremental (issue #20)",
        "database": "sqlite",
        "world": {"areas": args.areas, "contracts": len(world.contracts), "history_months": args.months,
                  "seed": args.seed, "scale": args.scale, "return_files": len(files)},
        "setup": {"generate_seconds": round(generate_seconds, 1), "load_history_seconds": round(load_seconds, 1),
                  "history_accepted": loaded.accepted, "history_derive_seconds": history_derive,
                  "history_judge_seconds": history_judge},
        "months": months,
        "second_over_first_incremental": round(second["incremental"]["seconds"] / first["incremental"]["seconds"], 3),
        "second_over_first_full": round(second["full"]["seconds"] / first["full"]["seconds"], 3),
        "all_equal_to_full": all(m["incremental_equals_full"] for m in months),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1_5_15_min_at_start": [round(x, 1) for x in load_before],
                    "load_average_1_5_15_min_at_end": [round(x, 1) for x in os.getloadavg()]},
        "note": "One process, SQLite. The full figures are the whole-history recomputation the monthly run did before "
                "issue #20; the incremental ones derive only the months whose returns changed and judge only the "
                "series whose values, targets or variations changed (a new month changes nearly every series, and "
                "a series is judged whole because its SPC limits use all its months).",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
