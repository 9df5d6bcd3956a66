"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

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


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A home where `cjmonitor demo` has run on a small world (5 areas, 36 months)."""
    from click.testing import CliRunner

    from cjmonitor.cli import cli

    home = tmp_path_factory.mktemp("demo-home")
    result = CliRunner().invoke(cli, ["demo", "--home", str(home), "--areas", "5", "--months", "36", "--seed", "7", "--json"])
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture(scope="session")
def demo_summary(demo_home) -> dict:
    import json

    return json.loads((demo_home / "var" / "truth.json").read_text())


@pytest.fixture
def demo_settings(demo_home):
    from cjmonitor.settings import get_settings

    return get_settings(demo_home)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata database (SQLite) in the suite's throwaway AIRFLOW_HOME."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
