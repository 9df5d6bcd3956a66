"""Progress on long work (cjmonitor.progress): plain lines off a terminal, nothing with --quiet, clean --json."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from cjmonitor import progress
from cjmonitor.cli import cli


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("CJMONITOR_PROGRESS", raising=False)
    progress.configure(enabled=True, json_output=False)
    yield
    progress.configure(enabled=True, json_output=False)


def test_plain_lines_show_stage_count_rate_elapsed_and_time_left(capsys, monkeypatch):
    monkeypatch.setenv("CJMONITOR_PROGRESS_INTERVAL", "0.2")
    before = len(progress.timings())
    with progress.stage("Rendering", total=4) as tick:
        for _ in range(4):
            time.sleep(0.15)
            tick()
    captured = capsys.readouterr()
    assert captured.out == ""  # never on stdout
    lines = captured.err.splitlines()
    assert lines[0] == "Rendering: started, 4 to do"
    middle = [line for line in lines[1:-1] if re.fullmatch(
        r"Rendering: [0-4]/4(, [\d.]+/(s|min))?, elapsed [\d.]+ s(, about [\d.]+ s left)?", line)]
    assert middle, lines  # at least one line while it ran (every 0.2 s over 0.6 s)
    assert any("left" in line for line in middle), lines
    assert re.fullmatch(r"Rendering: done 4/4 in [\d.]+ s", lines[-1]), lines
    timing = progress.timings()[before:]
    assert [(t.name, t.done, t.total) for t in timing] == [("Rendering", 4, 4)]
    assert 0.5 < timing[0].seconds < 10


def test_track_counts_each_item_and_a_total_can_come_later(capsys):
    assert list(progress.track(iter("abc"), "Letters")) == ["a", "b", "c"]
    with progress.stage("Files") as tick:
        tick(0, total=2)
        tick(2)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Letters: started, 3 to do" and err[1].startswith("Letters: done 3/3 in ")
    assert err[2] == "Files: started" and err[3].startswith("Files: done 2/2 in ")


def test_quiet_and_json_off_a_terminal_print_nothing(capsys, monkeypatch):
    progress.configure(enabled=False)
    with progress.stage("Quiet", total=1) as tick:
        tick()
    progress.configure(enabled=True, json_output=True)
    with progress.stage("Json", total=1) as tick:
        tick()
    monkeypatch.setenv("CJMONITOR_PROGRESS", "off")
    progress.configure(enabled=True, json_output=False)
    with progress.stage("Off", total=1) as tick:
        tick()
    assert capsys.readouterr().err == ""
    assert [t.name for t in progress.timings()[-3:]] == ["Quiet", "Json", "Off"]  # still timed


def test_a_failed_stage_says_where_it_stopped(capsys):
    with pytest.raises(RuntimeError), progress.stage("Loading", total=3) as tick:
        tick()
        raise RuntimeError("boom")
    assert capsys.readouterr().err.splitlines()[-1].startswith("Loading: stopped at 1/3 in ")


def test_format_seconds():
    assert progress.format_seconds(4.26) == "4.3 s"
    assert progress.format_seconds(75) == "1 min 15 s"
    assert progress.format_seconds(3 * 3600 + 120) == "3 h 02 min"


def test_generate_shows_progress_but_json_and_quiet_stay_clean(tmp_path):
    runner = CliRunner()
    shown = runner.invoke(cli, ["generate", "--home", str(tmp_path), "--areas", "5", "--months", "24", "--seed", "3"])
    assert shown.exit_code == 0, shown.output
    assert "Writing return files: started" in shown.stderr and "Writing return files: done" in shown.stderr
    assert "wrote" in shown.stdout and "Writing" not in shown.stdout
    home = str(tmp_path / "empty")
    assert runner.invoke(cli, ["db", "upgrade", "--home", home]).exit_code == 0
    shown = runner.invoke(cli, ["ingest", "--home", home])
    assert shown.exit_code == 0 and "Ingesting returns: started, 0 to do" in shown.stderr, shown.output
    quiet = runner.invoke(cli, ["ingest", "--home", home, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    as_json = runner.invoke(cli, ["ingest", "--home", home, "--json"])
    assert as_json.exit_code == 0 and as_json.stderr == ""
    assert json.loads(as_json.output) == json.loads(as_json.stdout) and json.loads(as_json.stdout)["accepted"] == 0
    # the group's --quiet works too, and the next command starts from the defaults again
    assert runner.invoke(cli, ["--quiet", "ingest", "--home", home]).stderr == ""
    assert "started" in runner.invoke(cli, ["ingest", "--home", home]).stderr
