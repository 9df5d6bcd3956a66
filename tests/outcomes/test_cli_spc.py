"""`cjmonitor analyse spc` on CSV files: the JSON keys, the hand-computed limits, rebases and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["analyse", "spc", *args])


def test_xmr_with_a_rebase_and_target(tmp_path):
    months = pd.period_range("2022-01", periods=24, freq="M").astype(str)
    values = [10, 11, 9] * 4 + [20, 21, 19] * 4
    pd.DataFrame({"month": months, "count": values}).to_csv(tmp_path / "s.csv", index=False)
    result = run("--csv", str(tmp_path / "s.csv"), "--time", "month", "--value", "count", "--target", "15",
                 "--rebase", "2023-01=new provider", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["chart"] == "xmr" and out["centre"] == pytest.approx(20)
    first, last = out["limits"][0], out["limits"][-1]
    assert first["time"] == "2022-01" and first["upper"] == pytest.approx(10 + 2.66 * 15 / 11)  # mR: 1,2,1,1,2,...
    assert last["lower"] == pytest.approx(20 - 2.66 * 15 / 11)
    assert out["signals"] == [] and out["variation_icon"] == "common_cause" and out["assurance_icon"] == "pass"
    assert out["rebases"] == [{"time": "2023-01", "reason": "new provider"}]


def test_proportion_picks_a_p_chart_and_marks_signals(tmp_path):
    months = pd.period_range("2022-01", periods=20, freq="M").astype(str)
    n = np.full(20, 100)
    x = np.array([80, 82, 78, 81, 79, 80, 82, 78, 81, 79, 80, 81] + [95] * 8)
    pd.DataFrame({"month": months, "met": x, "cases": n}).to_csv(tmp_path / "p.csv", index=False)
    result = run("--csv", str(tmp_path / "p.csv"), "--time", "month", "--value", "met", "--denominator", "cases",
                 "--fix-after", "12", "--improvement", "higher", "--json")
    out = json.loads(result.output)
    assert out["chart"] == "p" and "proportion" in out["why"]
    p_bar = x[:12].sum() / 1200
    assert out["limits"][0]["upper"] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 100))
    rules = {s["rule"] for s in out["signals"]}
    assert {"outside limits", "shift"} <= rules
    outside = next(s for s in out["signals"] if s["rule"] == "outside limits")
    assert outside["times"] == ["2023-01"] and outside["meaning"] == "improvement"
    assert out["variation_icon"] == "improvement_high"
    text = run("--csv", str(tmp_path / "p.csv"), "--time", "month", "--value", "met", "--denominator", "cases")
    assert text.exit_code == 0 and "p-chart of 20 points" in text.output


def test_errors_name_the_file_row_and_column(tmp_path):
    pd.DataFrame({"month": ["2022-01", "2022-02"], "v": ["1", "x"]}).to_csv(tmp_path / "bad.csv", index=False)
    result = run("--csv", str(tmp_path / "bad.csv"), "--time", "month", "--value", "v")
    assert result.exit_code == 2 and "row 3, column 'v'" in result.output and "Traceback" not in result.output
    result = run("--csv", str(tmp_path / "bad.csv"), "--time", "month", "--value", "nope")
    assert result.exit_code == 2 and "no column 'nope'" in result.output
    months = pd.period_range("2022-01", periods=14, freq="M").astype(str)
    pd.DataFrame({"month": months, "v": range(14)}).to_csv(tmp_path / "ok.csv", index=False)
    result = run("--csv", str(tmp_path / "ok.csv"), "--time", "month", "--value", "v", "--rebase", "2030-01")
    assert result.exit_code == 2 and "not a period" in result.output
    result = run("--csv", str(tmp_path / "ok.csv"), "--time", "month", "--value", "v", "--chart", "p")
    assert result.exit_code == 2 and "needs denominators" in result.output
