"""The command line: help everywhere, clean errors and non-zero exits for user mistakes."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *list(_commands(cli))], ids=lambda p: " ".join(p) or "cjmonitor")
def test_help_everywhere(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_render_before_anything_is_loaded_is_a_clean_error(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--home", str(tmp_path)]).exit_code == 0
    result = runner.invoke(cli, ["render", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "no judged KPI values yet" in result.output
    assert "Traceback" not in result.output


def test_bad_period_and_bad_world_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["render", "--home", str(tmp_path), "--period", "2024-13"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output
    result = runner.invoke(cli, ["generate", "--home", str(tmp_path), "--areas", "2"])
    assert result.exit_code == 2 and "--areas must be between 5 and 42" in result.output


def test_console_script_prints_errors_without_traceback(tmp_path):
    exe = [sys.executable, "-m", "cjmonitor.cli"]
    result = subprocess.run([*exe, "ingest", "--home", str(tmp_path / "missing"), "--json"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "run `cjmonitor db upgrade` first" in result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_specs_lists_every_return_type():
    result = CliRunner().invoke(cli, ["specs"])
    assert result.exit_code == 0
    for name in ("crc_caseload", "ttg_resettlement", "em_orders", "health_referrals", "reoffending_cohort", "kpi_aggregate"):
        assert name in result.output
    assert CliRunner().invoke(cli, ["specs", "nonsense"]).exit_code == 2


# Every command that takes a month: a misspelt month is refused by the option's type (exit 2, naming the option), and
# a month with nothing judged (2030-01, a typo for 2020) is refused against the data, the same way everywhere,
# before anything is written (the read-only demo home's guard fails the test if a file of it changed).
MONTH_COMMANDS = {
    "scorecard": (["scorecard", "--contract", "TTG-E23000005"], "--period"),
    "credits": (["credits", "--contract", "TTG-E23000005"], "--period"),
    "pack": (["pack", "--contract", "TTG-E23000005"], "--as-of"),
    "report monthly": (["report", "monthly", "--area", "E23000005"], "--period"),
    "report lcjb": (["report", "lcjb", "--area", "E23000005"], "--period"),
    "bundle": (["bundle", "--provider", "gateway-resettlement"], "--period"),
    "render": (["render"], "--period"),
    "distribute": (["distribute", "--dry-run"], "--period"),
    "funnel": (["funnel", "--measure", "crc_orders_completed"], "--period"),
    "breakdowns": (["breakdowns", "--measure", "crc_orders_completed"], "--period"),
}


def _files(home):
    """Every file of the home with its size and modification time (SQLite's -wal and -shm appear on any read)."""
    return sorted((p.relative_to(home), p.stat().st_size, p.stat().st_mtime_ns) for p in home.rglob("*")
                  if p.is_file() and not p.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize("name", MONTH_COMMANDS)
def test_every_month_option_is_checked_the_same_way(name, demo_home):
    args, option = MONTH_COMMANDS[name]
    before = _files(demo_home)
    runner = CliRunner()
    misspelt = runner.invoke(cli, [*args, "--home", str(demo_home), option, "2025-13"])
    assert misspelt.exit_code == 2, misspelt.output
    assert option in misspelt.output and "is not a month written YYYY-MM" in misspelt.output
    future = runner.invoke(cli, [*args, "--home", str(demo_home), option, "2030-01"])
    assert future.exit_code == 2, future.output
    assert "after the latest judged month" in future.output
    assert "judged months run from 2023-01 to 2025-12" in future.output
    assert "Traceback" not in future.output
    assert _files(demo_home) == before
