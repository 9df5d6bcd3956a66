"""PDF: one place that turns a rendered HTML document into PDF bytes with its print CSS.

Two engines lay the same HTML and print CSS out (page size and margins, page numbers in ``@page`` margin
boxes, repeated table headers, charts never split):

- **Chromium** (headless, driven by Playwright): about four times faster than WeasyPrint on these documents
  (a seven-page scorecard in about 0.4 CPU-seconds, against 2.5), and its PDFs are tagged (a structure tree
  screen readers follow) with bookmarks from the headings. One browser per process is started on first use
  and reused for every document that process renders; JavaScript is off and the page is offline.
- **WeasyPrint** (pure Python): the fallback where no Chromium is installed.

``CJMONITOR_PDF_ENGINE`` chooses: ``auto`` (default: Chromium when it is installed, else WeasyPrint, with a
warning), ``chromium`` (fail if it is missing) or ``weasyprint``. ``CJMONITOR_CHROMIUM`` names the browser
executable when it is not ``chromium`` on the ``PATH`` (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

ENGINES = ("auto", "chromium", "weasyprint")
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions",
]
RENDER_TIMEOUT_MS = 120_000
PRINT_WIDTH_PX = 688  # (210 - 2 x 14) mm at 96 px an inch


class PdfEngineError(RuntimeError):
    """The configured PDF engine cannot run here; the message says what to install or set."""


def chromium_executable() -> str | None:
    """The Chromium to use: ``CJMONITOR_CHROMIUM`` if set (it must exist), else ``chromium`` on the PATH."""
    configured = os.environ.get("CJMONITOR_CHROMIUM")
    if configured:
        if not Path(configured).is_file():
            raise PdfEngineError(f"CJMONITOR_CHROMIUM={configured!r} does not exist: set it to the Chromium "
                                 "executable, or unset it to use `chromium` from the PATH")
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def engine() -> str:
    """The engine documents are printed with in this process: ``chromium`` or ``weasyprint``."""
    chosen = os.environ.get("CJMONITOR_PDF_ENGINE", "auto").strip().lower() or "auto"
    if chosen not in ENGINES:
        raise PdfEngineError(f"CJMONITOR_PDF_ENGINE must be one of {', '.join(ENGINES)}, got {chosen!r}")
    if chosen == "weasyprint":
        return chosen
    if chromium_executable() is None:
        if chosen == "chromium":
            raise PdfEngineError("CJMONITOR_PDF_ENGINE=chromium but no Chromium is installed: install it "
                                 "(Debian: `apt-get install chromium`) or set CJMONITOR_CHROMIUM to its path")
        _warn_fallback()
        return "weasyprint"
    return "chromium"


@cache
def _warn_fallback() -> None:
    log.warning("no Chromium found: PDFs are laid out by WeasyPrint, about four times slower. Install Chromium "
                "(Debian: `apt-get install chromium`) or set CJMONITOR_CHROMIUM to its path")


class _Browser:
    """One headless Chromium for this process: a single offline page, JavaScript off, reused per document."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self.pid = os.getpid()
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=executable, headless=True,
                                                             args=CHROMIUM_FLAGS)
            # The page is laid out as it will be printed (print media, the width of an A4 page less the print
            # CSS's 14 mm side margins), so printing reuses that layout: about a fifth less CPU per document.
            context = self._browser.new_context(java_script_enabled=False, offline=True,
                                                viewport={"width": PRINT_WIDTH_PX, "height": 1000})
            self._page = context.new_page()
            self._page.emulate_media(media="print")
            self._page.set_default_timeout(RENDER_TIMEOUT_MS)
        except Exception:
            self._playwright.stop()
            raise

    def pdf(self, html: str) -> bytes:
        self._page.set_content(html, wait_until="load")
        return self._page.pdf(prefer_css_page_size=True, print_background=True, tagged=True, outline=True)

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()


_browser: _Browser | None = None


def _chromium() -> _Browser:
    global _browser
    if _browser is not None and _browser.pid != os.getpid():
        _browser = None  # inherited through fork: the parent's browser, not ours to use or close
    if _browser is None:
        import multiprocessing.util

        executable = chromium_executable()
        if executable is None:
            raise PdfEngineError("no Chromium is installed (Debian: `apt-get install chromium`)")
        _browser = _Browser(executable)
        # Runs at interpreter exit and also when a multiprocessing worker finishes (which skips atexit).
        multiprocessing.util.Finalize(None, close_browser, exitpriority=100)
    return _browser


def close_browser() -> None:
    """Close this process's browser, if it started one (a forked child leaves its parent's alone)."""
    global _browser
    browser, _browser = _browser, None
    if browser is not None and browser.pid == os.getpid():
        browser.close()


@cache
def _font_configuration():
    """One font configuration per process: building it (fontconfig, font loading) took about a quarter of a
    scorecard's PDF time when every document made its own."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def _weasyprint(html: str, base_dir: Path) -> bytes:
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS properties it ignores
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter at INFO
    return HTML(string=html, base_url=str(base_dir)).render(font_config=_font_configuration()).write_pdf()


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) ?\(D:\d{14}(Z|[+-]\d{2}'\d{2}'?)?\)")


def _stamp_dates(pdf: bytes, created: datetime) -> bytes:
    """Set the PDF's creation and modification dates to ``created`` (naive means UTC), rewriting each in place
    with the same number of bytes so the cross-reference offsets stay right."""
    moment = (created if created.tzinfo else created.replace(tzinfo=UTC)).astimezone(UTC)

    def replace(match: re.Match) -> bytes:
        zone = match.group(2) or b""
        suffix = {0: b"", 1: b"Z", 6: b"+00'00", 7: b"+00'00'"}.get(len(zone))
        if suffix is None:
            return match.group(0)
        new = match.group(0).split(b"(")[0] + b"(D:" + moment.strftime("%Y%m%d%H%M%S").encode() + suffix + b")"
        return new if len(new) == len(match.group(0)) else match.group(0)

    return _PDF_DATE.sub(replace, pdf)


_NODE_ID = re.compile(rb"\(node(\d{8})\)")


def _renumber_nodes(pdf: bytes) -> bytes:
    """Chromium names the structure elements of a tagged PDF (table header cells) after DOM node numbers that
    keep counting across the documents one page prints; number them from 1 in each document instead (same
    length, so the cross-reference offsets stay right)."""
    numbers: dict[bytes, bytes] = {}

    def replace(match: re.Match) -> bytes:
        number = numbers.setdefault(match.group(1), b"%08d" % (len(numbers) + 1))
        return b"(node" + number + b")"

    return _NODE_ID.sub(replace, pdf)


def pdf_bytes(html: str, base_dir: Path | None, created: datetime | None = None) -> bytes:
    """Render ``html`` to PDF with its print CSS. The documents are self-contained (inline CSS and SVG);
    ``base_dir`` resolves any relative link for WeasyPrint. ``created`` (e.g. the data cut) replaces the
    clock in the PDF's dates, so the same document rendered again has the same bytes."""
    if engine() == "weasyprint":
        data = _weasyprint(html, base_dir or Path.cwd())
    else:
        try:
            data = _renumber_nodes(_chromium().pdf(html))
        except Exception:
            close_browser()  # a crashed or hung browser is not reused: the next document starts a fresh one
            raise
    return _stamp_dates(data, created) if created is not None else data
