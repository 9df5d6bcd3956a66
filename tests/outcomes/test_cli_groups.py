"""``cjmonitor analyse match|ipw|did|synth|mde`` on CSV files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cjmonitor.cli import cli
from tests.outcomes._groups_data import EXPERIMENTAL_ATT, LALONDE_COVARIATES

LALONDE_ARGS = ["--treatment", "treat", "--outcome", "re78", "--covariates", ",".join(LALONDE_COVARIATES)]


def run(args):
    return CliRunner().invoke(cli, ["analyse", *args])


@pytest.fixture(scope="module")
def experimental_csv(shared_data):
    return str(shared_data / "lalonde" / "nsw_experimental.csv")


@pytest.mark.parametrize("command,extra", [("match", ["--replace", "--ratio", "2"]), ("match", []), ("ipw", [])])
def test_match_and_ipw_json(experimental_csv, command, extra):
    result = run([command, "--csv", experimental_csv, *LALONDE_ARGS, *extra, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["att"]["ci_low"] < EXPERIMENTAL_ATT < data["att"]["ci_high"]
    assert 0 <= data["att"]["p_value"] <= 1
    assert data["n_treated"] == 185 and 0 < data["n_matched"] <= 185 and data["n_control_used"] > 0
    assert data["balance"]["max_smd_before"] == pytest.approx(0.304, abs=0.005)
    assert len(data["balance"]["table"]) == len(LALONDE_COVARIATES)


def test_match_options_reach_the_method(experimental_csv):
    result = run(["match", "--csv", experimental_csv, *LALONDE_ARGS, "--exact", "black", "--caliper", "0",
                  "--ratio", "3", "--replace", "--alpha", "0.1", "--json"])
    data = json.loads(result.output)
    assert data["settings"] == {**data["settings"], "exact": ["black"], "caliper": None, "ratio": 3, "replace": True}
    assert data["alpha"] == 0.1


def test_match_text_output_has_the_headline(experimental_csv):
    result = run(["match", "--csv", experimental_csv, *LALONDE_ARGS])
    assert result.exit_code == 0
    assert "Mean re78 " in result.output and "in the comparison group" in result.output
    assert "max |SMD| before" in result.output and "Abadie-Imbens" in result.output


def test_did_json(shared_data, tmp_path):
    frame = pd.read_csv(shared_data / "card_krueger" / "njmin3.csv").dropna(subset=["fte"])
    frame["store"] = np.arange(len(frame))  # one row per store-period in this extract: each row its own cluster
    path = tmp_path / "ck.csv"
    frame.to_csv(path, index=False)
    result = run(["did", "--csv", str(path), "--unit", "store", "--time", "d", "--outcome", "fte",
                  "--treated", "nj", "--post", "d", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert round(data["did"]["estimate"], 3) == 2.754 and data["n"] == 794
    assert data["did"]["ci_low"] < 0 < data["did"]["ci_high"]


def test_synth_json(tmp_path):
    rng = np.random.default_rng(0)
    months = [f"{2022 + m // 12}-{m % 12 + 1:02d}" for m in range(30)]
    rows = []
    base = rng.normal(0, 0.01, (30, 10)).cumsum(axis=0) + np.linspace(0.5, 0.8, 10)
    base[:, 0] = base[:, 1:4].mean(axis=1)
    base[20:, 0] += 0.08
    for t, month in enumerate(months):
        for j in range(10):
            rows.append({"area": f"E{j:07d}", "month": month, "rate": base[t, j]})
    path = tmp_path / "areas.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = run(["synth", "--csv", str(path), "--unit", "area", "--time", "month", "--outcome", "rate",
                  "--treated", "E0000000", "--intervention", months[20], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["weights"]) == {f"E{j:07d}" for j in range(1, 10)}
    assert data["average_post_gap"] == pytest.approx(0.08, abs=0.02)
    assert data["placebo_p_value"] == pytest.approx(0.1)
    assert data["gaps"][20]["time"] == "2023-09" and len(data["gaps"]) == 30


def test_mde_json():
    result = run(["mde", "--n-treated", "100", "--n-control", "1000", "--base-rate", "0.4", "--json"])
    assert json.loads(result.output)["mde"] == pytest.approx(0.1393, abs=1e-4)


def test_user_errors_print_a_message_and_exit_2(experimental_csv, tmp_path):
    missing = run(["match", "--csv", str(tmp_path / "nope.csv"), *LALONDE_ARGS])
    assert missing.exit_code == 2 and "error:" in missing.output and "no such file" in missing.output
    column = run(["match", "--csv", experimental_csv, "--treatment", "treat", "--outcome", "re78", "--covariates", "agee"])
    assert column.exit_code == 2 and "'agee' not found" in column.output
    bad = run(["ipw", "--csv", experimental_csv, "--treatment", "age", "--outcome", "re78", "--covariates", "educ"])
    assert bad.exit_code == 2 and "must hold only 0 and 1" in bad.output and "Traceback" not in bad.output
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00\x01binary")
    unreadable = run(["match", "--csv", str(garbage), *LALONDE_ARGS])
    assert unreadable.exit_code == 2 and "error:" in unreadable.output
