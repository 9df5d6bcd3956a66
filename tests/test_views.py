"""One view behind every output: `cjmonitor scorecard --json` equals the view the scorecard document is rendered
from, for every contract and month of the demo; the document shows the view's rolling windows, actions and credits."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from markupsafe import escape
from sqlmodel import select

from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from contracts.models import Judgement
from reports.views import build_scorecard_view


@pytest.mark.slow  # about 720 contract-months: 2-3 minutes on an idle machine
def test_scorecard_json_is_the_view_for_every_contract_and_month(demo_home, demo_settings):
    runner = CliRunner()
    with session_scope(demo_settings) as session:
        pairs = sorted({(j.contract_id, j.period) for j in session.exec(select(Judgement)).all()})
        assert len(pairs) > 500
        for contract_id, period in pairs:
            result = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", contract_id,
                                         "--period", period, "--json"])
            assert result.exit_code == 0, result.output
            printed = json.loads(result.output)
            assert printed == build_scorecard_view(session, contract_id, period, demo_settings.alpha).to_dict(), \
                (contract_id, period)


def test_scorecard_json_is_the_view_the_document_was_rendered_from(demo_home, demo_settings):
    runner = CliRunner()
    with session_scope(demo_settings) as session:
        pairs = sorted({(j.contract_id, j.period) for j in session.exec(select(Judgement)).all()})
    # The documents of the rendered month: the view written beside each scorecard is the one printed.
    rendered = sorted((demo_home / "out" / "scorecards" / "2025-12").glob("*.json"))
    assert len(rendered) == len({c for c, p in pairs if p == "2025-12"})
    for path in rendered:
        printed = json.loads(runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", path.stem,
                                                 "--period", "2025-12", "--json"]).output)
        assert printed == json.loads(path.read_text()), path.stem
        html = path.with_suffix(".html").read_text()
        assert printed["headline"] in html
        for action in printed["actions"]:
            assert str(escape(action)) in html
        assert "Rolling quarter and year" in html and "Service credits and payment by results" in html
        for m in printed["measures"]:
            if m["rolling"].get("year", {}).get("value") is not None:
                assert f"{100 * m['rolling']['year']['value']:.1f}%" in html
