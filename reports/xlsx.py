"""The one XLSX writer for every document (scorecard, evidence pack annex, monthly report).

Cells keep their types: numbers are numbers with a number format, rates are fractions shown as
percentages, dates and times are Excel dates, months (``YYYY-MM``) are first-of-month dates shown as
``yyyy-mm``. Each sheet has a bold frozen header row and an autofilter over its table. Text that a
spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
written as inert text with a leading apostrophe (OWASP "CSV injection"), and every text cell is stored
with the string data type, so nothing in a workbook is ever a formula.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import numpy as np
import pandas as pd
import xlsxwriter

from reports.errors import safe_cell

PERCENT_FORMAT = "0.0%"
INTEGER_FORMAT = "#,##0"
DECIMAL_FORMAT = "#,##0.000"
MONEY_FORMAT = "£#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MONTH_FORMAT = "yyyy-mm"

# Columns holding fractions (0.72 = 72%) unless a caller says otherwise.
PERCENT_COLUMNS = frozenset({
    "value", "target", "ci_low", "ci_high", "rate", "pooled_value", "latest_value", "national", "low_95", "high_95",
    "low_99_8", "high_99_8", "overall", "tolerance", "estimate",
})
MONEY_COLUMNS = frozenset({"due", "credits", "value_gbp", "annual_value_gbp", "amount", "fee", "credits_due", "annual_value"})
MONTH_COLUMNS = frozenset({"period", "month", "latest_period", "as_of", "effective_month"})
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(name: str, used: set[str]) -> str:
    title = _NAME_FORBIDDEN.sub("_", name)[:31] or "sheet"
    base, n = title, 2
    while title.lower() in used:
        suffix = f"_{n}"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(title.lower())
    return title


def _cell_value(value, column: str, percent: Iterable[str], money: Iterable[str]):
    """The value to store and its number format (None for text or general)."""
    if value is None or value is pd.NaT:
        return None, None
    if isinstance(value, (float, np.floating)) and math.isnan(float(value)):
        return None, None
    if isinstance(value, (float, np.floating)) and math.isinf(float(value)):
        return ("unbounded" if value > 0 else "-unbounded"), "@"  # e.g. an interval no data could bound
    if isinstance(value, (bool, np.bool_)):
        return bool(value), None
    if isinstance(value, (int, np.integer)):
        fmt = MONEY_FORMAT if column in money else INTEGER_FORMAT
        return int(value), fmt
    if isinstance(value, (float, np.floating)):
        if column in percent:
            return float(value), PERCENT_FORMAT
        if column in money:
            return float(value), MONEY_FORMAT
        return float(value), INTEGER_FORMAT if float(value).is_integer() else DECIMAL_FORMAT
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None), DATETIME_FORMAT
    if isinstance(value, date):
        return value, DATE_FORMAT
    if isinstance(value, pd.Period):
        return value.to_timestamp().date(), MONTH_FORMAT
    text = str(value)
    if column in MONTH_COLUMNS and _MONTH.match(text):
        return date(int(text[:4]), int(text[5:7]), 1), MONTH_FORMAT
    return safe_cell(text), "@"


def _write_numeric(sheet, j: int, values: list, kind: str, column: str, width: int, percent, money, number_format) -> int:
    """Write one numeric column (numpy dtype kind ``kind``) as :func:`_cell_value` would cell by cell; returns the
    column's width."""
    if kind == "b":
        for i, value in enumerate(values, start=1):
            sheet.write_boolean(i, j, value)
            width = max(width, len(str(value)))
        return width
    if kind in "iu":
        fmt = number_format(MONEY_FORMAT if column in money else INTEGER_FORMAT)
        for i, value in enumerate(values, start=1):
            sheet.write_number(i, j, value, fmt)
            width = max(width, min(len(str(value)), 60))
        return width
    fixed = PERCENT_FORMAT if column in percent else MONEY_FORMAT if column in money else None
    for i, value in enumerate(values, start=1):
        if value != value:  # NaN: an empty cell
            continue
        if math.isinf(value):
            text = "unbounded" if value > 0 else "-unbounded"
            sheet.write_string(i, j, text)
            width = max(width, len(text))
            continue
        sheet.write_number(i, j, value, number_format(fixed or (INTEGER_FORMAT if value.is_integer() else DECIMAL_FORMAT)))
        width = max(width, min(len(str(value)), 60))
    return width


def workbook_bytes(sheets: Mapping[str, pd.DataFrame], *, percent: Iterable[str] = (), money: Iterable[str] = (),
                   not_percent: Iterable[str] = (), created: datetime | None = None) -> bytes:
    """Write ``{sheet name: frame}`` as one XLSX workbook and return its bytes.

    ``percent`` and ``money`` add column names to the defaults (``PERCENT_COLUMNS``, ``MONEY_COLUMNS``);
    ``not_percent`` removes names from the percentage defaults (e.g. an ``estimate`` in points). ``created``
    (e.g. the data cut) is the workbook's creation time in place of the clock, so the same tables give the
    same bytes.

    Examples
    --------
    >>> data = workbook_bytes({"kpis": pd.DataFrame({"measure": ["=cmd"], "value": [0.5]})})
    >>> data[:2] == b"PK"
    True
    """
    percent_columns = (PERCENT_COLUMNS | set(percent)) - set(not_percent)
    money_columns = MONEY_COLUMNS | set(money)
    buffer = io.BytesIO()
    # XlsxWriter (about three times faster than openpyxl here); no string is ever turned into a formula,
    # a URL or a number behind the caller's back.
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    if created is not None:
        book.set_properties({"created": created.replace(tzinfo=None)})
    header = book.add_format({"bold": True, "bg_color": "#F3F2F1"})
    formats: dict[str, object] = {}

    def number_format(fmt: str):
        if fmt not in formats:
            formats[fmt] = book.add_format({"num_format": fmt})
        return formats[fmt]

    used: set[str] = set()
    for name, frame in sheets.items():
        sheet = book.add_worksheet(_sheet_title(name, used))
        if frame is None or frame.empty:
            frame = pd.DataFrame({"note": ["no data"]})
        columns = [str(c) for c in frame.columns]
        for j, column in enumerate(columns):
            sheet.write_string(0, j, safe_cell(column), header)
        widths = [len(c) for c in columns]
        for j, column in enumerate(columns):
            dtype = frame.iloc[:, j].dtype
            kind = dtype.kind if isinstance(dtype, np.dtype) else "O"  # pandas' nullable types hold pd.NA: per cell
            if kind in "fiub":  # a numeric column: its type is known once, not per cell (same cells as below)
                widths[j] = _write_numeric(sheet, j, frame.iloc[:, j].tolist(), kind, column, widths[j],
                                           percent_columns, money_columns, number_format)
                continue
            for i, raw in enumerate(frame.iloc[:, j].tolist(), start=1):
                value, fmt = _cell_value(raw, column, percent_columns, money_columns)
                if value is None:
                    continue
                if fmt == "@":
                    sheet.write_string(i, j, value)  # text stays text: never a formula, whatever it starts with
                elif isinstance(value, bool):
                    sheet.write_boolean(i, j, value)
                elif isinstance(value, (date, datetime)):
                    sheet.write_datetime(i, j, value, number_format(fmt))
                else:
                    sheet.write_number(i, j, value, number_format(fmt) if fmt else None)
                widths[j] = max(widths[j], min(len(str(value)), 60))
        for j, width in enumerate(widths):
            sheet.set_column(j, j, max(8, width + 2))
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(frame), len(columns) - 1)
    book.close()
    return buffer.getvalue()
