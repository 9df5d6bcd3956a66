"""The PDF engines: Chromium (the default where it is installed) and WeasyPrint (the fallback) print the same
document with page numbers and repeated table headers; the setting fails clearly; browsers started by worker
processes are closed when the workers finish."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from reports import pdf
from tests.deps import poppler

ROWS = 160
DOCUMENT = """<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>Engine check</title><style>
@page { size: A4; margin: 16mm 14mm 18mm; @bottom-right { content: "Page " counter(page) " of " counter(pages); } }
table { border-collapse: collapse; width: 100%; } thead { display: table-header-group; } tr { break-inside: avoid; }
</style></head><body><h1>Engine check</h1><table><thead><tr><th>Month</th><th>Completions</th></tr></thead><tbody>
""" + "".join(f"<tr><td>row {i:03d}</td><td>{i * 7 % 100}%</td></tr>" for i in range(ROWS)) + """
</tbody></table></body></html>"""


def _text_of_pages(data: bytes, tmp_path) -> list[str]:
    path = tmp_path / "check.pdf"
    path.write_bytes(data)
    text = poppler(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return [page for page in text.split("\f") if page.strip()]


def _info(data: bytes, tmp_path) -> str:
    path = tmp_path / "info.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("name", ["chromium", "weasyprint"])
def test_each_engine_numbers_pages_and_repeats_table_headers(name, monkeypatch, tmp_path):
    monkeypatch.setenv("CJMONITOR_PDF_ENGINE", name)
    assert pdf.engine() == name
    pages = _text_of_pages(pdf.pdf_bytes(DOCUMENT, tmp_path), tmp_path)
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "Month" in page and "Completions" in page  # the header row on every page
    rows = [line.split()[1] for page in pages for line in page.splitlines() if line.strip().startswith("row ")]
    assert rows == [f"{i:03d}" for i in range(ROWS)]  # every row once, in order, none cut in half
    if name == "chromium":
        assert "Tagged:          yes" in _info(pdf.pdf_bytes(DOCUMENT, tmp_path), tmp_path)


def test_auto_prefers_chromium_and_falls_back_to_weasyprint(monkeypatch, caplog):
    monkeypatch.delenv("CJMONITOR_PDF_ENGINE", raising=False)
    assert pdf.chromium_executable() is not None and pdf.engine() == "chromium"  # .ci/run installs chromium
    monkeypatch.setattr(pdf, "chromium_executable", lambda: None)
    pdf._warn_fallback.cache_clear()
    with caplog.at_level("WARNING", logger="reports.pdf"):
        assert pdf.engine() == "weasyprint"
    assert "apt-get install chromium" in caplog.text


def test_engine_settings_fail_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("CJMONITOR_PDF_ENGINE", "wkhtmltopdf")
    with pytest.raises(pdf.PdfEngineError, match="auto, chromium, weasyprint.*'wkhtmltopdf'"):
        pdf.engine()
    monkeypatch.setenv("CJMONITOR_PDF_ENGINE", "chromium")
    monkeypatch.setenv("CJMONITOR_CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(pdf.PdfEngineError, match="CJMONITOR_CHROMIUM=.*no-such-browser.*does not exist"):
        pdf.engine()
    monkeypatch.delenv("CJMONITOR_CHROMIUM")
    monkeypatch.setattr(pdf, "chromium_executable", lambda: None)
    with pytest.raises(pdf.PdfEngineError, match="no Chromium is installed.*apt-get install chromium"):
        pdf.engine()


def test_engine_errors_are_user_errors_the_cli_prints_without_a_traceback():
    from cjmonitor.errors import USER_ERRORS

    assert issubclass(pdf.PdfEngineError, USER_ERRORS)


def _browsers() -> dict[int, int]:
    """Live Chromium browser processes (not their renderers or helpers) with their parents' ids."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        pid, ppid, stat, args = line.split(None, 3)
        if "chromium" in args and "--type=" not in args and "crashpad" not in args and not stat.startswith("Z"):
            found[int(pid)] = int(ppid)
    return found


def _descendants(root: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _print_in_worker(_: int) -> list[int]:
    """Prints in a pool worker; returns the browsers this worker started (its descendants), for the parent to watch.

    Only these are watched: other tests (another xdist worker, an Airflow task) start browsers of their own."""
    assert pdf.pdf_bytes(DOCUMENT, None).startswith(b"%PDF")
    mine = _descendants(os.getpid())
    return sorted(pid for pid in _browsers() if pid in mine)


def test_forked_workers_start_and_close_their_own_browsers(monkeypatch):
    monkeypatch.setenv("CJMONITOR_PDF_ENGINE", "chromium")
    pdf.pdf_bytes(DOCUMENT, None)  # this process's browser exists before the fork
    parents = {pid for pid, _ in _browsers().items() if pid in _descendants(os.getpid())}
    assert parents, "this process's browser was not found"
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        started = set().union(*pool.map(_print_in_worker, range(4)))
    assert started and not started & parents, "each worker starts its own browser, never the parent's"
    deadline = time.monotonic() + 15
    while started & set(_browsers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not started & set(_browsers()), "a worker's browser outlived the worker"
    assert pdf.pdf_bytes(DOCUMENT, None).startswith(b"%PDF")  # the parent's browser still works
    pdf.close_browser()


@pytest.mark.parametrize("name", ["chromium", "weasyprint"])
def test_the_same_document_prints_the_same_bytes_dated_by_the_data(name, monkeypatch, tmp_path):
    from datetime import datetime

    monkeypatch.setenv("CJMONITOR_PDF_ENGINE", name)
    cut = datetime(2025, 12, 3, 9, 15)
    first = pdf.pdf_bytes(DOCUMENT, tmp_path, created=cut)
    time.sleep(1.1)  # the clock moves on; the bytes do not
    assert pdf.pdf_bytes(DOCUMENT, tmp_path, created=cut) == first
    if name == "chromium":  # WeasyPrint writes no dates unless the document's metadata names some
        assert "Dec  3 09:15:00 2025" in _info(first, tmp_path).replace("CreationDate:", "")
