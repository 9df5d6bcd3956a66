"""Fixtures shared by the whole suite."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The longest modules first (seconds in the full suite on two idle cores, 2026-12-04; the top 60 durations of
# --durations=60, so a module's short tests are left out), so that pytest-xdist, which hands whole modules to its
# workers in collection order (--dist loadfile), starts them early and fills the end with short ones, instead of
# starting test_views last and leaving the other worker idle. Only the order changes; a stale figure costs time,
# never a test. The rest keep their order after these.
LONGEST_MODULES = {
    "tests/test_airflow_celery.py": 119, "tests/test_rerun.py": 99, "tests/test_airflow_ui.py": 86,
    "tests/outcomes/test_groups_simulation.py": 58, "tests/test_views.py": 57, "tests/test_cli.py": 45,
    "tests/test_postgres.py": 44, "tests/test_incremental.py": 40, "tests/test_airflow_no_hang.py": 32,
    "tests/test_distribute.py": 32, "tests/outcomes/test_its.py": 30, "tests/test_dags.py": 28,
    "tests/test_accessibility.py": 24, "tests/test_concurrency.py": 20, "tests/test_second_office.py": 17,
}


def pytest_collection_modifyitems(items):
    def weight(item) -> int:
        return LONGEST_MODULES.get(Path(item.path).relative_to(REPO_ROOT).as_posix(), 0)
    items.sort(key=weight, reverse=True)  # stable: each module's tests stay together and in their order

# Airflow reads its configuration when first imported: give the suite its own throwaway home.
if "AIRFLOW_HOME" not in os.environ or os.environ.get("CJMONITOR_TEST_KEEP_AIRFLOW_HOME") != "1":
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="cjmonitor-airflow-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


def shared_data_dir() -> Path:
    """The published reference data sets (``../shared/data`` beside the clone)."""
    path = Path(os.environ.get("CJMONITOR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise RuntimeError(
            f"reference data not found at {path}: set CJMONITOR_SHARED_DATA to the shared/data folder"
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


SMALL_WORLD = {"areas": 5, "months": 36, "seed": 7}

# ---------------------------------------------------------------------------------------------------------------
# The demo home: built ONCE per run (shared by every pytest-xdist worker) and READ-ONLY.
#
# `demo_home` is a home where `cjmonitor demo` ran on SMALL_WORLD. Read from it as much as you like (CLI commands
# that only read, files under out/, the database through `demo_settings`). Never write to it: after each test
# that uses it, a stat of every file is compared with the one taken when it was built, and the test FAILS if
# anything changed (a row written, a document re-rendered, a file added); at the end of the session the
# database's content is checked again, table by table.
#
# A test that needs to change things gets its own copy (about 0.2 s):
#
#     def test_something(writable_demo_home):          # a Path: a full copy of the demo home in tmp_path
#         CliRunner().invoke(cli, ["ingest", "--home", str(writable_demo_home), ...])
#
# or, for the database only, `demo_db_copy(home)` (the sqlite3 backup API) into a home of its own; or the
# `migrated_home` fixture for an empty home whose database is already at the latest migration (a copy of one
# template migrated once per run, instead of running Alembic again).
# ---------------------------------------------------------------------------------------------------------------


def _shared_root(tmp_path_factory) -> Path:
    """A folder shared by every xdist worker of this run (the parent of each worker's basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _build_lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once per test run under a lock, shared by every xdist worker; the folder."""
    root = _shared_root(tmp_path_factory)
    folder = root / name
    done = root / f"{name}.built"
    with _build_lock(root / f"{name}.lock"):
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            build(folder)
            done.write_text("ok\n")
    return folder


def _stat_fingerprint(home: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file; SQLite's shared-memory index is left out, an empty write-ahead log too."""
    found = {}
    for path in home.rglob("*"):
        if path.is_file() and not path.name.endswith("-shm"):
            stat = path.stat()
            if path.name.endswith("-wal") and stat.st_size == 0:
                continue
            found[str(path.relative_to(home))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _describe_changes(before: dict, after: dict) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
             for label, items in (("added", added), ("removed", removed), ("changed", changed)) if items]
    return "; ".join(parts)


def _build_demo_home(home: Path) -> None:
    from click.testing import CliRunner

    from cjmonitor.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--home", str(home), "--areas", str(SMALL_WORLD["areas"]),
                                      "--months", str(SMALL_WORLD["months"]), "--seed", str(SMALL_WORLD["seed"]),
                                      "--json"])
    assert result.exit_code == 0, result.output
    (home / "demo-summary.json").write_text(result.stdout)  # what `cjmonitor demo --json` printed (test_end_to_end)
    from cjmonitor.settings import get_settings

    get_settings(home).pseudonymisation_key()  # written now, so reading it later changes nothing
    from cjmonitor.db import dispose_engines

    dispose_engines()  # checkpoint and close the write-ahead log: the database file is final


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A home where `cjmonitor demo` has run on a small world (5 areas, 36 months). READ-ONLY: see above."""
    home = built_once(tmp_path_factory, "demo-home", _build_demo_home)
    database = home / "var" / "cjmonitor.db"
    _DEMO_GUARD["home"] = home
    _DEMO_GUARD["stat"] = _stat_fingerprint(home)
    digest = hashlib.sha256(database.read_bytes()).hexdigest()
    yield home
    from cjmonitor.db import dispose_engines

    dispose_engines()  # a write still in the write-ahead log is checkpointed into the file now
    wal = database.with_name(database.name + "-wal")
    assert hashlib.sha256(database.read_bytes()).hexdigest() == digest and not (wal.exists() and wal.stat().st_size), \
        "a test wrote to the read-only demo home's database: use the writable_demo_home fixture (tests/conftest.py)"


_DEMO_GUARD: dict = {}


@pytest.fixture(autouse=True)
def _demo_home_stays_read_only(request):
    """Fails the test that changed a file of the shared demo home (it should have used writable_demo_home)."""
    yield
    if "demo_home" not in request.fixturenames or "home" not in _DEMO_GUARD:
        return
    after = _stat_fingerprint(_DEMO_GUARD["home"])
    if after != _DEMO_GUARD["stat"]:
        changes = _describe_changes(_DEMO_GUARD["stat"], after)
        _DEMO_GUARD["stat"] = after  # report it once, against the test that did it
        pytest.fail(f"{request.node.nodeid} changed the read-only demo home ({changes}): use the "
                    "writable_demo_home fixture for a copy (tests/conftest.py)", pytrace=False)


def demo_db_copy(source_home: Path, target_home: Path) -> Path:
    """Copy the database of ``source_home`` into ``target_home``/var (sqlite3 backup API); the copy's path."""
    target = Path(target_home) / "var" / "cjmonitor.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(Path(source_home) / "var" / "cjmonitor.db") as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return target


