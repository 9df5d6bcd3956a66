"""Helpers for the tests that run real Airflow processes (tests/test_airflow_ui.py, test_airflow_celery.py) and
PostgreSQL databases for Airflow's metadata and the application (the Celery test):
a free loopback port, the REST API, waiting with a log tail on timeout, and stopping a whole process group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.deps import need_postgres_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, *, method: str = "GET", body: dict | None = None, token: str | None = None):
    """(status, decoded JSON) of one REST call."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def wait_for(what: str, probe, timeout: float, log: Path | list[Path], interval: float = 2.0,
             processes: Sequence[subprocess.Popen] = (), fail=None):
    """``probe()``'s first truthy result. The test fails, with the tail of each log, after ``timeout`` s, or at once
    when one of ``processes`` has ended. ``fail`` (default ``pytest.fail``) takes the message: a benchmark, which
    runs outside pytest, passes ``sys.exit``."""
    fail = fail or pytest.fail
    logs = [log] if isinstance(log, Path) else log

    def tails() -> str:
        return "\n".join(f"--- {path.name}:\n{path.read_text(errors='replace')[-4000:]}" for path in logs if path.exists())
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        ended = [process for process in processes if process.poll() is not None]
        if ended:
            fail(f"waiting for {what}: {ended[0].args} ended (exit {ended[0].returncode}); log tails:\n{tails()}")
        time.sleep(interval)
    fail(f"timed out after {timeout:.0f} s waiting for {what} (last error {last!r}); log tails:\n{tails()}")


def trigger_and_wait(url: str, token: str, dag_id: str, body: dict, logs: Path | list[Path],
                     processes: Sequence[subprocess.Popen] = (), timeout: float = 1500) -> str:
    """Trigger a run of ``dag_id`` with ``body`` through the REST API and wait for it to succeed; its run id. The
    test fails, naming the failed task instances, as soon as the run fails."""
    status, run = request(f"{url}/api/v2/dags/{dag_id}/dagRuns", method="POST", token=token, body=body)
    assert status in (200, 201), run
    runs = f"{url}/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"

    def finished() -> bool:
        _, current = request(runs, token=token)
        if current["state"] == "failed":
            _, tis = request(f"{runs}/taskInstances?limit=200", token=token)
            failed = [(t["task_id"], t.get("map_index")) for t in tis["task_instances"] if t["state"] == "failed"]
            pytest.fail(f"the {dag_id} run failed: {failed}")
        return current["state"] == "success"
    # A few minutes on two idle cores; far more when the machine is shared (the full suite runs beside it).
    wait_for(f"the {dag_id} run to succeed", finished, timeout, logs, interval=3, processes=processes)
    return run["dag_run_id"]


def token(url: str, user: str, password: str) -> str:
    """A REST API token for one of the simple auth manager's users."""
    status, body = request(f"{url}/auth/token", method="POST", body={"username": user, "password": password})
    assert status in (200, 201)
    return body["access_token"]


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (started with ``start_new_session=True``: the process and every child,
    e.g. API server, scheduler, DAG processor and task processes), then SIGKILL whatever is still there after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)
    process.poll()


_PREFIX = {"airflow": "af", "app": "cj"}


@contextlib.contextmanager
def postgres_databases(*keys: str):
    """One fresh database per key (e.g. "airflow", "app") on the test server: {key: URL}; each is dropped (WITH
    FORCE) afterwards."""
    from sqlalchemy import create_engine, text

    from cjmonitor.db import dispose_engines

    url = need_postgres_url()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    names = {key: f"{_PREFIX.get(key, key[:2])}_{uuid.uuid4().hex[:8]}" for key in keys}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = url.rsplit("/", 1)[0]
    try:
        yield {key: f"{base}/{name}" for key, name in names.items()}
    finally:
        dispose_engines()
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
