"""The monthly commissioner report, and the disclosure control it applies."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor.cli import cli
from reports.suppression import SUPPRESSED, suppress_breakdown, suppress_row
from tests.deps import poppler

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
    text = " ".join(poppler(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "Greater Manchester: commissioned services, December 2025" in text
    assert "Exceptions needing a decision" in text and "Gateway Resettlement Partnership" in text
    assert "Settled accommodation on the first night" in text
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    assert {"dashboard", "exceptions", "changes", "outcomes", "by_sex", "by_age_band"} <= set(sheets)
    assert len(sheets["dashboard"]) == 4
    by_sex = sheets["by_sex"]
    numeric = by_sex[by_sex["completed"] != SUPPRESSED]
    assert (pd.to_numeric(numeric["completed"]) >= 5).all(), "no small count is published"


def test_report_breakdowns_and_value_view_match_the_analysts_view(report):
    from cjmonitor.db import session_scope
    from cjmonitor.settings import get_settings
    from contracts.benchmark import breakdowns
    from contracts.models import Contract
    from contracts.value import value_view

    home, paths = report
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    assert {"by_young_adult", "by_ethnicity_group", "by_care_leaver"} <= set(sheets)
    settings = get_settings(home)
    with session_scope(settings) as session:
        crc = [c.id for c in session.exec(select(Contract).where(Contract.area_code == AREA, Contract.service_type == "crc")).all()]
        table = breakdowns(session, "crc_orders_completed", PERIOD, alpha=settings.alpha, contract_ids=crc)
        value = value_view(session, unit_cost_gbp=settings.reoffence_unit_cost_gbp, area_code=AREA)
    leavers = sheets["by_care_leaver"].set_index("care_leaver")
    expected = table[(table["dimension"] == "care_leaver")].set_index("group")
    for group in ("Care leaver", "Not a care leaver"):
        if leavers.at[group, "completed"] != SUPPRESSED:
            assert float(leavers.at[group, "completed"]) == expected.at[group, "numerator"]
            assert float(leavers.at[group, "ended"]) == expected.at[group, "denominator"]
    assert float(leavers.at["Total", "ended"]) == expected["denominator"].sum()
    text = " ".join(poppler(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "by ethnic group" in text and "by care leaver" in text and "young adults (18-24)" in text
    assert value["lines"] and "Reoffences avoided (an estimate)" in text
    assert f"among {value['lines'][0]['n_matched']} people served" in text


def test_report_bad_input(report):
    home, _paths = report
    runner = CliRunner()
    assert "no area 'X'" in runner.invoke(cli, ["report", "monthly", "--home", str(home), "--area", "X", "--period", PERIOD]).output
    none = runner.invoke(cli, ["report", "monthly", "--home", str(home), "--area", AREA, "--period", "2030-01"])
    assert none.exit_code == 2 and "no judged KPIs for 2030-01" in none.output
