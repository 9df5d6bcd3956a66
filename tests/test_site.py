"""The static site is out/ itself: index.html links every document by area, contract and period, with relative
links that work from the file system and from any static web server."""

from __future__ import annotations

import functools
import http.server
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.browser import chromium_page


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def _walk(out: Path) -> tuple[set[Path], list[str]]:
    """Every file reachable from out/index.html by relative links, and every link that points nowhere."""
    seen, broken, todo = set(), [], [out / "index.html"]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        if page.suffix != ".html":
            continue
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                broken.append(f"{page.relative_to(out)} links outside the site: {link}")
                continue
            if not parts.path:
                continue  # an anchor on the same page
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_relative_to(out.resolve()) or not target.is_file():
                broken.append(f"{page.relative_to(out)} -> {link}")
            else:
                todo.append(target)
    return seen, broken


def test_every_link_from_the_index_reaches_a_file(demo_home):
    out = (demo_home / "out").resolve()
    reached, broken = _walk(out)
    assert broken == []
    relative = {p.relative_to(out).as_posix() for p in reached}
    for folder in ("scorecards/", "packs/", "reports/"):
        for suffix in (".html", ".pdf", ".xlsx"):
            assert any(r.startswith(folder) and r.endswith(suffix) for r in relative), f"no {suffix} under {folder} is linked"
    written = {p.relative_to(out).as_posix() for p in out.glob("scorecards/*/*") if p.suffix in (".html", ".pdf", ".xlsx")}
    assert written <= relative, f"documents not linked from the index: {sorted(written - relative)[:5]}"
    assert any(r.startswith("data-quality/") for r in relative) and "specs/index.html" in relative


@pytest.fixture
def served(demo_home):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(demo_home / "out"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_index_loads_from_a_static_server_without_failed_requests(served):
    failures = []
    with chromium_page() as page:
        page.on("requestfailed", lambda request: failures.append(f"{request.url}: {request.failure}"))
        page.on("response", lambda response: response.status >= 400 and failures.append(f"{response.url}: {response.status}"))
        response = page.goto(f"{served}/index.html")
        assert response is not None and response.status == 200
        assert page.locator("h1").inner_text().startswith("Commissioning documents")
        link = page.locator("a", has_text="HTML").first
        link.click()
        page.wait_for_load_state()
        assert page.url.startswith(served) and page.url.endswith(".html")
        page.go_back()
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert failures == []
    import urllib.request

    bad = []
    for url in sorted(set(links)):
        if url.startswith(served):
            with urllib.request.urlopen(url.split("#")[0]) as reply:  # noqa: S310 (loopback server of this test)
                if reply.status != 200:
                    bad.append(url)
    assert bad == []
