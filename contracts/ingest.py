"""Land, validate and load providers' returns.

For every file: the bytes are archived under their sha256 before anything else;
bytes already received are recognised and not loaded twice; the file is checked
against its declared spec (``contracts.returns``); a file with any error is
rejected whole (a ``rejected`` submission with every problem listed, nothing
loaded); a clean file is loaded in one transaction as a new version, which
becomes the current one. Person identifiers are replaced by a keyed hash at
load; the raw archive is the only place raw identifiers exist.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import operator
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, update
from sqlmodel import Session, select

from contracts import bulk
from contracts.bulk import load_records
from contracts.catalogue import MEASURES_BY_CODE
from contracts.mapping import MappingReadError, ReturnMapping, apply_mapping, load_mappings, propose_mapping
from contracts.models import RECORD_TABLES, Contract, Provider, Submission, ValidationIssue
from contracts.returns import (
    FILE_NAME_RE,
    RETURN_TYPES,
    SPECS,
    SYSTEM_RETURN_TYPE,
    ReturnSpec,
    parse_file_name,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Issue:
    severity: str  # error, warning, info (advice: what a mapping would read)
    row: int | None  # spreadsheet row (header is row 1)
    column: str | None
    code: str
    message: str


@dataclass
class IngestOutcome:
    file_name: str
    status: str  # accepted, rejected, duplicate, unrecognised
    submission_id: int | None = None
    provider_id: str | None = None
    return_type: str | None = None
    period: str | None = None
    version: int | None = None
    rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    message: str = ""
    proposed_mapping: str | None = None  # YAML for the register when the file does not match its template
    mapping_sha256: str = ""  # the provider's mapping the file was read through ("" = the template)

    @property
    def errors(self) -> int:
        return sum(1 for issue in self.issues if issue.severity == "error")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive(path: Path, archive_dir: Path, sha: str) -> Path:
    """Copy the received bytes into the append-only archive (never overwritten)."""
    target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, temporary)
        if sha256_file(temporary) != sha:
            temporary.unlink()
            raise OSError(f"{path.name}: the archived copy does not match the received bytes; try again")
        temporary.replace(target)
        target.chmod(0o440)
    return target


_PAD_INNER = bytes(x ^ 0x36 for x in range(256))
_PAD_OUTER = bytes(x ^ 0x5C for x in range(256))


def _keyed_hash(key: bytes):
    """HMAC-SHA256 of a text, 128 bits as hex: RFC 2104 (as ``hmac.new``), with the two padded-key SHA-256
    states computed once and copied for each value, rather than set up again from the key each time."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner, outer = hashlib.sha256(key.translate(_PAD_INNER)), hashlib.sha256(key.translate(_PAD_OUTER))

    def digest(value: str, inner_copy=inner.copy, outer_copy=outer.copy) -> str:
        state = inner_copy()
        state.update(value.encode("utf-8"))
        final = outer_copy()
        final.update(state.digest())
        return final.digest()[:16].hex()

    return digest


def pseudonymise(values: pd.Series, key: bytes) -> list[str]:
    """Keyed hash (HMAC-SHA256, 128 bits as hex) of each raw identifier; each distinct identifier is hashed once."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    hashed = np.array(list(map(_keyed_hash(key), uniques)), dtype=object)
    return hashed[codes].tolist()


# ------------------------------------------------------------------ reading and checking


class ReadProblem(Exception):
    """A file that cannot be read as a table at all; ``code`` and an actionable message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


DEFAULT_MAX_UNPACKED_BYTES = 500 * 1024 * 1024


def _cell_text(cell) -> str:
    """Excel cells as the text a CSV would carry: real date cells become YYYY-MM-DD (HH:MM when timed)."""
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d") if (cell.hour, cell.minute, cell.second) == (0, 0, 0) else cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.strftime("%Y-%m-%d")
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _table(rows: list[list[str]]) -> pd.DataFrame:
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ReadProblem("no_header", "the first row is blank: the header row (column names) must come first")
    header = [str(cell).strip() for cell in rows[0]]
    seen, duplicated = set(), []
    for name in header:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise ReadProblem("duplicate_column", f"the header row names {', '.join(repr(d) for d in duplicated)} more than once: "
                                              "keep one column of each name")
    if "" in header:
        position = header.index("") + 1
        raise ReadProblem("blank_column_name", f"column {position} of the header row has no name: name it or delete the column")
    body = [row for row in rows[1:] if any(str(cell).strip() for cell in row)]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > len(header) and any(str(cell).strip() for cell in row[len(header):]):
            raise ReadProblem("ragged_row", f"row {number} has {len(row)} cells but the header has {len(header)}: "
                                            "check for an unquoted comma or a stray cell")
    frame = pd.DataFrame([[str(c).strip() for c in (row + [""] * len(header))[: len(header)]] for row in body],
                         columns=header, dtype=object)
    return frame.astype(str) if not frame.empty else pd.DataFrame(columns=header, dtype=str)


