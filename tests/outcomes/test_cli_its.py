"""`cjmonitor analyse its` on CSV files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli


def test_sicily_from_the_command_line(shared_data, tmp_path):
    data = pd.read_csv(shared_data / "sicily" / "sicily.csv")
    data["month"] = [f"{y}-{m:02d}" for y, m in zip(data["year"], data["month"], strict=True)]
    path = tmp_path / "sicily.csv"
    data.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyse", "its", "--csv", str(path), "--time", "month", "--outcome", "aces",
                                      "--intervention", "2005-01", "--family", "poisson", "--offset", "stdpop",
                                      "--seasonality", "fourier:2", "--scale", "pearson", "--level-only", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert round(out["rate_ratio"]["estimate"], 3) == 0.885
    assert {"estimate", "ci_low", "ci_high", "p_value"} <= set(out["level_change"])
    assert out["n"] == 59 and out["family"] == "poisson" and "durbin_watson" in out["diagnostics"]


def test_controlled_its_and_errors(tmp_path):
    rng = np.random.default_rng(4)
    months = pd.period_range("2022-01", periods=36, freq="M").astype(str)
    shared = np.cumsum(rng.normal(0, 1, 36))
    treated = pd.DataFrame({"month": months, "rate": 70 + shared + 8 * (np.arange(36) >= 18) + rng.normal(0, 1, 36)})
    control = pd.DataFrame({"month": months, "rate": 65 + shared + rng.normal(0, 1, 36)})
    treated.to_csv(tmp_path / "t.csv", index=False)
    control.to_csv(tmp_path / "c.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["analyse", "its", "--csv", str(tmp_path / "t.csv"), "--time", "month", "--outcome", "rate",
                                 "--intervention", "2023-07", "--control-csv", str(tmp_path / "c.csv"), "--level-only",
                                 "--json"])
    assert result.exit_code == 0, result.output
    level = json.loads(result.output)["level_change"]
    assert level["ci_low"] < 8 < level["ci_high"]
    bad = runner.invoke(cli, ["analyse", "its", "--csv", str(tmp_path / "t.csv"), "--time", "month", "--outcome", "rate",
                              "--intervention", "2030-01"])
    assert bad.exit_code == 2 and "outside the series" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("args, message", [
    (["--outcome", "nope"], "not in the data"),
    (["--family", "binomial"], "needs --denominator"),
])
def test_cli_user_errors(tmp_path, args, message):
    months = pd.period_range("2022-01", periods=36, freq="M").astype(str)
    pd.DataFrame({"month": months, "rate": np.arange(36.0)}).to_csv(tmp_path / "s.csv", index=False)
    base = ["analyse", "its", "--csv", str(tmp_path / "s.csv"), "--time", "month", "--outcome", "rate",
            "--intervention", "2023-07"]
    result = CliRunner().invoke(cli, base[:6] + args + base[8:] if args[0] == "--outcome" else base + args)
    assert result.exit_code == 2 and message in result.output
