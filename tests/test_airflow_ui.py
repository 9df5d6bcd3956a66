"""The operators' Airflow, as `make airflow` starts it: a real `airflow standalone` on 127.0.0.1 (a random free
port, a throwaway AIRFLOW_HOME, a copy of the small demo home), logins from the simple auth manager's
passwords file, a monthly run triggered through the REST API, and the grid checked in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.airflow_processes import free_port, request, stop_group, token, trigger_and_wait, wait_for
from tests.browser import chromium_page
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SCRIPT = REPO_ROOT / "scripts" / "airflow-local.sh"
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "airflow-grid.png"
PERIOD = "2025-12"
DAG_ID = "cjmonitor_monthly"


@pytest.fixture(scope="module")
def airflow_server(demo_home, tmp_path_factory):
    """`scripts/airflow-local.sh` (what `make airflow` runs) on a random port; the whole process group is killed after."""
    base = tmp_path_factory.mktemp("airflow-ui")
    home = base / "cjmonitor-home"
    (home / "var").mkdir(parents=True)
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, \
            sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CJMONITOR_SMTP"))}
    env.update({"AIRFLOW_HOME": str(base / "airflow"), "AIRFLOW_PORT": str(port), "CJMONITOR_HOME": str(home),
                # Unpausing a cron DAG makes the scheduler start its most recent scheduled run at once; here only
                # the run triggered through the API should run (the same month, so it would double the time).
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})
    log = base / "standalone.log"
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen([str(SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the API server", lambda: request(f"{url}/api/v2/monitor/health")[0] == 200, 240, log)
        passwords = json.loads((base / "airflow" / "passwords.json").read_text())
        yield {"url": url, "passwords": passwords, "log": log, "home": home, "started": started,
               "airflow_home": base / "airflow"}
    finally:
        stop_group(process)


def _token(server, user: str) -> str:
    return token(server["url"], user, server["passwords"][user])


def test_logins_come_from_the_passwords_file_and_roles_differ(airflow_server):
    mode = (airflow_server["airflow_home"] / "passwords.json").stat().st_mode & 0o777
    assert mode == 0o600
    assert set(airflow_server["passwords"]) == {"operator", "viewer", "admin"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        request(f"{airflow_server['url']}/auth/token", method="POST",
                body={"username": "operator", "password": "not-the-password"})
    assert refused.value.code in (401, 403)
    # The viewer reads but may not change anything: not everyone is an admin.
    viewer = _token(airflow_server, "viewer")
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        request(f"{airflow_server['url']}/api/v2/pools/cjmonitor_db", method="PATCH", token=viewer,
                body={"name": "cjmonitor_db", "slots": 50})
    assert forbidden.value.code == 403


def test_operator_triggers_the_monthly_run_and_sees_mapped_tasks_in_the_grid(airflow_server):
    url, log = airflow_server["url"], airflow_server["log"]
    token = _token(airflow_server, "operator")

    # The pool protecting the application database exists with the configured slots.
    status, pool = request(f"{url}/api/v2/pools/cjmonitor_db", token=token)
    assert pool["slots"] == 2

    wait_for("the DAG processor to serialise the monthly DAG",
             lambda: request(f"{url}/api/v2/dags/{DAG_ID}", token=token)[0] == 200, 180, log)
    status, dag = request(f"{url}/api/v2/dags/{DAG_ID}", method="PATCH", body={"is_paused": False}, token=token)
    assert dag["is_paused"] is False
    triggered = time.monotonic()
    run_id = trigger_and_wait(url, token, DAG_ID, {"logical_date": None, "conf": {"period": PERIOD}}, log)
    run_seconds = time.monotonic() - triggered

    _, tis = request(f"{url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=500", token=token)
    # One rendering task per area; each names its documents (every contract's scorecard) in its log.
    areas = [t for t in tis["task_instances"] if t["task_id"] == "render_area"]
    assert len(areas) == 5 and all(t["state"] == "success" for t in areas)
    contracts = sorted(p.stem for p in (airflow_server["home"] / "out" / "scorecards" / PERIOD).glob("*.html"))
    assert len(contracts) >= 20
    logged = ""
    for ti in areas:
        _, body = request(f"{url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/render_area/logs/"
                          f"{ti['try_number']}?map_index={ti['map_index']}&full_content=true", token=token)
        logged += json.dumps(body)
    assert [c for c in contracts if f"scorecards/{PERIOD}/{c}.html" not in logged] == [], \
        "every scorecard is named in its area task's log"
    assert logged.count("monthly_report ") == 5 and logged.count("lcjb_pack ") == 5
    # Each started with the application the LocalExecutor's worker had imported before forking it (cjmonitor/preload.py).
    assert logged.count("application preloaded (") == 5 and logged.count("inherited from process") == 5

    n_providers = sum(t["task_id"] == "ingest_provider" for t in tis["task_instances"])
    n_areas = len(areas)
    assert n_providers >= 5
    with chromium_page(width=1400, height=900) as page:
        page.goto(f"{url}/dags/{DAG_ID}", wait_until="domcontentloaded")
        page.get_by_label("Username").fill("operator")
        page.get_by_label("Password").fill(airflow_server["passwords"]["operator"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/dags/{DAG_ID}**", timeout=60_000)
        try:
            # The grid: one row per task; a mapped one (per provider, area, recipient) is marked "[ ]".
            for task_id, mapped in (("ingest_provider", True), ("derive_kpis", False), ("analyse_outcomes", False),
                                    ("render_area", True), ("render_index", False)):
                label = re.compile(rf"^{task_id}\s*\[\s*\]$" if mapped else rf"^{task_id}$")
                page.get_by_text(label).first.wait_for(timeout=60_000)
            page.wait_for_timeout(2_000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            # A mapped task instance's page names how many instances the task was mapped into.
            for task_id, count in (("ingest_provider", n_providers), ("render_area", n_areas)):
                page.goto(f"{url}/dags/{DAG_ID}/runs/{run_id}/tasks/{task_id}/mapped/0", wait_until="domcontentloaded")
                page.get_by_text(re.compile(rf"Task Instances \[{count}\]")).first.wait_for(timeout=60_000)
        except PlaywrightTimeout:
            page.screenshot(path=str(airflow_server["log"].with_name("failed-page.png")))
            pytest.fail(f"not found on {page.url}; the page says: {page.inner_text('body')[:3000]}")
    elapsed = time.monotonic() - airflow_server["started"]
    print(f"standalone up to grid checked in {elapsed:.0f} s; the monthly run took {run_seconds:.0f} s")