def read_return(path: Path, max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> tuple[pd.DataFrame, list[Issue]]:
    """Every cell as text, blanks as empty strings: types are checked against the spec, not guessed."""
    if path.stat().st_size == 0:
        raise ReadProblem("empty_file", "the file is empty (0 bytes): export the return again and resend it")
    notes: list[Issue] = []
    if path.suffix.lower() == ".xlsx":
        if not zipfile.is_zipfile(path):
            raise ReadProblem("not_xlsx", "this is not a valid Excel .xlsx workbook (it may be truncated or another format): "
                                          "save it again as .xlsx, or send CSV")
        with zipfile.ZipFile(path) as archive_file:
            unpacked = sum(info.file_size for info in archive_file.infolist())
        if unpacked > max_unpacked_bytes:
            raise ReadProblem("unpacks_too_large", f"the workbook unpacks to {unpacked / 1e6:,.0f} MB, over the "
                                                   f"{max_unpacked_bytes / 1e6:,.0f} MB limit: send the return as CSV")
        try:
            from openpyxl import load_workbook

            workbook = load_workbook(path, read_only=True, data_only=False)
            sheets = workbook.sheetnames
            rows = [[_cell_text(cell) for cell in row] for row in workbook[sheets[0]].iter_rows(values_only=True)]
            workbook.close()
        except Exception as exc:  # any failure to parse the workbook is the sender's to fix; say what it was
            raise ReadProblem("unreadable_xlsx", f"the workbook could not be read ({type(exc).__name__}): "
                                                 "open it in Excel, save it again as .xlsx and resend") from None
        if len(sheets) > 1:
            notes.append(Issue("warning", None, None, "extra_sheets",
                               f"only the first sheet ({sheets[0]!r}) was read; the workbook also has {', '.join(map(repr, sheets[1:]))}"))
        return _table(rows), notes
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ReadProblem("not_utf8", f"the file is not UTF-8 text (first unreadable byte on line {line}): "
                                      "save it as 'CSV UTF-8 (Comma delimited)' and resend") from None
    if "\x00" in text:
        raise ReadProblem("binary", "the file holds binary data, not CSV text: export the return as CSV and resend")
    first = _first_line(text) if text and not text.isspace() else ""
    if first.count(";") > first.count(",") or (first.count("\t") > first.count(",")):
        separator = "';'" if first.count(";") > first.count("\t") else "tabs"
        raise ReadProblem("wrong_separator", f"the file is separated by {separator}, not commas: "
                                             "save it as 'CSV UTF-8 (Comma delimited)' and resend")
    header_rows = list(csv.reader(io.StringIO(first + "\n")))
    _table(header_rows)  # header checks (blank, duplicated or unnamed columns) before reading the body
    width = len(header_rows[0])
    if _may_have_stray_cells(raw, width):
        _check_cells_strictly(text, width)
    del text  # pandas reads the bytes; the text was needed for the checks above
    try:
        frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False, na_filter=False,
                            skip_blank_lines=True, engine="c", index_col=False)
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().replace("\n", " ")
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
        if match:
            raise ReadProblem("ragged_row", f"row {match.group(2)} has {match.group(3)} cells but the header has "
                                            f"{match.group(1)}: check for an unquoted comma or a stray cell") from None
        raise ReadProblem("malformed_csv", f"the CSV could not be parsed ({detail}): check for unbalanced quotes") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        values = frame[column].to_numpy(dtype=object)
        stripped = [value.strip() for value in values]  # str.strip returns the same object when there is nothing to strip
        if any(map(operator.is_not, stripped, values)):
            frame[column] = pd.Series(stripped, index=frame.index, dtype=frame[column].dtype)
    return frame, notes


def _first_line(text: str) -> str:
    """``text.splitlines()[0]`` without splitting the whole file."""
    size = 4096
    while True:
        lines = text[:size].splitlines()
        if len(lines) > 1 or size >= len(text):
            return lines[0]
        size *= 4


def _may_have_stray_cells(raw: bytes, width: int) -> bool:
    """False when the strict ``csv`` reading of ``_check_cells_strictly`` provably finds nothing: no quote
    character (so no quoting error, and records are lines), every carriage return ends a line, no line as long
    as the csv module's field limit, and no line with more than ``width`` cells. Otherwise True, and the file is
    read strictly, so that its messages are the csv module's, as before."""
    if b'"' in raw or (b"\r" in raw and raw.count(b"\r") != raw.count(b"\r\n")):
        return True
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.concatenate((np.flatnonzero(data == 10), [len(data)]))  # each line's end (the last may have no newline)
    if int(np.diff(ends, prepend=-1).max()) >= csv.field_size_limit():
        return True
    commas_before_end = np.searchsorted(np.flatnonzero(data == 44), ends)
    return bool((np.diff(commas_before_end, prepend=0) >= width).any())


def _check_cells_strictly(text: str, width: int) -> None:
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text), strict=True), start=1):
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                raise ReadProblem("ragged_row", f"row {number} has {len(row)} cells but the header has {width}: "
                                                "check for an unquoted comma or a stray cell")
    except csv.Error as exc:
        raise ReadProblem("malformed_csv", f"the CSV could not be parsed ({exc}): check for unbalanced quotes") from None


