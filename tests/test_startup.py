"""Start-up stays light: `cjmonitor --help` must not pay for pandas, scipy and statsmodels.

Every command, test subprocess and Airflow task process imports ``cjmonitor.cli``; the heavy stack is
imported inside the commands that use it (see the top of cjmonitor/cli/__init__.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("pandas", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "sqlmodel", "sqlalchemy",
         "weasyprint", "playwright", "openpyxl", "xlsxwriter", "alembic", "airflow")
DAGS = Path(__file__).resolve().parent.parent / "dags"


def _imported_after(code: str) -> list[str]:
    """The heavy top-level packages loaded by running ``code`` in a fresh interpreter."""
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cli_module_imports_none_of_the_heavy_stack():
    assert _imported_after("import cjmonitor.cli") == []


def test_cli_help_imports_none_of_the_heavy_stack():
    # --help builds every command's help text: a command module importing pandas at the top shows up here.
    code = ("from click.testing import CliRunner\nfrom cjmonitor.cli import cli\n"
            "for args in (['--help'], ['returns', '--help'], ['analyse', '--help'], ['db', '--help']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args")
    assert _imported_after(code) == []


def test_settings_and_errors_are_light():
    assert _imported_after("import cjmonitor.settings, cjmonitor.errors") == []
    # the schema check that light commands use needs Alembic and SQLAlchemy, not pandas
    assert _imported_after("import cjmonitor.migrate") == ["alembic", "sqlalchemy"]


def test_dag_files_import_no_project_stack_at_parse_time():
    # The DAG processor parses these files again and again: pandas and the statistics stack belong inside tasks.
    dag_files = sorted(str(path) for path in DAGS.glob("*.py"))
    assert dag_files
    heavy = set(_imported_after(f"import runpy\nfor path in {dag_files!r}:\n    runpy.run_path(path)"))
    assert not heavy & {"pandas", "scipy", "statsmodels", "matplotlib", "weasyprint", "playwright"}, sorted(heavy)


def test_version_and_help_start_quickly():
    # A generous bound (the target is under 0.5 s): it catches a heavy import, not noise on a busy machine.
    for args in (["--version"], ["--help"]):
        started = time.perf_counter()
        result = subprocess.run([str(Path(sys.executable).parent / "cjmonitor"), *args], capture_output=True,
                                text=True, timeout=120)
        elapsed = time.perf_counter() - started
        assert result.returncode == 0, result.stderr[-2000:]
        assert elapsed < 3.0, f"cjmonitor {' '.join(args)} took {elapsed:.1f} s"
