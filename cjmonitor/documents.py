"""Every document of a period, rendered across processes: scorecards, evidence packs, monthly reports, the index.

Each document is one task with its own database session in a worker process (``ProcessPoolExecutor``);
a task writes its files and records them as artifacts in a short transaction at the end (no write lock is
held while a PDF renders, so SQLite's single writer is not a bottleneck). The index is written last, by
the parent, once every document it links exists. Contract and area lists come from the database, so
``render_documents`` covers the whole world whatever its size.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from cjmonitor import progress
from cjmonitor.settings import Settings

log = logging.getLogger(__name__)
KINDS = ("scorecard", "evidence_pack", "monthly_report", "lcjb_pack")
AREA_KINDS = ("monthly_report", "lcjb_pack")
# The order a run queues its documents in. Scorecards first: each writes its view beside it (JSON), and an area's
# monthly report takes its matrix rows from those views instead of computing them again (queued before the
# scorecards, a monthly report cost 0.66 CPU-s instead of about 0.36). The LCJB packs, the longest, come next, and
# short tasks last, so that the cores stay busy to the end (queued last, the LCJB packs left one core idle).
QUEUE_ORDER = ("scorecard", "lcjb_pack", "evidence_pack", "monthly_report")


@dataclass(frozen=True)
class RenderResult:
    """What was written: paths per kind, wall and CPU seconds per task, the wall time and the number of processes."""

    period: str
    documents: dict[str, list[str]] = field(default_factory=dict)
    task_seconds: dict[str, list[float]] = field(default_factory=dict)
    task_cpu_seconds: dict[str, list[float]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    workers: int = 1
    index: str = ""
    index_seconds: float = 0.0  # the index page with the area and national matrices, after the documents

    def files(self) -> int:
        return sum(len(paths) for paths in self.documents.values())

    def to_dict(self) -> dict:
        return {"period": self.period, "documents": self.documents, "files": self.files(), "workers": self.workers,
                "wall_seconds": round(self.wall_seconds, 2), "index": self.index,
                "task_seconds": {k: round(sum(v), 2) for k, v in self.task_seconds.items()},
                "task_cpu_seconds": {k: round(sum(v), 2) for k, v in self.task_cpu_seconds.items()}}


# Results every document of one rendering run shares (each measure's funnel across all areas), kept per worker
# process for the life of its pool, so never across runs; None outside a pool.
_run_cache: dict | None = None


def _worker_start() -> None:
    global _run_cache
    # A forked worker must not reuse the parent's pooled database connections.
    from cjmonitor.db import dispose_engines

    dispose_engines()
    _run_cache = {}


def default_workers() -> int:
    """Processes to render with: one per core, plus one when Chromium prints the PDFs (a worker waiting on its
    browser leaves its core to the browser, so one more worker keeps both cores busy: 157 s against 166 s for
    the default world's documents on two cores)."""
    from reports.pdf import engine

    cores = os.cpu_count() or 1
    return cores + 1 if engine() == "chromium" else cores


def render_one(settings: Settings, kind: str, key: str, period: str,
               formats: tuple[str, ...] = ("html", "pdf", "xlsx"),
               cache: dict | None = None) -> tuple[str, list[str], float, float]:
    """Render one document (``kind`` of contract or area ``key``) in its own session; returns its kind, its files,
    and the wall and CPU seconds it took (this process's CPU time, which does not depend on what else the machine
    is doing; a PDF engine's own processes are not in it). ``cache``: results shared by one run's documents."""
    cache = cache if cache is not None else _run_cache
    from cjmonitor.db import session_scope
    from cjmonitor.state import code_version
    from contracts.fairness import save_threshold_store, use_threshold_store

    started, cpu = time.perf_counter(), time.process_time()
    use_threshold_store(settings.threshold_cache_path)  # thresholds the judge step (or another document) simulated
    version = code_version()
    with session_scope(settings) as session:
        if kind == "scorecard":
            from reports.scorecard import render_scorecard

            html = render_scorecard(session, settings.out_dir, key, period, alpha=settings.alpha, code_version=version,
                                    formats=formats)
            paths = [str(html.with_suffix(f".{f}")) for f in formats]
        elif kind == "evidence_pack":
            from reports.evidence import render_pack

            funnels = cache.setdefault("funnels", {}) if cache is not None else None
            paths = [str(p) for p in render_pack(session, settings.out_dir, key, period, alpha=settings.alpha,
                                                 code_version=version, funnels=funnels).values()]
        elif kind == "monthly_report":
            from reports.monthly_report import render_monthly_report

            paths = [str(p) for p in render_monthly_report(session, settings.out_dir, key, period, alpha=settings.alpha,
                                                           code_version=version,
                                                           threshold=settings.suppression_threshold,
                                                           unit_cost_gbp=settings.reoffence_unit_cost_gbp).values()]
        elif kind == "lcjb_pack":
            from reports.lcjb import render_lcjb_pack
            from reports.system_index import save_index_cache, use_index_cache

            # The system measures are read and indexed once per home and code version (reports.system_index,
            # kept in var/cache), not per process: each rendering task under Airflow is a process of its own.
            use_index_cache(settings.threshold_cache_path.parent)
            try:
                paths = [str(p) for p in render_lcjb_pack(session, settings.out_dir, key, period, code_version=version,
                                                          threshold=settings.suppression_threshold).values()]
                save_index_cache()
            finally:
                use_index_cache(None)
        else:
            raise ValueError(f"unknown document kind {kind!r}: one of {', '.join(KINDS)}")
    save_threshold_store()
    return kind, paths, time.perf_counter() - started, time.process_time() - cpu


def render_documents(settings: Settings, period: str | None = None, *, kinds: tuple[str, ...] = KINDS,
                     workers: int | None = None, contracts: list[str] | None = None,
                     areas: list[str] | None = None) -> RenderResult:
    """Render ``kinds`` for every (or the named) contract and area for ``period``, then the index.

    ``workers``: processes to use (default: ``default_workers()``; 1 renders in this process, serially).
    """
    from cjmonitor import state

    period = period or state.latest_period(settings)
    contracts = contracts if contracts is not None else state.contract_ids(settings)
    areas = areas if areas is not None else state.area_codes(settings)
    # In QUEUE_ORDER (see there); the results are sorted, so the order changes no output.
    ordered = sorted(kinds, key=lambda kind: QUEUE_ORDER.index(kind) if kind in QUEUE_ORDER else len(QUEUE_ORDER))
    tasks = [(kind, key) for kind in ordered for key in (areas if kind in AREA_KINDS else contracts)]
    workers = max(1, workers or default_workers())
    documents: dict[str, list[str]] = {kind: [] for kind in kinds}
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    started = time.perf_counter()
    names = {"scorecard": "scorecards", "evidence_pack": "evidence packs", "monthly_report": "monthly reports",
             "lcjb_pack": "LCJB packs"}
    label = "Rendering " + ", ".join(names.get(kind, kind) for kind in kinds)
    if workers == 1:
        cache: dict = {}
        for kind, key in progress.track(tasks, label):
            _kind, paths, took, used = render_one(settings, kind, key, period, cache=cache)
            documents[kind] += paths
            seconds[kind].append(took)
            cpu[kind].append(used)
    else:
        from cjmonitor.db import dispose_engines

        dispose_engines()  # no pooled connection is inherited by the forked workers
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_start) as pool:
            futures = {pool.submit(render_one, settings, kind, key, period): (kind, key) for kind, key in tasks}
            for future in progress.track(as_completed(futures), label, total=len(futures)):
                kind, paths, took, used = future.result()
                documents[kind] += paths
                seconds[kind].append(took)
                cpu[kind].append(used)
    index_started = time.perf_counter()
    index = render_index_page(settings, period)
    wall = time.perf_counter() - started
    index_seconds = time.perf_counter() - index_started
    log.info("rendered %d documents for %s in %.1f s with %d processes", sum(map(len, documents.values())), period, wall, workers)
    return RenderResult(period=period, documents={k: sorted(v) for k, v in documents.items()}, task_seconds=seconds,
                        task_cpu_seconds=cpu, wall_seconds=wall, workers=workers, index=index,
                        index_seconds=index_seconds)


def render_index_page(settings: Settings, period: str) -> str:
    """The front page for ``period`` (reports.scorecard.render_index keeps ``index.html`` on the latest month
    when ``period`` is a backfill of an earlier one, and writes that month's ``index-YYYY-MM.html``)."""
    from cjmonitor.db import session_scope
    from cjmonitor.state import code_version, keep_creation_times
    from contracts.fairness import save_threshold_store, use_threshold_store
    from contracts.models import Artifact
    from reports.scorecard import render_index

    use_threshold_store(settings.threshold_cache_path)
    with session_scope(settings) as session, keep_creation_times(session, Artifact):
        index = str(render_index(session, settings.out_dir, period, code_version=code_version()))
    save_threshold_store()
    return index