def _rows(mask: np.ndarray | pd.Series) -> list[int]:
    return [int(i) + 2 for i in np.flatnonzero(np.asarray(mask))]


MAX_ISSUES_PER_CHECK = 200


def _add(issues: list[Issue], severity: str, rows: list[int], column: str | None, code: str, message) -> None:
    """One issue per offending row (capped, with a summary line when more rows fail the same check)."""
    for row in rows[:MAX_ISSUES_PER_CHECK]:
        issues.append(Issue(severity, row, column, code, message(row) if callable(message) else message))
    if len(rows) > MAX_ISSUES_PER_CHECK:
        issues.append(Issue(severity, None, column, code,
                            f"{len(rows) - MAX_ISSUES_PER_CHECK} more rows fail the same check ({code}) in column '{column}'"))


def parse_columns(frame: pd.DataFrame, spec: ReturnSpec, issues: list[Issue]) -> dict[str, pd.Series]:
    """Parse every declared column into its type, recording each cell that does not parse."""
    parsed: dict[str, pd.Series] = {}
    for column in spec.columns:
        text = frame[column.name]
        blank = text == ""
        if column.required:
            _add(issues, "error", _rows(blank), column.name, "required",
                 f"'{column.name}' is required and is blank: fill it in ({column.description})")
        if column.kind == "date":
            values = pd.to_datetime(text.where(~blank), format="%Y-%m-%d", errors="coerce")
            bad = ~blank & values.isna()
            _add(issues, "error", _rows(bad), column.name, "bad_date",
                 lambda r, c=column.name, t=text: f"'{c}' must be a date written YYYY-MM-DD; found '{t.iloc[r - 2]}'")
        elif column.kind == "datetime":
            values = pd.to_datetime(text.where(~blank), format="mixed", errors="coerce")
            ok_shape = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
            values = values.where(ok_shape)
            bad = ~blank & values.isna()
            _add(issues, "error", _rows(bad), column.name, "bad_datetime",
                 lambda r, c=column.name, t=text: f"'{c}' must be a date and time written YYYY-MM-DD HH:MM; found '{t.iloc[r - 2]}'")
        elif column.kind in ("int", "float"):
            values = pd.to_numeric(text.where(~blank), errors="coerce")
            bad = ~blank & values.isna()
            if column.kind == "int":
                not_whole = ~blank & values.notna() & (values != np.floor(values.fillna(0)))
                bad = bad | not_whole
            _add(issues, "error", _rows(bad), column.name, "not_a_number",
                 lambda r, c=column.name, t=text, k=column.kind: f"'{c}' must be a {'whole number' if k == 'int' else 'number'}; found '{t.iloc[r - 2]}'")
            values = values.where(~bad)
            if column.minimum is not None:
                _add(issues, "error", _rows(values < column.minimum), column.name, "out_of_range",
                     lambda r, c=column, v=values: f"'{c.name}' is {v.iloc[r - 2]:g}, below the minimum {c.minimum:g}")
            if column.maximum is not None:
                _add(issues, "error", _rows(values > column.maximum), column.name, "out_of_range",
                     lambda r, c=column, v=values: f"'{c.name}' is {v.iloc[r - 2]:g}, above the maximum {c.maximum:g}")
        elif column.kind == "yn":
            bad = ~blank & ~text.isin(["Y", "N"])
            _add(issues, "error", _rows(bad), column.name, "not_allowed",
                 lambda r, c=column.name, t=text: f"'{c}' must be Y or N; found '{t.iloc[r - 2]}'")
            values = text.where(~blank & ~bad)
        elif column.kind == "bool01":
            bad = ~blank & ~text.isin(["0", "1"])
            _add(issues, "error", _rows(bad), column.name, "not_allowed",
                 lambda r, c=column.name, t=text: f"'{c}' must be 0 or 1; found '{t.iloc[r - 2]}'")
            values = (text == "1").where(~blank & ~bad)
        else:
            values = text.where(~blank)
            if column.allowed:
                bad = ~blank & ~text.isin(column.allowed)
                _add(issues, "error", _rows(bad), column.name, "not_allowed",
                     lambda r, c=column, t=text: f"'{c.name}' must be one of {', '.join(c.allowed)}; found '{t.iloc[r - 2]}'")
        parsed[column.name] = values
    return parsed


def _period_bounds(period: str, spec: ReturnSpec) -> tuple[pd.Timestamp, pd.Timestamp]:
    first = pd.Timestamp(f"{period}-01")
    months = 3 if spec.frequency == "quarterly" else 1
    return first, first + pd.DateOffset(months=months)


