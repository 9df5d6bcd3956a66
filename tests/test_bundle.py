"""A provider's bundle holds its own scorecards only: no other provider's name or figures."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

from click.testing import CliRunner
from sqlmodel import select

from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.models import Contract, Provider
from tests.deps import poppler


def _document_text(path: Path) -> str:
    """What a reader sees: the HTML source, a PDF's text (pdftotext), every cell of every XLSX sheet (openpyxl)."""
    if path.suffix == ".pdf":
        return " ".join(poppler(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout.split())
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            cells = [str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None]
            cells += [sheet.title for sheet in book.worksheets]
        finally:
            book.close()
        return "\n".join(cells)
    return path.read_text(encoding="utf-8")


def test_bundle_is_the_providers_own_scorecards(demo_home, tmp_path):
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    result = CliRunner().invoke(cli, ["bundle", "--home", str(home), "--provider", "gateway-resettlement",
                                      "--period", "2025-12", "--json"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    with session_scope(get_settings(home)) as session:
        own = sorted(c.id for c in session.exec(select(Contract).where(Contract.provider_id == "gateway-resettlement")).all())
        others = [p.name for p in session.exec(select(Provider).where(Provider.id != "gateway-resettlement")).all()]
        other_contracts = [c.id for c in session.exec(select(Contract).where(Contract.provider_id != "gateway-resettlement")).all()]
    assert others and other_contracts
    with zipfile.ZipFile(bundle["zip"]) as archive:
        names = sorted(archive.namelist())
        archive.extractall(tmp_path / "bundle")
    assert names == sorted(f"{c}_scorecard.{kind}" for c in own for kind in ("html", "pdf", "xlsx"))
    # PDF and XLSX are compressed: search the text they show a reader, not their bytes.
    texts = {name: _document_text(tmp_path / "bundle" / name) for name in names}
    for name, text in texts.items():
        assert "Gateway Resettlement Partnership" in text, f"{name}: the provider's own name is not in its text"
        leaked = [other for other in others if other in text]
        assert not leaked, f"{name} names other providers: {leaked}"
        foreign = [c for c in other_contracts if c in text]
        assert not foreign, f"{name} names other providers' contracts: {foreign}"
    missing = CliRunner().invoke(cli, ["bundle", "--home", str(home), "--provider", "nobody", "--period", "2025-12"])
    assert missing.exit_code == 2 and "no provider 'nobody'" in missing.output
