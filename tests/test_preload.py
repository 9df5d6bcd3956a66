"""Warm task processes (cjmonitor/preload.py): the scheduler and Celery workers import the application once,
just before they fork, through Airflow's own local-settings hook (config/airflow/airflow_local_settings.py);
every other Airflow command starts without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cjmonitor import preload
from tests.conftest import REPO_ROOT

# Imports airflow as the named command would (Airflow imports the local settings while it initialises), then
# forks the way the LocalExecutor starts its workers and reports what the child already has.
PROBE = r"""
import json, multiprocessing, os, sys
sys.argv = ["airflow", *json.loads(sys.argv[1])]
import airflow.settings
parent_had = "statsmodels.api" in sys.modules
def child(queue):
    from cjmonitor import preload
    queue.put({"heavy": sorted(m for m in ("pandas", "statsmodels.api", "cjmonitor.documents", "reports.pdf",
                                          "playwright.sync_api") if m in sys.modules),
               "status": preload.status()})
queue = multiprocessing.get_context("fork").SimpleQueue()
process = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
process.start()
process.join()
print(json.dumps({"parent_before_fork": parent_had, **queue.get()}))
"""


def _probe(tmp_path, command: list[str], **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CJMONITOR_PRELOAD"))}
    environment.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONPATH": str(REPO_ROOT / "config" / "airflow"),
                        **env})
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(command)], env=environment, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [["scheduler", "--skip-serve-logs"],
                                     ["celery", "worker", "--celery-hostname", "w1@%h", "--concurrency", "1"]])
def test_the_forking_processes_hand_their_tasks_the_application_already_imported(tmp_path, command):
    seen = _probe(tmp_path, command)
    # Not at start-up (Airflow is still initialising then): just before the first fork.
    assert seen["parent_before_fork"] is False
    assert seen["heavy"] == ["cjmonitor.documents", "pandas", "playwright.sync_api", "reports.pdf", "statsmodels.api"]
    assert seen["status"].startswith("application preloaded (") and "inherited from process" in seen["status"]


@pytest.mark.parametrize("command", [["api-server"], ["dag-processor"], ["dags", "test", "cjmonitor_monthly"]])
def test_other_airflow_commands_start_without_it(tmp_path, command):
    seen = _probe(tmp_path, command)
    assert seen["heavy"] == [] and seen["status"].startswith("application not preloaded")


def test_cjmonitor_preload_0_turns_it_off(tmp_path):
    seen = _probe(tmp_path, ["scheduler"], CJMONITOR_PRELOAD="0")
    assert seen["heavy"] == [] and seen["status"].startswith("application not preloaded")


def test_every_module_listed_imports_and_a_failure_is_reported_not_fatal(caplog, capfd, monkeypatch):
    # Airflow's own modules are left to the probes above: importing Airflow here would hand this test process's
    # logging to structlog.
    modules = tuple(m for m in preload.MODULES if not m.startswith("airflow"))
    monkeypatch.setattr(preload, "_done", None)
    done = preload.preload((*modules, "cjmonitor.no_such_module"))
    assert done["failed"] == ["cjmonitor.no_such_module"]
    captured = capfd.readouterr()  # (structlog's console, where an earlier test in this process imported Airflow)
    assert "cjmonitor.no_such_module did not import (ModuleNotFoundError" in caplog.text + captured.out + captured.err
    assert all(name in sys.modules for name in modules)


def test_the_command_line_decides():
    assert preload.forks_tasks(["airflow", "scheduler", "--skip-serve-logs"])
    assert preload.forks_tasks(["airflow", "celery", "worker", "--concurrency", "1"])
    for argv in (["airflow", "celery", "list-workers"], ["airflow", "api-server"], ["airflow"],
                 ["airflow", "tasks", "test", "cjmonitor_monthly", "scheduler"]):
        assert not preload.forks_tasks(argv), argv