def check_rows(parsed: dict[str, pd.Series], spec: ReturnSpec, period: str, issues: list[Issue]) -> None:
    for earlier, later in spec.order_rules:
        bad = parsed[later].notna() & parsed[earlier].notna() & (parsed[later] < parsed[earlier])
        _add(issues, "error", _rows(bad), later, "date_order",
             f"'{later}' is before '{earlier}': check both dates")
    for smaller, larger in spec.le_rules:
        bad = parsed[smaller].notna() & parsed[larger].notna() & (parsed[smaller] > parsed[larger])
        _add(issues, "error", _rows(bad), smaller, "exceeds",
             f"'{smaller}' is larger than '{larger}': it cannot be")
    if spec.period_columns:
        low, high = _period_bounds(period, spec)
        inside = pd.Series(False, index=next(iter(parsed.values())).index)
        for name in spec.period_columns:
            inside |= (parsed[name] >= low) & (parsed[name] < high)
        unknown = pd.concat([parsed[name].isna() for name in spec.period_columns], axis=1).all(axis=1)
        label = "quarter starting " + period if spec.frequency == "quarterly" else "month " + period
        _add(issues, "error", _rows(~inside & ~unknown), spec.period_columns[0], "wrong_period",
             f"none of {', '.join(spec.period_columns)} falls in the {label} declared by the file name: "
             "move the row to the return for its own period")
    if not spec.key:
        return
    key_frame = pd.DataFrame({name: parsed[name] for name in spec.key})
    duplicated = key_frame.duplicated(keep="first") & key_frame.notna().all(axis=1)
    _add(issues, "error", _rows(duplicated), spec.key[0], "duplicate_key",
         f"another row has the same {' and '.join(spec.key)}: each must appear once; remove or correct the repeat")


def check_references(parsed: dict[str, pd.Series], spec: ReturnSpec, contracts: dict[str, Contract],
                     provider_id: str, return_type: str, issues: list[Issue]) -> None:
    service = spec.extra.get("service") or {"crc_caseload": "crc", "ttg_resettlement": "ttg", "em_orders": "em",
                                            "health_referrals": "health", "reoffending_cohort": "crc",
                                            "kpi_aggregate": None}[return_type]
    contract_ids = parsed["contract_id"]
    known = contract_ids.isin(list(contracts))
    _add(issues, "error", _rows(contract_ids.notna() & ~known), "contract_id", "unknown_contract",
         lambda r: f"contract '{contract_ids.iloc[r - 2]}' is not a contract of provider '{provider_id}': use the contract id in your contract")
    if service:
        wrong = known & contract_ids.isin([c for c, contract in contracts.items() if contract.service_type != service])
        _add(issues, "error", _rows(wrong), "contract_id", "wrong_service",
             lambda r: f"contract '{contract_ids.iloc[r - 2]}' is not a {service} contract, so it cannot appear in a {return_type} return")
    if "area_code" in parsed:
        expected = contract_ids.map({c: contract.area_code for c, contract in contracts.items()})
        wrong_area = known & parsed["area_code"].notna() & (parsed["area_code"] != expected)
        _add(issues, "error", _rows(wrong_area), "area_code", "wrong_area",
             lambda r: f"area '{parsed['area_code'].iloc[r - 2]}' is not the area of contract '{contract_ids.iloc[r - 2]}' ({expected.iloc[r - 2]})")
    if "measure_code" in parsed:
        codes = parsed["measure_code"]
        unknown = codes.notna() & ~codes.isin(list(MEASURES_BY_CODE))
        _add(issues, "error", _rows(unknown), "measure_code", "unknown_measure",
             lambda r: f"measure '{codes.iloc[r - 2]}' is not in the KPI catalogue: see `cjmonitor specs` for the codes")


FORMULA_FIRST_CHARACTERS = frozenset("=+-@\t\r")  # every match of the formula patterns starts with one of these


def _matches_at_start(text: pd.Series, pattern: str) -> pd.Series | np.ndarray:
    """``text.str.match(pattern)`` for the formula patterns, testing the pattern only on the cells that start
    with one of its first characters (a cheap test of every cell) rather than running the regex on each."""
    if text.dtype != "str" or text.hasnans:
        return text.str.match(pattern)
    values = text.to_numpy(dtype=object)
    joined = "\n" + "\n".join(values)  # a cell starting with c shows as "\n" + c (a false alarm only costs time)
    if not any("\n" + first in joined for first in FORMULA_FIRST_CHARACTERS):
        return np.zeros(len(values), dtype=bool)
    del joined
    candidates = np.flatnonzero(np.fromiter(map(FORMULA_FIRST_CHARACTERS.__contains__, map(operator.itemgetter(slice(0, 1)), values)),
                                            dtype=bool, count=len(values)))
    result = np.zeros(len(values), dtype=bool)
    if len(candidates):
        compiled = re.compile(pattern)
        result[candidates] = [compiled.match(values[i]) is not None for i in candidates]
    return result


