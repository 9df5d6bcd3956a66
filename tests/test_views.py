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


@pytest.mark.slow  # about 720 contract-months: about a minute on an idle machine
def test_scorecard_json_for_every_contract_and_month(demo_home, demo_settings):
    """The CLI prints every contract-month of the demo. Each printing is checked against the stored judgements of
    that month (an independent source: the table, not the view code), and against the view built directly for
    every contract's first, last and rebased months and every sixth month between (the CLI calls the same
    builder, so the comparison on all ~720 would double the time and test the builder against itself)."""
    from contracts.models import ContractVariation

    runner = CliRunner()
    with session_scope(demo_settings) as session:
        judged = session.exec(select(Judgement)).all()
        by_month: dict[tuple[str, str], dict[str, Judgement]] = {}
        for j in judged:
            by_month.setdefault((j.contract_id, j.period), {})[j.measure_code] = j
        pairs = sorted(by_month)
        assert len(pairs) > 500
        months = sorted({p for _c, p in pairs})
        varied = {(v.contract_id, v.effective_date.strftime("%Y-%m")) for v in session.exec(select(ContractVariation))}
        first = {c: min(p for cc, p in pairs if cc == c) for c, _p in pairs}
        compared = 0
        for contract_id, period in pairs:
            result = runner.invoke(cli, ["scorecard", "--home", str(demo_home), "--contract", contract_id,
                                         "--period", period, "--json"])
            assert result.exit_code == 0, result.output
            printed = json.loads(result.output)
            assert (printed["contract_id"], printed["period"]) == (contract_id, period)
            stored = by_month[(contract_id, period)]
            shown = {m["code"]: m for m in printed["measures"] if m["as_of"] == period}
            assert set(stored) <= set(shown), (contract_id, period, set(stored) - set(shown))
            for code in set(shown) - set(stored):  # a KPI with no judgement this month says so
                assert (shown[code]["rag"], shown[code]["verdict"]) == ("No data", "no return"), (contract_id, period, code)
            shown = {code: m for code, m in shown.items() if code in stored}
            for code, m in shown.items():
                j = stored[code]
                assert (m["rag"], m["verdict"], m["numerator"], m["denominator"]) == \
                    (j.rag, j.verdict, j.numerator, j.denominator), (contract_id, period, code)
                assert (m["value"] is None and j.value is None) or m["value"] == pytest.approx(j.value)
                assert m["target"] == pytest.approx(j.target)
            if (period in (first[contract_id], months[-1]) or (contract_id, period) in varied
                    or months.index(period) % 6 == 0):
                assert printed == build_scorecard_view(session, contract_id, period, demo_settings.alpha).to_dict(), \
                    (contract_id, period)
                compared += 1
        assert compared >= len(first) * 3


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