def copy_home(source_home: Path, target_home: Path) -> Path:
    """A full, independent copy of a home (files copied, the database through the backup API)."""
    target_home = Path(target_home)
    shutil.copytree(source_home, target_home, ignore=shutil.ignore_patterns("cjmonitor.db", "cjmonitor.db-*"),
                    dirs_exist_ok=True)
    demo_db_copy(source_home, target_home)
    return target_home


@pytest.fixture
def writable_demo_home(demo_home, tmp_path) -> Path:
    """A copy of the demo home that the test may change freely."""
    return copy_home(demo_home, tmp_path / "demo-home")


@pytest.fixture(scope="session")
def demo_summary(demo_home) -> dict:
    import json

    return json.loads((demo_home / "var" / "truth.json").read_text())


@pytest.fixture
def demo_settings(demo_home):
    from cjmonitor.settings import get_settings

    return get_settings(demo_home)


def _build_template_db(folder: Path) -> None:
    from cjmonitor import pipeline
    from cjmonitor.db import dispose_engines
    from cjmonitor.settings import get_settings

    pipeline.upgrade_db(get_settings(folder))
    dispose_engines()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An empty database migrated to the latest revision once per run (copy it; never open it for writing)."""
    return built_once(tmp_path_factory, "template-db", _build_template_db) / "var" / "cjmonitor.db"


@pytest.fixture
def migrated_home(template_db, tmp_path) -> Path:
    """An empty home whose database is at the latest migration (a copy of the template: no Alembic run)."""
    home = tmp_path / "home"
    demo_db_copy(template_db.parent.parent, home)
    return home


# A session cache of generated worlds: the same (seed, areas, months, start, scale) is generated once per worker.
_WORLDS: dict[tuple, Path] = {}


@pytest.fixture(scope="session")
def generated_world(tmp_path_factory):
    """``generated_world(seed=.., areas=.., months=..)``: a folder with drop/ and truth.json of that world, made
    once per run and shared; copy the files before changing them (``copy_world``)."""
    def get(*, seed: int, areas: int = 5, months: int = 36, start: str = "2023-01", scale: float = 1.0) -> Path:
        key = (seed, areas, months, start, scale)
        if key not in _WORLDS:
            def build(folder: Path) -> None:
                from cjmonitor.demo import generate_world

                generate_world(folder / "drop", folder / "truth.json", seed=seed, areas=areas, months=months,
                               start=start, scale=scale)
            _WORLDS[key] = built_once(tmp_path_factory, "world-" + "-".join(map(str, key)), build)
        return _WORLDS[key]
    return get


def copy_world(world_folder: Path, drop_dir: Path, truth_path: Path | None = None) -> None:
    """Copy a cached world's return files (with their received times) into ``drop_dir``."""
    shutil.copytree(world_folder / "drop", drop_dir, dirs_exist_ok=True)
    if truth_path is not None:
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(world_folder / "truth.json", truth_path)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata database (SQLite) in the suite's throwaway AIRFLOW_HOME."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