def validate(frame: pd.DataFrame, return_type: str, period: str, contracts: dict[str, Contract],
             provider_id: str, spec: ReturnSpec | None = None) -> tuple[list[Issue], dict[str, pd.Series] | None]:
    """Every problem in the file, and its parsed columns when the header was usable.

    ``spec``: the return's spec when it is not a built-in one (a declared service's ``return_spec``).
    """
    spec = spec or SPECS[return_type]
    issues: list[Issue] = []
    missing = [c.name for c in spec.columns if c.name not in frame.columns and not c.optional]
    for name in missing:
        issues.append(Issue("error", 1, name, "missing_column",
                            f"column '{name}' is missing from the header row; the {return_type} template has: "
                            f"{', '.join(spec.column_names)}"))
    for name in frame.columns:
        if name not in spec.column_names:
            issues.append(Issue("warning", 1, name, "unknown_column", f"column '{name}' is not in the {return_type} spec and was ignored"))
    if missing:
        return issues, None
    absent = [c.name for c in spec.columns if c.name not in frame.columns]
    if absent:  # optional columns of a later spec version: read as blank
        frame = frame.assign(**{name: "" for name in absent})
    if frame.empty:
        issues.append(Issue("error", None, None, "no_rows", "the return has a header row but no data rows: "
                                                            "send the return with its records"))
        return issues, None
    for column in spec.columns:
        name, text = column.name, frame[column.name]
        # Text never legitimately starts with these; numbers may be negative (their range check applies).
        pattern = r"^[=+\-@\t\r]" if column.kind in ("str", "yn", "bool01") else r"^[=+@\t\r]|^-[^0-9.]"
        formula = _matches_at_start(text, pattern)
        _add(issues, "error", _rows(formula), name, "formula",
             f"'{name}' starts with a character spreadsheets run as a formula (=, +, - or @): "
             "remove it and send the plain value")
    parsed = parse_columns(frame, spec, issues)
    check_rows(parsed, spec, period, issues)
    check_references(parsed, spec, contracts, provider_id, return_type, issues)
    if return_type == "reoffending_cohort" and "custodial_first" in parsed:
        given = parsed["custodial_first"].notna() & parsed["reoffended_12m"].eq(False)
        _add(issues, "error", _rows(given), "custodial_first", "inconsistent",
             "'custodial_first' is filled in for a person with no proven reoffence (reoffended_12m is 0): "
             "leave it blank, or correct reoffended_12m")
    if return_type == "kpi_aggregate":
        wrong = parsed["period"].notna() & (parsed["period"] != period)
        _add(issues, "error", _rows(wrong), "period", "wrong_period",
             lambda r: f"period '{parsed['period'].iloc[r - 2]}' differs from {period} in the file name")
    return issues, parsed


# ------------------------------------------------------------------ turning parsed columns into rows


def _period_of(values: pd.Series) -> pd.Series:
    """``values.dt.strftime("%Y-%m")`` where there is a date (missing elsewhere), formatting each month once."""
    months = values.dt.year * 100 + values.dt.month
    codes, uniques = pd.factorize(months, use_na_sentinel=True)
    labels = np.array([f"{int(m) // 100:04d}-{int(m) % 100:02d}" for m in uniques] + [np.nan], dtype=object)
    return pd.Series(labels[codes], index=values.index, dtype="str")


def _as_dates(series: pd.Series) -> pd.Series:
    """``series.dt.date`` as objects, ``None`` where missing, making one ``date`` per distinct day."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    days = np.array([*(day.date() for day in uniques), None], dtype=object)
    return pd.Series(days[codes], index=series.index, dtype=object)


def _as_timestamps(series: pd.Series) -> pd.Series:
    """``series.astype(object)``, ``None`` where missing, making one ``Timestamp`` per distinct instant."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    instants = np.empty(len(uniques) + 1, dtype=object)
    instants[: len(uniques)] = list(uniques)
    instants[-1] = None
    return pd.Series(instants[codes], index=series.index, dtype=object)


def _working_days(start: pd.Series, end: pd.Series) -> pd.Series:
    """Working days in England and Wales (not weekends, not bank holidays), as for declared services."""
    from contracts.workdays import working_days

    return working_days(start, end)


def build_records(parsed: dict[str, pd.Series], return_type: str, period: str, key: bytes) -> pd.DataFrame:
    """The stored columns: typed values, derived periods and working days, pseudonymised person keys."""
    frame = pd.DataFrame(parsed)
    if "person_id" in frame:
        frame["person_key"] = pseudonymise(frame.pop("person_id"), key)
    if return_type == "crc_caseload":
        frame["start_period"] = _period_of(frame["start_date"])
        frame["end_period"] = _period_of(frame["end_date"])
        frame["first_appointment_wd"] = _working_days(frame["start_date"], frame["first_appointment_date"])
        frame["sentence_plan_wd"] = _working_days(frame["start_date"], frame["sentence_plan_date"])
    elif return_type == "ttg_resettlement":
        frame["reception_period"] = _period_of(frame["reception_date"])
        frame["release_period"] = _period_of(frame["release_date"])
        frame["resettlement_plan_wd"] = _working_days(frame["reception_date"], frame["resettlement_plan_date"])
    elif return_type == "em_orders":
        # Providers write UK wall-clock times; store them as UTC instants (a repeated autumn hour is read as GMT).
        for name in ("order_start", "tag_fitted_at"):
            frame[name] = frame[name].dt.tz_localize("Europe/London", ambiguous=False, nonexistent="shift_forward").dt.tz_convert("UTC")
        frame["start_period"] = _period_of(frame["order_start"].dt.tz_convert("Europe/London"))
        frame["end_period"] = _period_of(frame["order_end"])
        frame["hours_to_fit"] = (frame["tag_fitted_at"] - frame["order_start"]).dt.total_seconds() / 3600.0
    elif return_type == "health_referrals":
        frame["referral_period"] = _period_of(frame["referral_date"])
        frame["assessed_wd"] = _working_days(frame["referral_date"], frame["assessed_date"])
        frame["released_from_prison"] = frame["released_from_prison"] == "Y"
        frame["treatment_days"] = (frame["treatment_start_date"] - frame["referral_date"]).dt.days.astype("Int64")
    elif return_type == "reoffending_cohort":
        frame["cohort_period"] = period
    if "care_leaver" in frame:
        frame["care_leaver"] = frame["care_leaver"].map({"Y": True, "N": False}).astype(object)
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            frame[name] = _as_timestamps(series) if name in ("tag_fitted_at", "order_start") else _as_dates(series)
    return frame


