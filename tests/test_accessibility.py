"""Every document type's HTML, opened in headless Chromium: a screenshot, and no serious or critical axe-core violation."""

from __future__ import annotations

import pytest

from tests.browser import axe_serious_violations, chromium_page

DOCUMENTS = {
    "scorecard": "scorecards/2025-12/CRC-E23000005.html",
    "evidence_pack": "packs/*/2025-12/pack.html",
    "monthly_report": "reports/*/2025-12/monthly.html",
    "lcjb_pack": "lcjb/*/2025-12/lcjb.html",
    "index": "index.html",
    "error_report": "data-quality/*/*.errors.html",
    "area_matrix": "matrix/E*/2025-12/index.html",
    "national_matrix": "matrix/national/2025-12/by-action.html",
}


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_document_is_accessible(kind, demo_home, tmp_path):
    matches = sorted((demo_home / "out").glob(DOCUMENTS[kind]))
    assert matches, f"no {kind} was written under {demo_home / 'out'}"
    path = matches[0]
    with chromium_page() as page:
        page.goto(path.as_uri())
        shot = tmp_path / f"{kind}.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
        assert page.locator("h1").count() == 1, "one main heading"
        violations = axe_serious_violations(page)
    assert violations == [], f"{kind} ({path.name}): {violations}"
