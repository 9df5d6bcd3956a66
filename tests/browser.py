"""Headless Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).

`scripts/system-deps.sh` (run by `make test`) installs the chromium package as root; where it cannot be had the
page tests skip saying so, except under CI=true, where they fail (tests/deps.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from reports.pdf import CHROMIUM_FLAGS, chromium_executable
from tests.deps import missing


def chromium_path() -> str:
    path = chromium_executable()
    if path is None:
        missing("Debian's chromium", "chromium")
    return path


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator:
    """A Playwright page in a fresh headless Chromium with an empty profile."""
    from playwright.sync_api import sync_playwright

    from reports.pdf import close_browser

    close_browser()  # Playwright's sync API runs one instance per thread: the PDF engine's browser goes first
    with tempfile.TemporaryDirectory(prefix="cjmonitor-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()


def axe_serious_violations(page) -> list[dict]:
    """Run axe-core (bundled by axe-playwright-python) on the loaded page; the serious and critical violations."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response.get("violations", [])
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n.get("target") for n in v.get("nodes", [])][:5]}
        for v in violations if v.get("impact") in ("serious", "critical")
    ]