# ------------------------------------------------------------------ the whole path for one file


# ------------------------------------------------------------------ provider mappings (contracts.mapping)

# Read problems that a notes sheet or title rows above the header cause: worth saying what the file looks like.
ADVISED_READ_PROBLEMS = ("no_header", "duplicate_column", "blank_column_name", "ragged_row")


def _read_mapped(path: Path, mapping: ReturnMapping, spec: ReturnSpec,
                 max_unpacked_bytes: int) -> tuple[pd.DataFrame, list[Issue], list[int], int]:
    """The file read through the provider's mapping: text frame, notes, each record's sheet row, the header row."""
    mapped = apply_mapping(path, mapping, spec, max_unpacked_bytes)
    notes = [Issue("warning", None, None, code, message) for code, message in mapped.attrs["notes"]]
    sheet = mapped.attrs["sheet"]
    notes.insert(0, Issue("info", mapped.attrs["header_row"], None, "read_through_mapping",
                          f"read through the provider's mapping {mapping.sha256[:12]}: "
                          + (f"sheet '{sheet}', " if sheet is not None else "")
                          + f"header on row {mapped.attrs['header_row']}; row numbers below are the file's own rows"))
    return mapped.reset_index(drop=True), notes, [int(i) for i in mapped.index], int(mapped.attrs["header_row"])


def _at_source_row(issue: Issue, source_rows: list[int], header_row: int) -> Issue:
    """Validation counts rows as header = 1, first record = 2; a mapped file's rows are its own sheet rows."""
    if issue.row is None:
        return issue
    row = header_row if issue.row == 1 else source_rows[issue.row - 2]
    return Issue(issue.severity, row, issue.column, issue.code, issue.message)


def _mapping_advice(path: Path, spec: ReturnSpec, provider_id: str, max_unpacked_bytes: int,
                    outcome: IngestOutcome) -> list[Issue]:
    """When a file does not match its template and the provider has no mapping: what it looks like, and the
    mapping to add. Nothing is read through the proposal: the file stays refused."""
    try:
        proposal = propose_mapping(path, spec, provider_id, max_unpacked_bytes)
    except MappingReadError:
        return []
    if not proposal.plausible:
        return []
    outcome.proposed_mapping = proposal.yaml
    where = f"sheet '{proposal.sheet}'" if proposal.sheet is not None else "the file"
    issues = [Issue("error", proposal.header_row, None, "mapping_needed",
                    f"the file does not match the {spec.return_type} template, and provider '{provider_id}' has no mapping "
                    f"for it; {where} row {proposal.header_row} looks like the return. Either send the template "
                    f"(`cjmonitor specs`), or add the proposed mapping to the register under provider '{provider_id}' "
                    "(code proposed_mapping), check it, and drop the same file again")]
    for guess in proposal.guesses:
        line = (f"header '{guess.header}' (column {guess.letter}) looks like {guess.column} (score {guess.score:.2f})"
                if guess.column else f"header '{guess.header}' (column {guess.letter}) looks like no column of the return")
        issues.append(Issue("info", proposal.header_row, guess.column, "header_guess", line))
    if proposal.missing_required:
        issues.append(Issue("info", None, None, "header_guess",
                            f"no header looks like {', '.join(proposal.missing_required)}, which the return needs"))
    issues.append(Issue("info", None, None, "proposed_mapping", proposal.yaml))
    return issues


# ------------------------------------------------------------------ cjs_system_measures (contracts.system)


def _quarter_of(period: str) -> str:
    year, month = period.split("-")
    return f"{year}-Q{(int(month) - 1) // 3 + 1}"


