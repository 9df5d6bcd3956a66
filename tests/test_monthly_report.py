"""The monthly commissioner report, and the disclosure control it applies."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from reports.suppression import SUPPRESSED, suppress_breakdown, suppress_row

AREA, PERIOD = "E23000005", "2025-12"


def test_primary_and_secondary_suppression():
    assert suppress_row([12, 3, 40]) == [SUPPRESSED, SUPPRESSED, 40]  # 3 hidden, and 12 so the total cannot reveal it
    assert suppress_row([2, 3, 40]) == [SUPPRESSED, SUPPRESSED, 40]  # two hidden cells protect each other
    assert suppress_row([0, 30, 40]) == [0, 30, 40]
    frame = pd.DataFrame({"group": ["F", "M", "X"], "completed": [3, 70, 20], "ended": [4, 90, 25],
                          "rate": [0.75, 0.78, 0.8]})
    shown = suppress_breakdown(frame, "completed", "ended")
    assert list(shown["completed"]) == [SUPPRESSED, 70, SUPPRESSED]
    assert list(shown["rate"]) == [SUPPRESSED, 0.78, SUPPRESSED]


@pytest.fixture(scope="module")
def report(demo_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("monthly-home")
    (home / "var").mkdir()
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    result = CliRunner().invoke(cli, ["report", "monthly", "--home", str(home), "--area", AREA, "--period", PERIOD, "--json"])
    assert result.exit_code == 0, result.output
    return home, json.loads(result.output)


def test_report_names_the_failing_provider_as_an_exception(report, demo_summary):
    _home, paths = report
    text = " ".join(subprocess.run(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "Greater Manchester: commissioned services, December 2025" in text
    assert "Exceptions needing a decision" in text and "Gateway Resettlement Partnership" in text
    assert "Settled accommodation on the first night" in text
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    assert {"dashboard", "exceptions", "changes", "outcomes", "by_sex", "by_age_band"} <= set(sheets)
    assert len(sheets["dashboard"]) == 4
    by_sex = sheets["by_sex"]
    numeric = by_sex[by_sex["completed"] != SUPPRESSED]
    assert (pd.to_numeric(numeric["completed"]) >= 5).all(), "no small count is published"


def test_report_bad_input(report):
    home, _paths = report
    runner = CliRunner()
    assert "no area 'X'" in runner.invoke(cli, ["report", "monthly", "--home", str(home), "--area", "X", "--period", PERIOD]).output
    none = runner.invoke(cli, ["report", "monthly", "--home", str(home), "--area", AREA, "--period", "2030-01"])
    assert none.exit_code == 2 and "no judged KPIs for 2030-01" in none.output
