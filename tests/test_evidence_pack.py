"""The renegotiation evidence pack: real PDF (checked as text and as a picture), HTML and XLSX annex."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.models import Artifact, Judgement
from tests.deps import poppler

CONTRACT, AS_OF = "CRC-E23000005", "2025-12"  # Greater Manchester: renegotiated in 2024-07


@pytest.fixture(scope="module")
def pack(demo_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("pack-home")
    (home / "var").mkdir()
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    result = CliRunner().invoke(cli, ["pack", "--home", str(home), "--contract", CONTRACT, "--as-of", AS_OF, "--json"])
    assert result.exit_code == 0, result.output
    return home, json.loads(result.output)


def test_pdf_summary_states_what_the_database_shows(pack):
    home, paths = pack
    text = poppler(["pdftotext", "-layout", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    months = [str(pd.Period(AS_OF, "M") - i) for i in range(12)]
    with session_scope(get_settings(home)) as session:
        judged = session.exec(select(Judgement).where(Judgement.contract_id == CONTRACT, Judgement.measure_code == "crc_plan_15wd",
                                                      Judgement.period.in_(months))).all()
    red = sum(j.rag == "Red" for j in judged)
    not_met = sum(j.verdict == "not met" for j in judged)
    assert "months Red and months missed beyond sampling noise (not met) in the last 12" in flat
    sentence = (f"Initial sentence plan within 15 working days missed its target outside tolerance (Red) in {red} of "
                f"the last 12 months; in {not_met} of them")
    assert (sentence in flat) == (red >= 6), (red, not_met)
    assert "After the renegotiation of 2024-07" in flat and "points (95% CI" in flat
    assert "Reoffending against a matched comparison group" in flat
    assert "For 100 typical people in the treatment group" in flat
    assert "An unmeasured factor would need to make people" in flat  # the E-value, in plain words
    assert "Time to first reoffence" in flat and "stayed free of proven reoffending" in flat
    assert "Robustness checks" in flat and "Placebo in time: a fake change at" in flat
    assert "Page 1 of" in flat and "Provenance" in flat


def test_pdf_pages_render_as_pictures(pack, tmp_path):
    _home, paths = pack
    poppler(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "3", paths["pdf"], str(tmp_path / "page")], check=True)
    import matplotlib.image as mpimg

    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3
    for page in pages:
        pixels = mpimg.imread(page)[..., :3]
        ink = (pixels.mean(axis=2) < 0.9).mean()
        assert 0.01 < ink < 0.6, f"{page.name} looks blank or solid ({ink:.3f})"


def test_annex_holds_the_same_numbers(pack):
    home, paths = pack
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    assert {"summary", "kpis", "history", "service_credits", "payment_by_results", "findings", "benchmark", "returns"} <= set(sheets)
    history = sheets["history"]
    row = history[(history["measure_code"] == "crc_plan_15wd") & (history["period"] == AS_OF)].iloc[0]
    with session_scope(get_settings(home)) as session:
        judged = session.exec(select(Judgement).where(Judgement.contract_id == CONTRACT, Judgement.measure_code == "crc_plan_15wd",
                                                      Judgement.period == AS_OF)).one()
        kinds = {a.path.rsplit(".", 1)[1] for a in session.exec(select(Artifact).where(Artifact.kind == "evidence_pack")).all()}
    assert row["numerator"] == judged.numerator and row["denominator"] == judged.denominator
    assert kinds == {"html", "pdf", "xlsx"}
    benchmark = sheets["benchmark"]
    assert benchmark["this_contract"].sum() >= 6  # one row per KPI for this contract
    assert ((benchmark["low_99_8"] <= benchmark["low_95"]) & (benchmark["high_95"] <= benchmark["high_99_8"])).all()


def test_unknown_contract_and_bad_month(pack):
    home, _paths = pack
    runner = CliRunner()
    bad = runner.invoke(cli, ["pack", "--home", str(home), "--contract", "NOPE"])
    assert bad.exit_code == 2 and "no contract 'NOPE'" in bad.output
    month = runner.invoke(cli, ["pack", "--home", str(home), "--contract", CONTRACT, "--as-of", "2025-13"])
    assert month.exit_code == 2 and "YYYY-MM" in month.output
    # A typo for 2020 is refused, not written as a pack "as of January 2030" without a KPI (the same check as
    # scorecard, report monthly and credits).
    future = runner.invoke(cli, ["pack", "--home", str(home), "--contract", CONTRACT, "--as-of", "2030-01"])
    assert future.exit_code == 2 and "no judged KPIs for 2030-01" in future.output and "judged months run from" in future.output
    credits = runner.invoke(cli, ["credits", "--home", str(home), "--contract", CONTRACT, "--period", "2030-01"])
    assert credits.exit_code == 2 and "no judged KPIs for 2030-01" in credits.output


def test_failing_providers_pack_asks_from_the_funnel(pack, demo_summary):
    home, _paths = pack
    contract_id = demo_summary["failing_contracts"][0]
    result = CliRunner().invoke(cli, ["pack", "--home", str(home), "--contract", contract_id, "--as-of", AS_OF, "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    flat = " ".join(poppler(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    from contracts.benchmark import funnel

    with session_scope(get_settings(home)) as session:
        row = funnel(session, demo_summary["failing_measure"], AS_OF).set_index("contract_id").loc[contract_id]
    assert row["assessment"] == "worse than expected"
    assert (f"Settled accommodation on the first night: {100 * row['rate']:.1f}% over the 12 months to {AS_OF} against "
            f"{100 * row['national']:.1f}% across all areas, below the 99.8% limits: worse than other areas beyond chance") in flat
    assert "This contract against every area, last 12 months" in flat


def test_annex_holds_every_findings_parameters_and_caveats(pack):
    from contracts.models import Finding

    home, paths = pack
    sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
    params, caveats = sheets["finding_parameters"], sheets["caveats"]
    with session_scope(get_settings(home)) as session:
        findings = session.exec(select(Finding).where(Finding.contract_id == CONTRACT)).all()
    assert findings
    for finding in findings:
        stored = json.loads(finding.parameters)
        label = f"{finding.method} / {finding.measure_code}" + (f" / {finding.cohort}" if finding.cohort else "")
        mine = params[params["finding"] == label].set_index("parameter")["value"]
        assert mine["headline"] == stored["headline"], label
        assert mine["result.method"] == stored["result"]["method"]
        assert float(mine["result.alpha"]) == pytest.approx(finding.alpha)
        for key in ("intervention", "n_matched", "mde"):
            if key in stored:
                assert str(mine[key]) == str(stored[key]) or float(mine[key]) == pytest.approx(float(stored[key]))
        listed = caveats.loc[caveats["finding"] == label, "caveat"].tolist()
        assert listed == stored.get("caveats", []), label


def test_the_pack_and_its_json_come_from_one_view(pack):
    """pack.json is the view the pack was rendered from: the same asks in the PDF, the same credits in the annex."""
    from reports.evidence import build_evidence_pack_view

    home, paths = pack
    written = json.loads((home / "out" / "packs" / CONTRACT / AS_OF / "pack.json").read_text())
    with session_scope(get_settings(home)) as session:
        view = build_evidence_pack_view(session, CONTRACT, AS_OF, 0.05).to_dict()
    assert written == view
    flat = " ".join(poppler(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    assert view["asks"] and all(" ".join(ask.split()) in flat for ask in view["asks"])
    credits = pd.read_excel(paths["xlsx"], sheet_name="service_credits")
    assert [f"{m:%Y-%m}" for m in credits["month"]] == [line["month"] for line in view["credit_lines"]]
    assert list(credits["due"]) == pytest.approx([line["due"] for line in view["credit_lines"]])
    assert {k["code"]: k["latest_value"] for k in view["kpis"]} == pytest.approx(
        pd.read_excel(paths["xlsx"], sheet_name="kpis").set_index("code")["latest_value"].to_dict())


def test_the_credit_list_holds_only_months_under_the_contract(pack):
    """A pack as of the contract's third month lists three months of credits, not nine nil months before it."""
    home, _paths = pack
    from contracts.models import Contract

    with session_scope(get_settings(home)) as session:
        contract = session.get(Contract, CONTRACT)
        first = min(j.period for j in session.exec(select(Judgement).where(Judgement.contract_id == CONTRACT)).all())
    start = contract.start_date.strftime("%Y-%m")
    as_of = str(pd.Period(max(first, start), "M") + 2)
    result = CliRunner().invoke(cli, ["pack", "--home", str(home), "--contract", CONTRACT, "--as-of", as_of, "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    months = [f"{m:%Y-%m}" for m in pd.read_excel(paths["xlsx"], sheet_name="service_credits")["month"]]
    expected = [str(pd.Period(as_of, "M") - i) for i in range(11, -1, -1)]
    expected = [m for m in expected if m >= start]
    assert months == expected and len(months) < 12, (start, months)
    flat = " ".join(poppler(["pdftotext", paths["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split())
    assert f"over the last 12 months ({len(months)} of them under this contract, which began in {months[0]})" in flat