def validate_system_return(session: Session, frame: pd.DataFrame,
                           period: str) -> tuple[list[Issue], pd.DataFrame | None]:
    """A cjs_system_measures file checked against the catalogue, the office's areas and its file name's month:
    each row's period must be that month, or the calendar quarter it falls in (a quarterly figure sent with the
    quarter's last return)."""
    from contracts.models import Area
    from contracts.system import validate_system_frame

    areas = set(session.exec(select(Area.code)).all())
    issues, typed = validate_system_frame(frame, area_codes=areas)
    if typed is None:
        return issues, None
    allowed = {period, _quarter_of(period)}
    wrong = ~typed["period"].isin(sorted(allowed))
    _add(issues, "error", _rows(wrong.to_numpy()), "period", "wrong_period",
         lambda r: f"period '{typed['period'].iloc[r - 2]}' is not the month the file name declares ({period}) or its "
                   f"quarter ({_quarter_of(period)}): move the row to the return for its own period")
    if wrong.any():
        return issues, None
    return issues, typed


SYSTEM_SOURCE_PREFIX = "submission:"


def _store_system(session: Session, typed: pd.DataFrame, provider_id: str, period: str, submission_id: int,
                  file_name: str) -> pd.DataFrame:
    """A new version of a provider's system return replaces the figures of its earlier versions for the period
    (rows it no longer carries go too), then stores its own: one transaction with the submission."""
    from sqlalchemy import delete, or_

    from contracts.models import SystemMeasureValue
    from contracts.system import store_typed

    earlier = session.exec(select(Submission.id).where(
        Submission.provider_id == provider_id, Submission.return_type == SYSTEM_RETURN_TYPE,
        Submission.period == period, Submission.status == "accepted", Submission.id != submission_id)).all()
    if earlier:
        column = SystemMeasureValue.__table__.c.source
        session.execute(delete(SystemMeasureValue).where(or_(*(column.like(f"{SYSTEM_SOURCE_PREFIX}{i}:%")
                                                               for i in earlier))))
    store_typed(session, typed, source=f"{SYSTEM_SOURCE_PREFIX}{submission_id}:{file_name}")
    return typed


def _in_chunks(parsed: dict[str, pd.Series], build) -> Iterator[pd.DataFrame]:
    """The records built chunk by chunk (each row's stored values depend on that row alone), so that a chunk is
    built while the one before it is written, and the whole records frame is never held at once."""
    rows = len(next(iter(parsed.values())))
    for start in range(0, rows, bulk.CHUNK_ROWS):
        yield build({name: values.iloc[start:start + bulk.CHUNK_ROWS] for name, values in parsed.items()})


def deadline_for(period: str, return_type: str, due_day: int = 15, spec: ReturnSpec | None = None) -> datetime | None:
    """End of the due day in the month after the period; quarterly cohorts have no monthly deadline."""
    if spec is None and return_type == SYSTEM_RETURN_TYPE:
        return None  # a partner's return with no contract, so no contractual due day
    if (spec or SPECS[return_type]).frequency != "monthly":
        return None
    first = pd.Timestamp(f"{period}-01") + pd.DateOffset(months=1)
    last_day = (first + pd.offsets.MonthEnd(0)).day
    return datetime(first.year, first.month, min(due_day, last_day), 23, 59, 59, tzinfo=UTC)


