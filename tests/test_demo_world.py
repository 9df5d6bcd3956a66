"""The synthetic world: deterministic, realistic, and honest about what it injected."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from cjmonitor.demo import build_world, cohort_rows, generate_world
from cjmonitor.errors import ConfigError
from contracts.returns import RETURN_TYPES, SPECS, SYSTEM_RETURN_TYPE, parse_file_name
from contracts.system import SPEC as SYSTEM_SPEC


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_gives_same_bytes(tmp_path):
    a = generate_world(tmp_path / "a" / "drop", tmp_path / "a" / "truth.json", seed=11, areas=5, months=24)
    b = generate_world(tmp_path / "b" / "drop", tmp_path / "b" / "truth.json", seed=11, areas=5, months=24)
    assert a.files == b.files
    digest_a, digest_b = _digest(tmp_path / "a" / "drop"), _digest(tmp_path / "b" / "drop")
    assert digest_a == digest_b
    assert any(name.endswith(".xlsx") for name in digest_a), "the world should include Excel returns"
    assert (tmp_path / "a" / "truth.json").read_bytes() == (tmp_path / "b" / "truth.json").read_bytes()
    generate_world(tmp_path / "c" / "drop", tmp_path / "c" / "truth.json", seed=12, areas=5, months=24)
    assert _digest(tmp_path / "c" / "drop") != digest_a


def test_manifest_shape_and_contents(tmp_path):
    world = generate_world(tmp_path / "drop", tmp_path / "truth.json", seed=3, areas=6, months=30)
    truth = json.loads((tmp_path / "truth.json").read_text())
    for key in ("seed", "areas", "start", "months", "its_effects", "reoffending_effects", "failing_contracts",
                "synth_effects", "late_returns", "malformed_files"):
        assert key in truth
    assert truth["seed"] == 3 and truth["areas"] == 6 and truth["months"] == 30 and truth["start"] == "2023-01"
    (its,) = truth["its_effects"]
    assert its == {"contract_id": "CRC-E23000005", "measure": "crc_plan_15wd", "intervention": "2024-07",
                   "level_change": 0.08, "slope_change": 0.0}
    assert truth["reoffending_effects"] == [{"contract_id": "CRC-E23000014", "att": -0.05, "frequency_att": -0.19}]
    assert truth["breakdown_effects"] == [{"measure": "crc_orders_completed", "group": "care_leaver", "difference": -0.1}]
    assert truth["synth_effects"][0]["area_code"] == "E23000010"
    assert truth["failing_contracts"] and all(c.startswith("TTG-") for c in truth["failing_contracts"])
    assert len(truth["late_returns"]) == 4 and len(truth["malformed_files"]) == 3
    names = set(world.files)
    for bad in truth["malformed_files"]:
        assert bad in names
        parsed = parse_file_name(bad)
        corrected = f"{bad.rsplit('.', 1)[0]}_v2.{parsed.extension}"
        assert corrected in names, "every malformed file is followed by a corrected version"
    # Every file follows the naming convention and has exactly the spec's columns.
    specs = {**SPECS, SYSTEM_RETURN_TYPE: SYSTEM_SPEC}  # the LCJB's system measures come through the drop folder too
    assert sum(parse_file_name(n, specs) is not None and parse_file_name(n, specs).return_type == SYSTEM_RETURN_TYPE
               for n in names) == 30  # one a month
    for name in names:
        parsed = parse_file_name(name, (*RETURN_TYPES, SYSTEM_RETURN_TYPE))
        assert parsed is not None, name
        path = tmp_path / "drop" / name
        frame = pd.read_excel(path, dtype=str) if parsed.extension == "xlsx" else pd.read_csv(path, dtype=str, nrows=5)
        if name not in truth["malformed_files"]:
            assert tuple(frame.columns) == specs[parsed.return_type].column_names, name


def test_world_rates_carry_the_injected_effects():
    world = build_world(seed=5, areas=5, months=36)
    its = world.truth["its_effects"][0]
    rates = world.true_rates[(its["contract_id"], its["measure"])]
    jump = rates[18] - rates[17]
    others = np.diff(rates)[np.arange(35) != 17]
    assert jump == pytest.approx(0.08, abs=0.02)
    assert np.max(np.abs(others)) < 0.02
    failing = world.truth["failing_contracts"][0]
    assert np.all(world.true_rates[(failing, "ttg_settled_accommodation")] < 0.85 - 0.05)


def test_cohort_selection_biases_the_naive_comparison():
    rng = np.random.default_rng(0)
    cohort = cohort_rows(rng, 60_000, pd.Timestamp("2023-01-01").date(), att=-0.05)
    served = cohort["served"] == 1
    naive = cohort.loc[served, "reoffended_12m"].mean() - cohort.loc[~served, "reoffended_12m"].mean()
    # Served people are higher-risk, so the naive difference hides the 5-point reduction.
    assert naive > -0.02
    assert 0.15 < served.mean() < 0.5
    assert 0.2 < cohort["reoffended_12m"].mean() < 0.45


@pytest.mark.parametrize("kwargs", [{"areas": 3}, {"months": 12}, {"scale": 0}, {"start": "2023-13"}])
def test_bad_world_options_are_user_errors(kwargs):
    with pytest.raises(ConfigError):
        build_world(**kwargs)
