"""`cjmonitor ingest` exit codes and `cjmonitor returns list|show|status` on the demo world."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from cjmonitor.cli import cli


def test_status_names_late_quarantined_and_accepted_returns(demo_home, demo_summary):
    late = demo_summary["late_returns"][0]
    result = CliRunner().invoke(cli, ["returns", "status", "--home", str(demo_home), "--period", late["period"], "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["provider_id"], r["return_type"]): r for r in json.loads(result.output)["returns"]}
    row = rows[(late["provider_id"], late["return_type"])]
    assert row["status"] == "accepted" and row["late"] is True
    expected_late = {(r["provider_id"], r["return_type"]) for r in demo_summary["late_returns"] if r["period"] == late["period"]}
    assert {k for k, r in rows.items() if r["late"]} == expected_late
    assert len(rows) > len(expected_late)
    bad = demo_summary["malformed_files"][0]
    provider, period = bad.split("_", 1)[0], bad.rsplit("_", 1)[1][:7]
    result = CliRunner().invoke(cli, ["returns", "status", "--home", str(demo_home), "--period", period, "--json"])
    rows = [r for r in json.loads(result.output)["returns"] if r["provider_id"] == provider and r["versions"] == 2]
    assert rows and rows[0]["rejected_versions"] == 1 and rows[0]["current_version"] == 2


def test_status_reports_missing_returns(demo_home):
    result = CliRunner().invoke(cli, ["returns", "status", "--home", str(demo_home), "--period", "2026-01"])
    assert result.exit_code == 0
    assert "missing" in result.output  # the world ends in 2025-12, so every January 2026 return is missing
    assert "0 accepted" in result.output


def test_list_and_show(demo_home, demo_summary):
    runner = CliRunner()
    result = runner.invoke(cli, ["returns", "list", "--home", str(demo_home), "--status", "rejected", "--json"])
    rejected = json.loads(result.output)
    assert sorted(r["file_name"] for r in rejected) == sorted(demo_summary["malformed_files"])
    shown = runner.invoke(cli, ["returns", "show", "--home", str(demo_home), str(rejected[0]["id"])])
    assert shown.exit_code == 0
    assert "rejected" in shown.output and "error" in shown.output and "row" in shown.output
    missing = runner.invoke(cli, ["returns", "show", "--home", str(demo_home), "999999"])
    assert missing.exit_code == 2 and "no submission 999999" in missing.output


def test_ingest_exit_codes(tmp_path, writable_demo_home, demo_summary):
    runner = CliRunner()
    demo_home = writable_demo_home  # this test ingests into it
    home = tmp_path / "home"
    assert runner.invoke(cli, ["db", "upgrade", "--home", str(home)]).exit_code == 0
    # A new home knows no providers: every file is unrecognised -> exit 1 with the reason.
    one = demo_home / "var" / "drop" / "northstar-rehab_crc_caseload_2023-01.csv"
    result = runner.invoke(cli, ["ingest", "--home", str(home), str(one)])
    assert result.exit_code == 1 and "not configured" in result.output
    # In the demo home everything is already received: exit 0.
    result = runner.invoke(cli, ["ingest", "--home", str(demo_home), str(one)])
    assert result.exit_code == 0 and "already received 1" in result.output
    bad = tmp_path / demo_summary["malformed_files"][0]
    shutil.copy(demo_home / "var" / "drop" / demo_summary["malformed_files"][0], bad)
    bad.write_bytes(bad.read_bytes() + b"\n")  # new bytes, same problems
    result = runner.invoke(cli, ["ingest", "--home", str(demo_home), str(bad)])
    assert result.exit_code == 1 and "rejected" in result.output and "error report:" in result.output
    assert runner.invoke(cli, ["ingest", "--home", str(demo_home), "--source", "nope"]).exit_code == 2


def test_ingest_prints_the_first_problems_of_a_rejected_file(tmp_path, writable_demo_home):
    import pandas as pd

    runner = CliRunner()
    good = writable_demo_home / "var" / "drop" / "northstar-rehab_crc_caseload_2023-01.csv"
    frame = pd.read_csv(good, dtype=str, keep_default_na=False)
    assert len(frame) > 8
    seven = frame.copy()
    seven.loc[:6, "sex"] = "Male"  # rows 2-8 of the spreadsheet (the header is row 1)
    many = tmp_path / "northstar-rehab_crc_caseload_2023-01_v7.csv"
    seven.to_csv(many, index=False)
    one = frame.copy()
    one.loc[2, "sex"] = "Male"
    single = tmp_path / "northstar-rehab_crc_caseload_2023-01_v8.csv"
    one.to_csv(single, index=False)

    result = runner.invoke(cli, ["ingest", "--home", str(writable_demo_home), "--quiet", str(many), str(single)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    first = lines.index(next(line for line in lines if many.name in line))
    assert "rejected: 7 errors; nothing loaded" in lines[first]
    shown = lines[first + 1:first + 6]
    assert [line.split(":")[0].strip() for line in shown] == [f"row {r}, column sex" for r in range(2, 7)], lines
    assert all("Male" in line for line in shown), shown
    assert lines[first + 6].strip() == "and 2 more in the error report"
    second = lines.index(next(line for line in lines if single.name in line))
    assert "rejected: 1 error; nothing loaded" in lines[second]  # "1 error", not "1 errors"
    assert lines[second + 1].strip().startswith("row 4, column sex:")
    assert "more in the error report" not in lines[second + 2]