def ingest_file(session: Session, path: Path, *, archive_dir: Path, key: bytes, source: str,
                received_at: datetime | None = None, max_bytes: int = 200 * 1024 * 1024,
                max_unpacked_bytes: int | None = None) -> IngestOutcome:
    """Land, validate and load one file inside the caller's transaction."""
    from contracts.declared import services_by_return_type

    name = path.name
    declared = services_by_return_type(session)
    parsed_name = parse_file_name(name, (*RETURN_TYPES, SYSTEM_RETURN_TYPE, *declared))
    if parsed_name is None:
        match = FILE_NAME_RE.match(name)
        if match:
            return IngestOutcome(name, "unrecognised", message=(
                f"return type {match.group('return_type')!r} is neither a built-in return type ({', '.join(RETURN_TYPES)}) "
                f"nor declared in the register{' (' + ', '.join(declared) + ')' if declared else ''}: "
                "check the file name, or declare the service's return"))
        return IngestOutcome(name, "unrecognised", message=(
            "file name does not follow <provider>_<return type>_<YYYY-MM>[_v<n>].csv|xlsx; rename it and resend"))
    service = declared.get(parsed_name.return_type)
    system = parsed_name.return_type == SYSTEM_RETURN_TYPE
    if system:
        from contracts.system import SPEC as SYSTEM_SPEC

        spec = SYSTEM_SPEC
    else:
        spec = service.return_spec if service else SPECS[parsed_name.return_type]
    outcome = IngestOutcome(name, "rejected", provider_id=parsed_name.provider_id,
                            return_type=parsed_name.return_type, period=parsed_name.period)
    size = path.stat().st_size
    if size > max_bytes:
        outcome.status = "refused"
        outcome.issues = [Issue("error", None, None, "too_large",
                                f"the file is {size / 1e6:,.1f} MB, over the {max_bytes / 1e6:,.1f} MB limit; it was not read")]
        outcome.message = outcome.issues[0].message + ": split it or ask the contract manager to raise the limit"
        return outcome
    provider = session.get(Provider, parsed_name.provider_id)
    if provider is None:
        outcome.status = "unrecognised"
        outcome.message = f"provider '{parsed_name.provider_id}' is not configured; check the file name or add the provider"
        return outcome
    sha = sha256_file(path)
    archive(path, archive_dir, sha)
    mapping = load_mappings(session, provider.id, {spec.return_type: spec}, parsed_name.return_type).get(spec.return_type)
    mapping_sha = mapping.sha256 if mapping is not None else ""
    outcome.mapping_sha256 = mapping_sha
    # The same bytes are read again only when they were refused and the provider's mapping has changed since.
    earlier = session.exec(select(Submission).where(Submission.sha256 == sha)).all()
    existing = next((s for s in earlier if s.status == "accepted" or s.mapping_sha256 == mapping_sha), None)
    if existing is not None:
        outcome.status = "duplicate"
        outcome.submission_id = existing.id
        outcome.message = f"same bytes as submission {existing.id} ({existing.file_name}); not loaded again"
        return outcome
    if received_at is None:
        received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    contracts = {c.id: c for c in session.exec(select(Contract).where(Contract.provider_id == provider.id)).all()}
    unpacked_limit = max_unpacked_bytes or 10 * max_bytes
    source_rows: list[int] | None = None
    try:
        if mapping is not None:
            frame, notes, source_rows, header_row = _read_mapped(path, mapping, spec, unpacked_limit)
        else:
            frame, notes = read_return(path, unpacked_limit)
    except (ReadProblem, MappingReadError) as problem:
        issues = [Issue("error", None, None, problem.code, problem.message)]
        parsed = None
        frame = pd.DataFrame()
        if mapping is None and problem.code in ADVISED_READ_PROBLEMS:
            issues += _mapping_advice(path, spec, provider.id, unpacked_limit, outcome)
    else:
        if system:
            issues, parsed = validate_system_return(session, frame, parsed_name.period)
        else:
            issues, parsed = validate(frame, parsed_name.return_type, parsed_name.period, contracts, provider.id, spec)
        if source_rows is not None:
            issues = [_at_source_row(issue, source_rows, header_row) for issue in issues]
        elif any(issue.code == "missing_column" for issue in issues):
            issues += _mapping_advice(path, spec, provider.id, unpacked_limit, outcome)
        issues = notes + issues
    errors = sum(1 for issue in issues if issue.severity == "error")
    latest = session.exec(
        select(func.max(Submission.version)).where(
            Submission.provider_id == provider.id,
            Submission.return_type == parsed_name.return_type,
            Submission.period == parsed_name.period,
        )
    ).one()
    version = (latest or 0) + 1
    due_day = min((c.return_due_day for c in contracts.values()), default=15)
    deadline = deadline_for(parsed_name.period, parsed_name.return_type, due_day, spec)
    submission = Submission(
        provider_id=provider.id, return_type=parsed_name.return_type, period=parsed_name.period,
        version=version, file_name=name, source=source, sha256=sha, received_at=received_at,
        status="rejected" if errors else "accepted", is_current=False,
        is_late=bool(deadline and received_at > deadline), rows=len(frame), errors=errors,
        warnings=sum(1 for issue in issues if issue.severity == "warning"),
        mapping_sha256=mapping_sha, mapping_json=mapping.canonical_json() if mapping is not None else None,
    )
    session.add(submission)
    session.flush()
    outcome.submission_id = submission.id
    outcome.version = version
    outcome.rows = len(frame)
    outcome.issues = issues
    if issues:
        session.execute(insert(ValidationIssue), [
            {"submission_id": submission.id, "severity": i.severity, "row": i.row, "column": i.column,
             "code": i.code, "message": i.message} for i in issues
        ])
    if errors:
        outcome.message = f"rejected: {errors} error{'' if errors == 1 else 's'}; nothing loaded"
        log.warning("%s rejected with %d error%s", name, errors, "" if errors == 1 else "s")
        return outcome
    if system:
        loaded = len(_store_system(session, parsed, provider.id, parsed_name.period, submission.id, name))
    elif service is not None:
        from contracts.records import build_declared_records, ensure_table

        table = ensure_table(session, service)
        records = _in_chunks(parsed, lambda part: build_declared_records(part, service, key))
    else:
        table = RECORD_TABLES[parsed_name.return_type].__table__
        records = _in_chunks(parsed, lambda part: build_records(part, parsed_name.return_type, parsed_name.period, key))
    if not system:
        load_records(session, table, records, submission.id)
        loaded = len(frame)
    session.execute(
        update(Submission)
        .where(Submission.provider_id == provider.id, Submission.return_type == parsed_name.return_type,
               Submission.period == parsed_name.period, Submission.id != submission.id)
        .values(is_current=False)
    )
    submission.is_current = True
    submission.loaded_at = datetime.now(UTC)
    outcome.status = "accepted"
    outcome.message = f"accepted as version {version}: {loaded} rows" + (
        f" (read through the provider's mapping {mapping_sha[:12]})" if mapping is not None else "")
    log.info("%s accepted as version %d (%d rows)", name, version, loaded)
    return outcome
