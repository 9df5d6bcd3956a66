"""One spec drives the docs, the templates and validation: a template filled with generated rows loads."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from cjmonitor.cli import cli
from contracts.ingest import read_return
from contracts.returns import SPECS


def test_written_templates_match_the_specs(tmp_path):
    result = CliRunner().invoke(cli, ["specs", "--write", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for spec in SPECS.values():
        csv_header = (tmp_path / f"{spec.return_type}_template.csv").read_text().strip().split(",")
        assert tuple(csv_header) == spec.column_names
        frame = pd.read_excel(tmp_path / f"{spec.return_type}_template.xlsx", sheet_name=None)
        assert tuple(frame["return"].columns) == spec.column_names
        assert list(frame["guide"]["column"]) == list(spec.column_names)
        markdown = (tmp_path / f"{spec.return_type}.md").read_text()
        html = (tmp_path / f"{spec.return_type}.html").read_text()
        for column in spec.columns:
            assert f"`{column.name}`" in markdown and f"<code>{column.name}</code>" in html
    assert "crc_caseload" in (tmp_path / "index.html").read_text()


def test_template_header_is_read_back_as_the_spec(tmp_path):
    CliRunner().invoke(cli, ["specs", "--write", str(tmp_path)])
    for spec in SPECS.values():
        path = tmp_path / f"{spec.return_type}_template.csv"
        path.write_text(path.read_text() + ",".join(["x"] * len(spec.column_names)) + "\n")
        frame, notes = read_return(path)
        assert tuple(frame.columns) == spec.column_names and notes == []
