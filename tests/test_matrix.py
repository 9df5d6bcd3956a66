"""The summary matrices of the demo world: one row per contract x KPI, sorted and filtered pages without
JavaScript, every row linked to a scorecard that exists, the national matrix by provider, XLSX with filters."""

from __future__ import annotations

import re
import zipfile

from sqlmodel import select

from cjmonitor.db import session_scope
from contracts.models import Contract, Judgement
from reports.matrix import VARIANTS


def test_area_and_national_matrices(demo_home, demo_settings):
    out = demo_home / "out"
    with session_scope(demo_settings) as session:
        judged = session.exec(select(Judgement).where(Judgement.period == "2025-12")).all()
        contracts = {c.id: c for c in session.exec(select(Contract)).all()}
    national = out / "matrix" / "national" / "2025-12"
    assert {p.stem for p in national.glob("*.html")} == {stem for stem, _, _ in VARIANTS}
    html = (national / "index.html").read_text()
    assert "<script" not in html
    links = re.findall(r'<a href="\.\./\.\./\.\./(scorecards/2025-12/[^"]+\.html)">', html)
    assert len(links) == len(judged)  # one row per contract x KPI judged this month
    assert all((out / link).exists() for link in links)
    providers = {contracts[j.contract_id].provider_id for j in judged}
    assert html.count('<h2 id="provider-') == len(providers)
    # A filter shows a subset; a sort shows every row.
    needs = (national / "needs-action.html").read_text()
    assert 0 < needs.count('href="../../../scorecards/') < len(links)
    assert (national / "by-variation.html").read_text().count('href="../../../scorecards/') == len(links)
    # Every row carries both icons as words (never colour alone).
    assert html.count('class="mdc-icon"') >= len(links)
    # Each area's matrix holds that area's rows; the monthly report embeds it and links to the pages.
    area = sorted((out / "matrix").glob("E*/2025-12/index.html"))[0]
    code = area.parent.parent.name
    rows = area.read_text().count('href="../../../scorecards/')
    assert rows == sum(contracts[j.contract_id].area_code == code for j in judged)
    report = (out / "reports" / code / "2025-12" / "monthly.html").read_text()
    assert f"../../../matrix/{code}/2025-12/index.html" in report and report.count('href="../../../scorecards/') >= rows
    index = (out / "index.html").read_text()
    assert "matrix/national/2025-12/index.html" in index and f"matrix/{code}/2025-12/index.html" in index
    with zipfile.ZipFile(national / "matrix.xlsx") as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<autoFilter" in sheet


def test_rows_from_the_scorecard_views_equal_rows_computed_again(demo_home, demo_settings):
    import json

    from reports.matrix import matrix_rows

    views = {p.stem: json.loads(p.read_text()) for p in (demo_home / "out" / "scorecards" / "2025-12").glob("*.json")}
    assert views
    with session_scope(demo_settings) as session:
        ids = sorted(views)
        assert matrix_rows(session, ids, "2025-12", demo_settings.alpha, views=views) == \
            matrix_rows(session, ids, "2025-12", demo_settings.alpha)
        stale = {k: {**v, "data_cut": "long ago"} for k, v in views.items()}
        assert matrix_rows(session, ids[:1], "2025-12", demo_settings.alpha, views=stale) == \
            matrix_rows(session, ids[:1], "2025-12", demo_settings.alpha)
