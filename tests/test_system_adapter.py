"""The published-CSV adapter: a dashboard-style quarterly file through its mapping file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from contracts.system import validate_system_frame
from contracts.system_adapter import ADAPTERS_DIR, AdapterError, adapt_csv, load_mapping

DATA = Path(__file__).resolve().parent / "data"
DASHBOARD = DATA / "cjs_dashboard_quarterly.csv"


def test_dashboard_csv_loads_through_its_mapping():
    adapted = adapt_csv(DASHBOARD, "cjs_delivery_dashboard")
    assert adapted.errors == []
    frame = adapted.frame
    # 4 rows x 9 measures, less one suppressed cell ([c] CPS charges, Dorset Apr-Jun 2024)
    assert len(frame) == 35
    suppressed = [i for i in adapted.issues if i.code == "suppressed"]
    assert [(i.row, i.column) for i in suppressed] == [(3, "CPS charges authorised")]
    dorset = frame[(frame.area_code == "E23000039") & (frame.period == "2024-Q1")].set_index(["agency", "measure"])
    assert dorset.loc[("police", "recorded_crime"), "value"] == 17520
    assert dorset.loc[("police", "recorded_crime"), "numerator"] == 17520
    charge = dorset.loc[("police", "charge_summons_rate")]
    assert (charge.numerator, charge.denominator, charge.value) == (1102, 16480, 6.7)
    # no published rate: computed from the parts
    assert dorset.loc[("police", "victim_does_not_support"), "value"] == pytest.approx(100 * 4780 / 16480, abs=1e-4)
    assert dorset.loc[("courts_crown", "median_days_charge_to_completion"), "value"] == 296
    # "Metropolitan Police" is London's criminal justice area; "Apr-Jun 2024" is 2024-Q2
    assert set(frame.area_code) == {"E23000039", "E23000001", "W15000002"}
    assert set(frame.period) == {"2024-Q1", "2024-Q2"}
    issues, typed = validate_system_frame(frame.drop(columns=["source_row"]))
    assert typed is not None and len(typed) == 35


def test_a_mapping_naming_a_missing_column_says_which(tmp_path):
    data = yaml.safe_load((ADAPTERS_DIR / "cjs_delivery_dashboard.yaml").read_text())
    data["measures"][1]["numerator"] = "Charged/summonsed"
    mapping = tmp_path / "renamed.yaml"
    mapping.write_text(yaml.safe_dump(data))
    with pytest.raises(AdapterError) as error:
        adapt_csv(DASHBOARD, mapping)
    message = str(error.value)
    assert "measures[1].numerator (police.charge_summons_rate) names column 'Charged/summonsed'" in message
    assert "cjs_dashboard_quarterly.csv does not have" in message and "Charged or summonsed" in message


def test_a_mapping_to_an_undeclared_measure_is_refused(tmp_path):
    data = yaml.safe_load((ADAPTERS_DIR / "cjs_delivery_dashboard.yaml").read_text())
    data["measures"][0]["agency"] = "prisons"
    mapping = tmp_path / "wrong.yaml"
    mapping.write_text(yaml.safe_dump(data))
    with pytest.raises(AdapterError, match=r"measures\[0\] maps to prisons.recorded_crime, which the system-measures"):
        load_mapping(mapping)


def test_bad_cells_are_named_by_the_published_row(tmp_path):
    text = DASHBOARD.read_text().replace("Gwent,Jan-Mar 2024", "Gwent,Jan-Apr 2024").replace(
        '"201,300","11,400","190,250",6.0', '"201,300","191,400","190,250",6.0')
    path = tmp_path / "bad.csv"
    path.write_text(text)
    adapted = adapt_csv(path, "cjs_delivery_dashboard")
    found = {(i.row, i.column, i.code) for i in adapted.errors}
    assert (5, "Quarter", "bad_period") in found
    assert (4, "numerator", "exceeds") in found
    message = next(i.message for i in adapted.errors if i.code == "exceeds")
    assert message.startswith("police.charge_summons_rate:")


def test_long_pack_layout(tmp_path):
    path = tmp_path / "pack.csv"
    pd.DataFrame([
        {"CJA code": "E23000039", "Month": "2024-03", "Measure": "Police file quality (NFS compliance %)",
         "Numerator": "180", "Denominator": "320", "Value": "56.3"},
        {"CJA code": "E23000039", "Month": "2024-03", "Measure": "Remand population", "Numerator": "",
         "Denominator": "", "Value": "214"},
        {"CJA code": "E23000039", "Month": "2024-03", "Measure": "Something else", "Numerator": "1",
         "Denominator": "2", "Value": "50"},
    ]).to_csv(path, index=False)
    adapted = adapt_csv(path, "lcjb_pack_long")
    assert adapted.errors == []
    assert [i.code for i in adapted.issues] == ["unmapped_label"]
    assert list(adapted.frame.measure) == ["file_quality", "remand_population"]
    assert adapted.frame.value.tolist() == [56.3, 214.0]
