"""Warm task processes: import the application once in the long-lived Airflow process that forks them.

Under the scheduler, every task runs in a fresh process: the LocalExecutor's worker (forked from the scheduler
when it starts) or a Celery worker's pool process forks a child per task. Each child then imported pandas,
statsmodels, SQLAlchemy, the report stack and the application again, about 2 to 3 CPU-seconds a task
(README, Scaling out: per-task overhead). Imported once in the scheduler or the Celery worker before it forks,
the modules are already in every task process, shared copy-on-write.

``config/airflow/airflow_local_settings.py`` (which Airflow imports in each of its processes while it
initialises; the local script puts it on the path) calls :func:`preload_for` with the command line. Only
``airflow scheduler`` and ``airflow celery worker`` preload, so the API server, the DAG processor and CLI
commands start as fast as before; and they preload just before their first fork (``os.register_at_fork``),
when Airflow has finished initialising. ``CJMONITOR_PRELOAD=0`` turns it off. Nothing here opens a database, a
file or a browser: only imports, which are safe to fork. A module that fails to import is logged as a warning
and the tasks import it themselves (as without preloading), where the error shows in the task that needs it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time

log = logging.getLogger(__name__)

# What the monthly, returns and evidence-pack tasks import (cjmonitor.pipeline imports most of the steps' code
# only inside the step functions, to keep the CLI's start-up short), and the Airflow task runner each child runs.
MODULES = (
    "pandas", "numpy", "scipy.stats", "sqlalchemy", "sqlmodel", "statsmodels.api", "jinja2",
    "cjmonitor.pipeline", "cjmonitor.documents", "cjmonitor.distribute", "cjmonitor.migrate",
    "contracts.register", "contracts.sources", "contracts.declared", "contracts.status", "contracts.incremental",
    "contracts.judge", "contracts.fairness", "contracts.analysis",
    "reports.errors", "reports.evidence", "reports.monthly_report", "reports.lcjb", "reports.scorecard",
    "reports.xlsx", "reports.pdf", "playwright.sync_api",
    "airflow.sdk", "airflow.sdk.execution_time.task_runner",
)

_done: dict | None = None


def forks_tasks(argv: list[str]) -> bool:
    """Whether this Airflow command is a long-lived process that forks task processes."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    return words[:1] == ["scheduler"] or words[:2] == ["celery", "worker"]


def preload(modules: tuple[str, ...] = MODULES) -> dict:
    """Import ``modules`` into this process (once); returns what was done, as :func:`status` reports it."""
    global _done
    if _done is None:
        started, before, failed = time.perf_counter(), len(sys.modules), []
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001  (reported; the task that needs it imports it and fails there)
                failed.append(name)
                log.warning("cjmonitor preload: %s did not import (%s: %s); tasks will import it themselves",
                            name, type(exc).__name__, exc)
        _done = {"pid": os.getpid(), "modules": len(sys.modules) - before, "failed": failed,
                 "seconds": round(time.perf_counter() - started, 2)}
        log.warning("cjmonitor preloaded %d modules in %.1f s for the task processes this process forks",
                    _done["modules"], _done["seconds"])
    return _done


def enabled() -> bool:
    return os.environ.get("CJMONITOR_PRELOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def preload_for(argv: list[str] | None = None) -> bool:
    """In the scheduler or a Celery worker (``argv``, default ``sys.argv``), with preloading on: preload just
    before this process first forks. Returns whether it will."""
    if not enabled() or not forks_tasks(sys.argv if argv is None else argv):
        return False
    os.register_at_fork(before=preload)  # runs before every fork; imports on the first only
    return True


def status() -> str:
    """One line for a task's log: whether this process inherited the preloaded application, and from which."""
    if _done is None:
        return "application not preloaded: this task process imports it itself (CJMONITOR_PRELOAD, README)"
    inherited = "inherited from" if _done["pid"] != os.getpid() else "imported by"
    return (f"application preloaded ({_done['modules']} modules, {_done['seconds']} s) {inherited} "
            f"process {_done['pid']}")
