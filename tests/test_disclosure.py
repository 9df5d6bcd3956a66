"""No suppressed value can be recovered from any table of a rendered monthly report (HTML and XLSX).

An intruder knows everything a table publishes: each group's counts unless suppressed, the total row,
the rates (rounded as printed), the ratio to the overall rate, and that counts are whole, non-negative and
a numerator never exceeds its denominator. For every suppressed cell we ask a linear programme for the
smallest and largest value consistent with all of that; the cell is protected only if the range holds
more than one whole number. A unit test shows the intruder does recover a count when a ratio is left
published beside suppressed counts, so this check can fail.
"""

from __future__ import annotations

import math
import sqlite3
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from cjmonitor import pipeline
from cjmonitor.settings import get_settings
from reports.suppression import SUPPRESSED, suppress_breakdown

PERIOD = "2025-12"


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts (header and footer rows included)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _number(text: str) -> float | None:
    text = str(text).replace(",", "").strip()
    if text in ("", SUPPRESSED):
        return None
    percent = text.endswith("%")
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        return None
    return value / 100 if percent else value


def intruder_ranges(rows: list[dict], total: dict, *, rate_step: float, ratio_step: float) -> dict:
    """Feasible (low, high) of each suppressed count given what the table publishes.

    ``rows`` and ``total`` hold ``completed``, ``ended`` (numbers or ``[c]``), ``rate`` and ``ratio``
    (fractions or ``[c]``/None); ``rate_step`` and ``ratio_step`` are the rounding of printed rates and ratios.
    """
    n = len(rows)
    index = {(i, k): 2 * i + (k == "ended") for i in range(n) for k in ("completed", "ended")}
    bounds = []
    for row in rows:
        for k in ("completed", "ended"):
            value = _number(row[k]) if isinstance(row[k], str) else row[k]
            bounds.append((value, value) if value is not None else (0, None))
    a_eq, b_eq = [], []
    for k in ("completed", "ended"):
        line = np.zeros(2 * n)
        for i in range(n):
            line[index[(i, k)]] = 1
        a_eq.append(line)
        b_eq.append(float(total[k]))
    a_ub, b_ub = [], []
    overall = float(total["completed"]) / float(total["ended"])
    for i, row in enumerate(rows):
        line = np.zeros(2 * n)  # completed <= ended
        line[index[(i, "completed")]], line[index[(i, "ended")]] = 1, -1
        a_ub.append(line)
        b_ub.append(0)
        intervals = []
        rate = row.get("rate")
        if isinstance(rate, (int, float)) and not math.isnan(rate):
            intervals.append((rate - rate_step / 2, rate + rate_step / 2))
        ratio = row.get("ratio")
        if isinstance(ratio, (int, float)) and not math.isnan(ratio):
            intervals.append(((ratio - ratio_step / 2) * overall, (ratio + ratio_step / 2) * overall))
        for low, high in intervals:  # low * ended <= completed <= high * ended
            upper = np.zeros(2 * n)
            upper[index[(i, "completed")]], upper[index[(i, "ended")]] = 1, -high
            lower = np.zeros(2 * n)
            lower[index[(i, "completed")]], lower[index[(i, "ended")]] = -1, low
            a_ub += [upper, lower]
            b_ub += [0, 0]
    ranges = {}
    for (i, k), j in index.items():
        if bounds[j][0] is not None and bounds[j][0] == bounds[j][1]:
            continue
        found = []
        for sign in (1, -1):
            c = np.zeros(2 * n)
            c[j] = sign
            result = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
            assert result.status == 0, f"the published table is inconsistent: {result.message}"
            found.append(sign * result.fun)
        ranges[(i, k)] = (found[0], found[1])
    return ranges


def assert_protected(ranges: dict, where: str) -> None:
    for (i, k), (low, high) in ranges.items():
        assert high - low > 1e-6, f"{where}: row {i} {k} is pinned to {low:g} by the published figures"
        whole = math.floor(high + 1e-6) - math.ceil(low - 1e-6) + 1
        assert whole >= 2, f"{where}: row {i} {k} can only be {math.ceil(low - 1e-6)} (range {low:.3f} to {high:.3f})"


def test_intruder_recovers_a_count_when_a_ratio_is_left_published():
    # One person in four completed in the small group: its ratio to the overall rate, with the total,
    # pins its denominator to 4 (0.25 x e + 0.8 x (29 - e) = 21 within the rounding of the ratios).
    rows = [{"completed": 1, "ended": 4}, {"completed": 70, "ended": 90}, {"completed": 20, "ended": 25}]
    total = {"completed": 91, "ended": 119}
    overall = 91 / 119
    shown = [{"completed": SUPPRESSED, "ended": SUPPRESSED, "rate": None, "ratio": round(0.25 / overall, 2)},
             {"completed": 70, "ended": 90, "rate": 70 / 90, "ratio": None},
             {"completed": SUPPRESSED, "ended": SUPPRESSED, "rate": None, "ratio": round(0.8 / overall, 2)}]
    with pytest.raises(AssertionError, match="can only be|pinned"):
        assert_protected(intruder_ranges(shown, total, rate_step=0.001, ratio_step=0.01), "leaky table")
    frame = pd.DataFrame({"group": ["F", "M", "X"], "completed": [r["completed"] for r in rows],
                          "ended": [r["ended"] for r in rows], "rate": [0.25, 70 / 90, 0.8], "ci_low": 0.0, "ci_high": 1.0,
                          "ratio_to_overall": [0.33, 1.02, 1.05]})
    fixed = suppress_breakdown(frame, "completed", "ended").to_dict("records")
    assert fixed[0]["ratio_to_overall"] == SUPPRESSED and fixed[2]["ratio_to_overall"] == SUPPRESSED
    published = [{"completed": r["completed"], "ended": r["ended"], "rate": None if r["rate"] == SUPPRESSED else r["rate"],
                  "ratio": None if r["ratio_to_overall"] == SUPPRESSED else r["ratio_to_overall"]} for r in fixed]
    assert_protected(intruder_ranges(published, total, rate_step=0.001, ratio_step=0.01), "suppressed table")


