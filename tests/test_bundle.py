"""A provider's bundle holds its own scorecards only: no other provider's name or figures."""

from __future__ import annotations

import json
import sqlite3
import zipfile

from click.testing import CliRunner
from sqlmodel import select

from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.models import Contract, Provider


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
    with zipfile.ZipFile(bundle["zip"]) as archive:
        names = sorted(archive.namelist())
        text = "".join(archive.read(name).decode("utf-8", "replace") for name in names)
    assert names == sorted(f"{c}_scorecard.{kind}" for c in own for kind in ("html", "pdf", "xlsx"))
    assert "Gateway Resettlement Partnership" in text
    assert not any(name in text for name in others)
    missing = CliRunner().invoke(cli, ["bundle", "--home", str(home), "--provider", "nobody", "--period", "2025-12"])
    assert missing.exit_code == 2 and "no provider 'nobody'" in missing.output
