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