@pytest.fixture(scope="module", params=[5, 40], ids=["threshold-5", "threshold-40"])
def reports(request, demo_home, tmp_path_factory, monkeypatch_module):
    home = tmp_path_factory.mktemp(f"disclosure-{request.param}")
    (home / "var").mkdir()
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(home / "var" / "cjmonitor.db") as target:
        source.backup(target)
    monkeypatch_module.setenv("CJMONITOR_SUPPRESSION_THRESHOLD", str(request.param))
    settings = get_settings(home)
    assert settings.suppression_threshold == request.param
    return request.param, [pipeline.monthly_report(settings, code, PERIOD) for code in pipeline.area_codes(settings)]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _breakdown_tables_html(path: str) -> list[tuple[list[dict], dict]]:
    parser = _Tables()
    parser.feed(open(path).read())
    found = []
    for table in parser.tables:
        header = table[0]
        if header[:3] != ["Group", "Completed", "Ended"]:
            for row in table[1:]:
                assert SUPPRESSED not in row, f"a suppressed cell in a table this check does not model: {header}"
            continue
        body = [dict(zip(["group", "completed", "ended", "rate", "interval", "ratio"], r, strict=True)) for r in table[1:]]
        total = next(r for r in body if r["group"] == "Total")
        rows = [r for r in body if r["group"] != "Total"]
        parsed = [{"completed": r["completed"], "ended": r["ended"], "rate": _number(r["rate"]), "ratio": _number(r["ratio"]),
                   "interval": r["interval"]} for r in rows]
        found.append((parsed, {"completed": _number(total["completed"]), "ended": _number(total["ended"])}))
    return found


def test_no_suppressed_count_is_recoverable_from_the_html(reports):
    threshold, written = reports
    checked = 0
    for paths in written:
        for rows, total in _breakdown_tables_html(paths["html"]):
            for row in rows:
                if SUPPRESSED in (row["completed"], row["ended"]):
                    assert row["rate"] is None and row["ratio"] is None and row["interval"] == SUPPRESSED, \
                        f"{paths['html']}: a figure derived from a suppressed count is published: {row}"
                else:
                    assert all(_number(row[k]) == 0 or _number(row[k]) >= threshold for k in ("completed", "ended"))
            ranges = intruder_ranges(rows, total, rate_step=0.001, ratio_step=0.01)
            assert_protected(ranges, paths["html"])
            checked += len(ranges)
    if threshold == 40:
        assert checked > 0, "the high threshold must suppress something, or this test checks nothing"


def test_no_suppressed_count_is_recoverable_from_the_xlsx(reports):
    threshold, written = reports
    checked = 0
    for paths in written:
        sheets = pd.read_excel(paths["xlsx"], sheet_name=None)
        for name, frame in sheets.items():
            if not name.startswith("by_"):
                assert not (frame.astype(str) == SUPPRESSED).any().any(), f"{name}: suppressed cell in an unmodelled sheet"
                continue
            label = frame.columns[0]
            total = frame[frame[label] == "Total"].iloc[0]
            rows = []
            for _, r in frame[frame[label] != "Total"].iterrows():
                rate = None if r["rate"] == SUPPRESSED else float(r["rate"])
                ratio = None if r["ratio_to_overall"] == SUPPRESSED else float(r["ratio_to_overall"])
                rows.append({"completed": r["completed"] if r["completed"] == SUPPRESSED else float(r["completed"]),
                             "ended": r["ended"] if r["ended"] == SUPPRESSED else float(r["ended"]), "rate": rate, "ratio": ratio})
            ranges = intruder_ranges(rows, {"completed": float(total["completed"]), "ended": float(total["ended"])},
                                     rate_step=1e-9, ratio_step=0.01)
            assert_protected(ranges, f"{paths['xlsx']}:{name}")
            checked += len(ranges)
    if threshold == 40:
        assert checked > 0, "the high threshold must suppress something, or this test checks nothing"


def test_threshold_setting_is_validated(monkeypatch):
    from cjmonitor.errors import ConfigError

    monkeypatch.setenv("CJMONITOR_SUPPRESSION_THRESHOLD", "five")
    with pytest.raises(ConfigError, match="whole number"):
        get_settings("/tmp")
    monkeypatch.setenv("CJMONITOR_SUPPRESSION_THRESHOLD", "0")
    with pytest.raises(ConfigError, match="at least 1"):
        get_settings("/tmp")
    monkeypatch.delenv("CJMONITOR_SUPPRESSION_THRESHOLD")
    assert get_settings("/tmp").suppression_threshold == 5


