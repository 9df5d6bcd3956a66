"""PDF through WeasyPrint: one place that turns a rendered HTML document into PDF bytes."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path


@cache
def _font_configuration():
    """One font configuration per process: building it (fontconfig, font loading) took about a quarter of a
    scorecard's PDF time when every document made its own."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def pdf_bytes(html: str, base_dir: Path) -> bytes:
    """Render ``html`` (relative links resolved against ``base_dir``) to PDF with its print CSS."""
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS properties it ignores
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter at INFO
    fonts = _font_configuration()
    return HTML(string=html, base_url=str(base_dir)).render(font_config=fonts).write_pdf()
