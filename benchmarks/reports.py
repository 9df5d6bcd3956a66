"""Benchmark: every document of the default demo world (scorecards, evidence packs, monthly reports, quarterly
LCJB packs as HTML, PDF and XLSX, then the index with the area and national matrices) for the latest period,
rendered across processes, against serial rendering of a sample in one process.

The world (42 areas, 168 contracts, 36 months) is built and analysed first in a temporary home (not timed);
``--home`` reuses a home where `cjmonitor demo` has run. The baseline renders a sample of the same documents
one after another in this process, in the same run; the figures compared are documents a second. Target:
all documents in under 2 minutes on two cores. Figures go to ``benchmarks/results/reports.json``.

    .venv/bin/python benchmarks/reports.py [--home DIR] [--sample 6] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from cjmonitor import pipeline  # noqa: E402
from cjmonitor.demo import load_world  # noqa: E402
from cjmonitor.documents import KINDS, render_documents, render_one  # noqa: E402
from cjmonitor.settings import get_settings  # noqa: E402
from reports.lcjb import is_quarter_end  # noqa: E402
from reports.pdf import engine as pdf_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "reports.json"  # --without-lcjb: reports-without-lcjb.json
TARGET_SECONDS = 120


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat): the PDF engine's browser processes included,
    which a process's own CPU time leaves out."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def build_world(home: Path) -> None:
    from cjmonitor.demo import generate_world

    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path)
    load_world(settings, world)
    pipeline.ingest(settings)
    pipeline.derive(settings)
    pipeline.judge(settings)
    pipeline.analyse(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a home where the demo world is loaded (default: build one)")
    parser.add_argument("--sample", type=int, default=6, help="contracts (and areas) rendered serially for the baseline")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: cjmonitor.documents.default_workers(), cores + 1 with Chromium)")
    parser.add_argument("--without-lcjb", action="store_true",
                        help="leave out the quarterly LCJB packs (the documents the 2-minute target was first set on)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    temporary = None
    started = time.perf_counter()
    if args.home is None:
        temporary = tempfile.TemporaryDirectory(prefix="cjmonitor-bench-reports-")
        home = Path(temporary.name)
        build_world(home)
    else:
        home = args.home
    setup_seconds = time.perf_counter() - started
    settings = get_settings(home)
    period = pipeline.latest_period(settings)
    contracts, areas = pipeline.contract_ids(settings), pipeline.area_codes(settings)

    # Baseline: a sample of each kind, one after another in this process (what the demo used to do).
    sample = {"scorecard": contracts[:: max(1, len(contracts) // args.sample)][: args.sample],
              "evidence_pack": contracts[1:: max(1, len(contracts) // args.sample)][: args.sample],
              "monthly_report": areas[:: max(1, len(areas) // args.sample)][: args.sample],
              "lcjb_pack": areas[1:: max(1, len(areas) // args.sample)][: args.sample] if is_quarter_end(period) and not args.without_lcjb else []}
    serial: dict[str, list[float]] = {kind: [] for kind in KINDS if sample[kind]}
    serial_cpu: dict[str, list[float]] = {kind: [] for kind in KINDS if sample[kind]}
    kinds = tuple(kind for kind in KINDS if sample[kind])  # the LCJB pack is quarterly
    for kind in kinds:
        for key in sample[kind]:
            _kind, _paths, wall, cpu = render_one(settings, kind, key, period)
            serial[kind].append(wall)
            serial_cpu[kind].append(cpu)
    html_only = []
    for key in sample["scorecard"]:
        html_only.append(render_one(settings, "scorecard", key, period, formats=("html",))[3])
    counts = {"scorecard": len(contracts), "evidence_pack": len(contracts), "monthly_report": len(areas),
              "lcjb_pack": len(areas) if sample["lcjb_pack"] else 0}
    serial_estimate = sum(counts[k] * sum(v) / len(v) for k, v in serial.items())

    busy_before = machine_cpu_seconds()
    result = render_documents(settings, period, kinds=kinds, workers=args.workers)
    machine_cpu = machine_cpu_seconds() - busy_before
    documents = sum(counts.values())
    files = result.files()
    out = {
        "world": {"areas": len(areas), "contracts": len(contracts), "period": period, "setup_seconds": round(setup_seconds, 1)},
        "documents": documents, "files": files, "workers": result.workers, "cpu_count": os.cpu_count(),
        "wall_seconds": round(result.wall_seconds, 1),
        "index_and_matrices_seconds": round(result.index_seconds, 1),
        "documents_per_s": round(documents / result.wall_seconds, 2),
        "serial_baseline": {
            "seconds_per_document": {k: round(sum(v) / len(v), 2) for k, v in serial.items()},
            "cpu_seconds_per_document": {k: round(sum(v) / len(v), 2) for k, v in serial_cpu.items()},
            "scorecard_html_only_cpu_seconds": round(sum(html_only) / len(html_only), 3),
            "documents_per_s": round(sum(len(v) for v in serial.values()) / sum(sum(v) for v in serial.values()), 2),
            "estimated_seconds_for_all": round(serial_estimate, 1),
        },
        "parallel_seconds_per_document": {k: round(sum(v) / len(v), 2) for k, v in result.task_seconds.items() if v},
        "parallel_cpu_seconds_per_document": {k: round(sum(v) / len(v), 2) for k, v in result.task_cpu_seconds.items() if v},
        "pdf_engine": pdf_engine(),
        "python_cpu_seconds_total": round(sum(sum(v) for v in result.task_cpu_seconds.values()), 1),
        # Everything the machine did during the parallel run (Python workers, browsers, the OS) over its cores:
        # the wall time a perfectly parallel run could reach.
        "machine_cpu_seconds": round(machine_cpu, 1),
        "machine_cpu_seconds_per_document": round(machine_cpu / documents, 3),
        "cpu_bound_wall_estimate_seconds": round(machine_cpu / (os.cpu_count() or 1), 1),
        "speedup_over_serial": round(serial_estimate / result.wall_seconds, 2),
        "target_seconds": TARGET_SECONDS,
        # The target is for the default world (42 areas); on another world this says only whether this run was faster.
        "meets_target": result.wall_seconds < TARGET_SECONDS if len(areas) == 42 else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    results = RESULTS.with_name("reports-without-lcjb.json") if args.without_lcjb else RESULTS
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
