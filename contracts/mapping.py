"""Per-provider return mappings: reading returns as providers really send them.

A provider's export rarely matches the template: a notes sheet before the data, a title and a blank
line above the header, headers such as ``Person ID `` or ``Reception date``, real Excel dates, words
such as ``Settled`` where the template has a code, a blank row and a ``TOTAL`` row at the end, and no
``contract_id`` column when the provider holds one contract in the area. The register declares, per
provider and return type, how to read such a file (``providers[].mappings``); ingestion applies the
mapping before validation, and records the mapping (canonical JSON and its sha256) on the submission.

Register form of one mapping (every key but ``return_type`` optional)::

    return_type: ttg_resettlement            # a built-in or declared return type
    sheet: {name: Data}                      # or {find_header: true}; ignored for CSV files
    header_row: 3                            # 1-based row of the header; default 1
    columns: {"Person ID": person_id, "Reception date": reception_date}   # file header -> template column
    values: {accommodation_first_night: {Settled: settled, "No fixed abode": homeless}}
    constants: {contract_id: TTG-E23000039}  # a column the file lacks, the same for every row
    date_formats: {reception_date: "%d/%m/%Y"}   # text dates in another layout; or excel_serial
    drop_rows: {blank: true, first_cell_matches: "^TOTAL$", stop_at: "^Notes"}

Exact rules (``MAPPING_KEYS`` documents each key; the register's docs quote it):

- Header cells, aliases and sheet names are compared after *normalisation*: surrounding whitespace
  removed, runs of inner whitespace made one space, case folded. ``"Person ID "``, ``"person  id"``
  and ``"PERSON ID"`` are the same header. Nothing else is normalised (no punctuation or underscore
  folding): ``"Person-ID"`` needs its own alias.
- Under a mapping a header that normalises to a template column name (``Reception_Date``) is read
  as that column without an alias; an alias wins over a template name.
- WITHOUT a mapping nothing is normalised beyond removing surrounding whitespace (as the template
  reader always did): the header must carry the template names. A file that does not match is
  refused, and the report proposes a mapping (:func:`propose_mapping`).
- Value maps compare the cell's text exactly (after removing surrounding whitespace); a value not in
  the map is passed on unchanged, and validation then says whether it is allowed.
- Real Excel date cells are read as dates; a number in a date or datetime column of a workbook is an
  Excel serial date (using the workbook's 1900 or 1904 date system); ``date_formats`` reads text dates.
- Rows that are blank in every cell are dropped (unless ``drop_rows.blank`` is false);
  ``first_cell_matches`` drops any row whose first non-blank cell matches the regular expression
  (Python ``re.search``, case-sensitive unless the pattern says ``(?i)``); ``stop_at`` drops the
  first matching row and everything below it.
- Nothing is ever guessed: a value map or a constant is applied only when declared. The proposal
  may *suggest* them, as comments the user must check and uncomment.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from contracts.errors import ContractsError
from contracts.models import ReturnMappingRecord
from contracts.returns import SPECS, ColumnSpec, ReturnSpec

MAPPING_KEYS: dict[str, str] = {
    "return_type": "Required. The return this mapping reads: a built-in type (crc_caseload, ttg_resettlement, em_orders, "
                   "health_referrals, reoffending_cohort, kpi_aggregate) or a declared service's return type.",
    "sheet": "Which worksheet holds the return: {name: <sheet name>} (compared after normalisation), or "
             "{find_header: true} to use the first sheet whose header row carries the return's columns. "
             "Default: the first sheet. Ignored for CSV files.",
    "header_row": "1-based row number of the header row (title and notes rows above it are skipped). Default 1; "
                  "with sheet.find_header and no header_row, the first 50 rows of each sheet are searched.",
    "columns": "File header -> template column name. Headers are compared after normalisation (whitespace and case). "
               "Several headers may name the same column (a provider renames a header), but only one may be in a file.",
    "values": "Template column -> {file value: template value}. Exact text match; other values pass unchanged "
              "and are validated. A value may map to \"\" (blank) only for a column that is not required.",
    "constants": "Template column -> the value for every row, for a column the file does not carry "
                 "(e.g. contract_id when the provider holds one contract in the area). The file may not also carry it.",
    "date_formats": "Date or datetime column -> how its text cells are written: a strptime pattern such as "
                    "\"%d/%m/%Y\" or \"%d/%m/%Y %H:%M\", or excel_serial for serial numbers stored as text. "
                    "Real date cells and numeric cells of a workbook need no entry.",
    "drop_rows": "Which rows below the header are not records: {blank: true|false (default true), "
                 "first_cell_matches: <regex>, stop_at: <regex>}.",
}
SHEET_KEYS = ("name", "find_header")
DROP_KEYS = ("blank", "first_cell_matches", "stop_at")
EXCEL_SERIAL = "excel_serial"
HEADER_SEARCH_ROWS = 50
MATCH_THRESHOLD = 0.6


class MappingSpecError(ContractsError):
    """A mapping in the register is wrong; ``problems`` is a list of ``(key path, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


class MappingReadError(ContractsError):
    """A file cannot be read through its mapping (or at all): ``code`` and an actionable message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def normalise_header(text: object) -> str:
    """Surrounding whitespace removed, inner runs of whitespace made one space, case folded."""
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class ReturnMapping:
    """One provider's way of sending one return type. Fields hold only what the register said."""

    return_type: str
    sheet_name: str | None = None
    find_header: bool | None = None
    header_row: int | None = None
    columns: tuple[tuple[str, str], ...] = ()  # (file header, template column), in register order
    values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    constants: tuple[tuple[str, Any], ...] = ()
    date_formats: tuple[tuple[str, str], ...] = ()
    drop_blank: bool | None = None
    drop_first_cell_matches: str | None = None
    drop_stop_at: str | None = None
    present: tuple[str, ...] = ()  # optional keys the register wrote (so that to_dict round-trips exactly)

    def to_dict(self) -> dict:
        """The register form, exactly as parsed (keys in canonical order)."""
        out: dict[str, Any] = {"return_type": self.return_type}
        if "sheet" in self.present:
            sheet: dict[str, Any] = {}
            if self.sheet_name is not None:
                sheet["name"] = self.sheet_name
            if self.find_header is not None:
                sheet["find_header"] = self.find_header
            out["sheet"] = sheet
        if self.header_row is not None:
            out["header_row"] = self.header_row
        if "columns" in self.present:
            out["columns"] = dict(self.columns)
        if "values" in self.present:
            out["values"] = {column: dict(pairs) for column, pairs in self.values}
        if "constants" in self.present:
            out["constants"] = dict(self.constants)
        if "date_formats" in self.present:
            out["date_formats"] = dict(self.date_formats)
        if "drop_rows" in self.present:
            drop: dict[str, Any] = {}
            if self.drop_blank is not None:
                drop["blank"] = self.drop_blank
            if self.drop_first_cell_matches is not None:
                drop["first_cell_matches"] = self.drop_first_cell_matches
            if self.drop_stop_at is not None:
                drop["stop_at"] = self.drop_stop_at
            out["drop_rows"] = drop
        return out

    def canonical_json(self) -> str:
        """Sorted keys, no spaces: the same mapping always gives the same text, whatever order the register used."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

    def register_json(self) -> str:
        """The register form in the register's own order (what is stored in return_mapping)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    # the effective settings
    @property
    def aliases(self) -> dict[str, str]:
        return {normalise_header(header): column for header, column in self.columns}

    @property
    def value_maps(self) -> dict[str, dict[str, str]]:
        return {column: dict(pairs) for column, pairs in self.values}

    @property
    def constant_values(self) -> dict[str, str]:
        return {column: _constant_text(value) for column, value in self.constants}


def _constant_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _allowed(column: ColumnSpec) -> tuple[str, ...] | None:
    if column.allowed:
        return tuple(column.allowed)
    if column.kind == "yn":
        return ("Y", "N")
    if column.kind == "bool01":
        return ("0", "1")
    return None


def _close(name: str, names) -> str:
    close = difflib.get_close_matches(str(name), list(names), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _yaml_scalar_hint(value: Any) -> str:
    if isinstance(value, bool):
        return (f" YAML read it as the boolean {value}: write words like Yes, No, On, Off in quotes "
                f"(\"Yes\")")
    if isinstance(value, (int, float)):
        return f" YAML read it as the number {value}: put it in quotes"
    if value is None:
        return " it is empty: write the text, in quotes if it is blank or starts with a special character"
    return ""


def parse_mapping(d: dict, key: str = "providers[0].mappings[0]",
                  specs: Mapping[str, ReturnSpec] | None = None) -> ReturnMapping:
    """Check one register mapping against its return spec; every problem is reported at once."""
    specs = SPECS if specs is None else specs
    problems: list[tuple[str, str]] = []

    def bad(path: str, message: str) -> None:
        problems.append((f"{key}.{path}" if path else key, message))

    if not isinstance(d, dict):
        raise MappingSpecError([(key, f"a mapping must be a set of keys (return_type, sheet, header_row, columns, ...), "
                                      f"not {type(d).__name__}")])
    for name in d:
        if name not in MAPPING_KEYS:
            bad(str(name), f"unknown key{_close(name, MAPPING_KEYS)}; a mapping has {', '.join(MAPPING_KEYS)}")
    return_type = d.get("return_type")
    spec: ReturnSpec | None = None
    if return_type is None:
        bad("return_type", "missing: say which return this mapping reads, e.g. return_type: ttg_resettlement")
    elif not isinstance(return_type, str) or return_type not in specs:
        bad("return_type", f"unknown return type '{return_type}'{_close(return_type, specs)}; "
                           f"use one of {', '.join(sorted(specs))} or declare the service's return first")
    else:
        spec = specs[return_type]
    names = set(spec.column_names) if spec else set()

    def column_ok(path: str, column: Any, what: str) -> ColumnSpec | None:
        if not isinstance(column, str):
            bad(path, f"{what} must be a column name of the return, not {column!r}")
            return None
        if spec is None:
            return None
        if column not in names:
            bad(path, f"'{column}' is not a column of the {spec.return_type} return{_close(column, names)}; "
                      f"its columns are {', '.join(spec.column_names)}")
            return None
        return spec.column(column)

    present: list[str] = []
    sheet_name = find_header = None
    if "sheet" in d:
        present.append("sheet")
        sheet = d["sheet"]
        if isinstance(sheet, str):
            bad("sheet", f"write the sheet as {{name: {sheet}}} (or {{find_header: true}} to find it by its header)")
        elif not isinstance(sheet, dict) or not sheet:
            bad("sheet", "must be {name: <sheet name>} or {find_header: true}")
        else:
            for name in sheet:
                if name not in SHEET_KEYS:
                    bad(f"sheet.{name}", f"unknown key{_close(name, SHEET_KEYS)}; sheet takes name or find_header")
            if "name" in sheet:
                sheet_name = sheet["name"]
                if not isinstance(sheet_name, str) or not sheet_name.strip():
                    bad("sheet.name", "must be the worksheet's name as text, e.g. name: Data" + _yaml_scalar_hint(sheet_name))
            if "find_header" in sheet:
                find_header = sheet["find_header"]
                if not isinstance(find_header, bool):
                    bad("sheet.find_header", f"must be true or false, not {find_header!r}")
            if "name" in sheet and sheet.get("find_header") is True:
                bad("sheet", "give either name or find_header: true, not both")
    header_row = d.get("header_row")
    if header_row is not None and (isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1):
        bad("header_row", f"must be the header's row number, a whole number from 1 (row 1 is the top row); found {header_row!r}")

    columns: list[tuple[str, str]] = []
    if "columns" in d:
        present.append("columns")
        raw = d["columns"]
        if not isinstance(raw, dict):
            bad("columns", "must map each file header to a template column, e.g. {\"Person ID\": person_id}")
        else:
            seen: dict[str, str] = {}
            for header, column in raw.items():
                path = f"columns.{header}"
                if not isinstance(header, str) or not header.strip():
                    bad(path, f"a file header must be text{_yaml_scalar_hint(header)}")
                    continue
                column_ok(path, column, "the column a header maps to")
                norm = normalise_header(header)
                if norm in seen:
                    bad(path, f"'{header}' is the same header as '{seen[norm]}' once whitespace and case are ignored: keep one")
                    continue
                seen[norm] = header
                columns.append((header, column))

    values: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    if "values" in d:
        present.append("values")
        raw = d["values"]
        if not isinstance(raw, dict):
            bad("values", "must map each column to its value map, e.g. {ete_on_release: {\"Yes\": Y, \"No\": N}}")
        else:
            for column, pairs in raw.items():
                path = f"values.{column}"
                spec_column = column_ok(path, column, "a value map's key")
                if not isinstance(pairs, dict) or not pairs:
                    bad(path, "must map each value in the file to the template's value, e.g. {Settled: settled}")
                    continue
                if spec_column is not None and spec_column.kind in ("date", "datetime"):
                    bad(path, f"'{column}' is a {spec_column.kind} column: read its text dates with "
                              f"date_formats: {{{column}: \"%d/%m/%Y\"}}, not a value map")
                    continue
                allowed = _allowed(spec_column) if spec_column is not None else None
                checked: list[tuple[str, str]] = []
                for source, target in pairs.items():
                    if not isinstance(source, str):
                        bad(f"{path}.{source}", f"the value in the file must be text;{_yaml_scalar_hint(source)}")
                        continue
                    if not isinstance(target, str):
                        bad(f"{path}.{source}", f"the template value must be text;{_yaml_scalar_hint(target)}")
                        continue
                    if spec_column is not None:
                        if target == "" and spec_column.required:
                            bad(f"{path}.{source}", f"'{column}' is required, so a value cannot map to blank")
                        elif target != "" and allowed and target not in allowed:
                            bad(f"{path}.{source}", f"maps to '{target}', which '{column}' does not allow"
                                                    f"{_close(target, allowed)}; allowed: {', '.join(allowed)}")
                    checked.append((source, target))
                values.append((column, tuple(checked)))

    constants: list[tuple[str, Any]] = []
    mapped_columns = {column for _, column in columns}
    if "constants" in d:
        present.append("constants")
        raw = d["constants"]
        if not isinstance(raw, dict):
            bad("constants", "must map each column to its one value, e.g. {contract_id: TTG-E23000039}")
        else:
            for column, value in raw.items():
                path = f"constants.{column}"
                spec_column = column_ok(path, column, "a constant's key")
                if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()) \
                        or not isinstance(value, (str, int, float, date)):
                    bad(path, "must be the value for every row" + (_yaml_scalar_hint(value) or f", not {value!r}"))
                    continue
                if column in mapped_columns:
                    bad(path, f"'{column}' is both a constant and the target of a header under columns: keep one")
                if spec_column is not None:
                    allowed = _allowed(spec_column)
                    if allowed and _constant_text(value) not in allowed:
                        bad(path, f"'{value}' is not allowed in '{column}'; allowed: {', '.join(allowed)}")
                    if spec_column.pseudonymise:
                        bad(path, f"'{column}' identifies a person: it cannot be the same for every row")
                constants.append((column, value))

    date_formats: list[tuple[str, str]] = []
    if "date_formats" in d:
        present.append("date_formats")
        raw = d["date_formats"]
        if not isinstance(raw, dict):
            bad("date_formats", "must map each date column to its layout, e.g. {reception_date: \"%d/%m/%Y\"}")
        else:
            for column, layout in raw.items():
                path = f"date_formats.{column}"
                spec_column = column_ok(path, column, "a date format's key")
                if spec_column is not None and spec_column.kind not in ("date", "datetime"):
                    bad(path, f"'{column}' is a {spec_column.kind} column, not a date: remove it from date_formats")
                    continue
                if not isinstance(layout, str) or (layout != EXCEL_SERIAL and "%" not in layout):
                    bad(path, f"must be a strptime layout such as \"%d/%m/%Y\" or {EXCEL_SERIAL}, not {layout!r}")
                    continue
                if layout != EXCEL_SERIAL:
                    try:
                        sample = datetime(2024, 1, 31, 13, 45).strftime(layout)
                        back = datetime.strptime(sample, layout)
                    except ValueError as exc:
                        bad(path, f"'{layout}' is not a usable date layout ({exc}): e.g. \"%d/%m/%Y\"")
                        continue
                    if (back.year, back.month, back.day) != (2024, 1, 31):
                        bad(path, f"'{layout}' does not hold a whole date (day, month and year): e.g. \"%d/%m/%Y\"")
                        continue
                    if spec_column is not None and spec_column.kind == "datetime" and (back.hour, back.minute) != (13, 45):
                        bad(path, f"'{column}' is a date and time: its layout needs the time too, e.g. \"%d/%m/%Y %H:%M\"")
                        continue
                date_formats.append((column, layout))

    drop_blank = drop_first = drop_stop = None
    if "drop_rows" in d:
        present.append("drop_rows")
        raw = d["drop_rows"]
        if not isinstance(raw, dict):
            bad("drop_rows", "must be {blank: true, first_cell_matches: \"^TOTAL$\", stop_at: <regex>} (any of them)")
        else:
            for name in raw:
                if name not in DROP_KEYS:
                    bad(f"drop_rows.{name}", f"unknown key{_close(name, DROP_KEYS)}; drop_rows takes {', '.join(DROP_KEYS)}")
            if "blank" in raw:
                drop_blank = raw["blank"]
                if not isinstance(drop_blank, bool):
                    bad("drop_rows.blank", f"must be true or false, not {drop_blank!r}")
            for name in ("first_cell_matches", "stop_at"):
                if name not in raw:
                    continue
                pattern = raw[name]
                if not isinstance(pattern, str) or not pattern:
                    bad(f"drop_rows.{name}", f"must be a regular expression as text, e.g. \"^TOTAL$\"; found {pattern!r}")
                    continue
                try:
                    re.compile(pattern)
                except re.error as exc:
                    bad(f"drop_rows.{name}", f"'{pattern}' is not a valid regular expression ({exc}); "
                                             "e.g. \"^TOTAL$\" (escape special characters with a backslash)")
                    continue
                if name == "first_cell_matches":
                    drop_first = pattern
                else:
                    drop_stop = pattern

    if problems:
        raise MappingSpecError(problems)
    return ReturnMapping(
        return_type=return_type, sheet_name=sheet_name, find_header=find_header, header_row=header_row,
        columns=tuple(columns), values=tuple(values), constants=tuple(constants), date_formats=tuple(date_formats),
        drop_blank=drop_blank, drop_first_cell_matches=drop_first, drop_stop_at=drop_stop, present=tuple(present),
    )


def mapping_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of one mapping, for ``providers[].mappings[]`` in the register's schema."""
    text = {"type": "string"}
    column_map = {"type": "object", "additionalProperties": text}
    return {
        "type": "object",
        "description": "How one provider's files of one return type are read (contracts.mapping).",
        "required": ["return_type"],
        "additionalProperties": False,
        "properties": {
            "return_type": {**text, "description": MAPPING_KEYS["return_type"]},
            "sheet": {"description": MAPPING_KEYS["sheet"], "oneOf": [
                {"type": "object", "required": ["name"], "additionalProperties": False,
                 "properties": {"name": {**text, "minLength": 1}}},
                {"type": "object", "required": ["find_header"], "additionalProperties": False,
                 "properties": {"find_header": {"type": "boolean"}}}]},
            "header_row": {"type": "integer", "minimum": 1, "description": MAPPING_KEYS["header_row"]},
            "columns": {**column_map, "description": MAPPING_KEYS["columns"]},
            "values": {"type": "object", "additionalProperties": column_map, "description": MAPPING_KEYS["values"]},
            "constants": {"type": "object", "additionalProperties": {"type": ["string", "number"]},
                          "description": MAPPING_KEYS["constants"]},
            "date_formats": {**column_map, "description": MAPPING_KEYS["date_formats"]},
            "drop_rows": {"type": "object", "additionalProperties": False, "description": MAPPING_KEYS["drop_rows"],
                          "properties": {"blank": {"type": "boolean"}, "first_cell_matches": text, "stop_at": text}},
        },
    }


def mapping_from_json(text: str, specs: Mapping[str, ReturnSpec] | None = None) -> ReturnMapping:
    return parse_mapping(json.loads(text), key="stored mapping", specs=specs)


# ------------------------------------------------------------------ storage


def save_mappings(session: Session, provider_id: str, mappings: list[ReturnMapping]) -> None:
    """Make ``mappings`` the provider's whole set (inside the caller's transaction): add, replace, remove."""
    by_type: dict[str, ReturnMapping] = {}
    for index, mapping in enumerate(mappings):
        if mapping.return_type in by_type:
            raise MappingSpecError([(f"providers[{provider_id}].mappings[{index}].return_type",
                                     f"provider '{provider_id}' already has a mapping for {mapping.return_type}: "
                                     "keep one mapping per return type")])
        by_type[mapping.return_type] = mapping
    stored = {row.return_type: row for row in session.exec(
        select(ReturnMappingRecord).where(ReturnMappingRecord.provider_id == provider_id)).all()}
    now = datetime.now(UTC)
    for return_type, row in stored.items():
        if return_type not in by_type:
            session.delete(row)
    for return_type, mapping in by_type.items():
        row = stored.get(return_type)
        if row is None:
            session.add(ReturnMappingRecord(provider_id=provider_id, return_type=return_type,
                                            mapping_json=mapping.register_json(), sha256=mapping.sha256, updated_at=now))
        elif row.mapping_json != mapping.register_json():
            row.mapping_json, row.sha256, row.updated_at = mapping.register_json(), mapping.sha256, now
            session.add(row)
    session.flush()


def load_mappings(session: Session, provider_id: str, specs: Mapping[str, ReturnSpec] | None = None,
                  return_type: str | None = None) -> dict[str, ReturnMapping]:
    """The provider's stored mappings by return type (only ``return_type``'s when given), checked against ``specs``
    (default: the built-in SPECS; pass declared specs too for a declared service's return)."""
    query = select(ReturnMappingRecord).where(ReturnMappingRecord.provider_id == provider_id)
    if return_type is not None:
        query = query.where(ReturnMappingRecord.return_type == return_type)
    return {row.return_type: mapping_from_json(row.mapping_json, specs) for row in session.exec(query).all()}


# ------------------------------------------------------------------ reading raw sheets


@dataclass
class RawSheet:
    name: str | None  # None for a CSV file
    rows: list[list[Any]]
    epoch: datetime | None = None  # a workbook's date system (1900 or 1904)


def read_sheets(path: Path, max_unpacked_bytes: int = 500 * 1024 * 1024) -> list[RawSheet]:
    """Every sheet's cells as openpyxl gives them (dates, numbers, text); a CSV is one sheet of text."""
    if path.stat().st_size == 0:
        raise MappingReadError("empty_file", "the file is empty (0 bytes): export the return again and resend it")
    if path.suffix.lower() == ".xlsx":
        if not zipfile.is_zipfile(path):
            raise MappingReadError("not_xlsx", "this is not a valid Excel .xlsx workbook: save it again as .xlsx, or send CSV")
        with zipfile.ZipFile(path) as archive_file:
            unpacked = sum(info.file_size for info in archive_file.infolist())
        if unpacked > max_unpacked_bytes:
            raise MappingReadError("unpacks_too_large", f"the workbook unpacks to {unpacked / 1e6:,.0f} MB, over the "
                                                        f"{max_unpacked_bytes / 1e6:,.0f} MB limit: send the return as CSV")
        try:
            from openpyxl import load_workbook

            workbook = load_workbook(path, read_only=True, data_only=False)
            epoch = getattr(workbook, "epoch", None)
            sheets = [RawSheet(name, [list(row) for row in workbook[name].iter_rows(values_only=True)], epoch)
                      for name in workbook.sheetnames]
            workbook.close()
        except Exception as exc:  # any failure to parse the workbook is the sender's to fix; say what it was
            raise MappingReadError("unreadable_xlsx", f"the workbook could not be read ({type(exc).__name__}): "
                                                      "open it in Excel, save it again as .xlsx and resend") from None
        return sheets
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MappingReadError("not_utf8", f"the file is not UTF-8 text (first unreadable byte on line {line}): "
                                           "save it as 'CSV UTF-8 (Comma delimited)' and resend") from None
    try:
        rows = [list(row) for row in csv.reader(io.StringIO(text), strict=True)]
    except csv.Error as exc:
        raise MappingReadError("malformed_csv", f"the CSV could not be parsed ({exc}): check for unbalanced quotes") from None
    return [RawSheet(None, rows)]


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _plain_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d") if (cell.hour, cell.minute, cell.second) == (0, 0, 0) else cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _serial(value: float, epoch: datetime | None) -> datetime | None:
    from openpyxl.utils.datetime import from_excel

    try:
        moment = from_excel(value, epoch) if epoch is not None else from_excel(value)
    except (ValueError, OverflowError, TypeError):
        return None
    return moment if isinstance(moment, datetime) else None


def _date_text(moment: datetime, kind: str) -> str:
    if kind == "datetime":
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d") if (moment.hour, moment.minute, moment.second) == (0, 0, 0) else moment.strftime("%Y-%m-%d %H:%M")


def _cell_for(cell: Any, column: ColumnSpec, epoch: datetime | None, is_workbook: bool,
              value_map: dict[str, str] | None, layout: str | None) -> str:
    """One cell as the template's text: dates as YYYY-MM-DD (HH:MM), value maps applied."""
    kind = column.kind
    if kind in ("date", "datetime"):
        if isinstance(cell, datetime):
            return _date_text(cell, kind)
        if isinstance(cell, date):
            return cell.isoformat() + (" 00:00" if kind == "datetime" else "")
        if is_workbook and isinstance(cell, (int, float)) and not isinstance(cell, bool):
            moment = _serial(float(cell), epoch)
            return _date_text(moment, kind) if moment else _plain_text(cell)
    text = _plain_text(cell)
    if value_map and text in value_map:
        return value_map[text]
    if layout and text and kind in ("date", "datetime"):
        if layout == EXCEL_SERIAL:
            if re.fullmatch(r"\d+(\.\d+)?", text):
                moment = _serial(float(text), epoch)
                return _date_text(moment, kind) if moment else text
            return text
        try:
            return _date_text(datetime.strptime(text, layout), kind)
        except ValueError:
            return text  # validation names the cell and what it must look like
    return text


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _resolve_header(cells: list[Any], mapping: ReturnMapping, spec: ReturnSpec) -> dict[int, str]:
    """Header cell position -> template column, through the aliases and the normalised template names."""
    lookup = {normalise_header(name): name for name in spec.column_names}
    lookup.update(mapping.aliases)
    return {i: lookup[normalise_header(cell)] for i, cell in enumerate(cells)
            if not _is_blank(cell) and normalise_header(cell) in lookup}


def _needed(mapping: ReturnMapping, spec: ReturnSpec) -> list[str]:
    constants = mapping.constant_values
    return [c.name for c in spec.columns if not c.optional and c.name not in constants]


def _pick_sheet(sheets: list[RawSheet], mapping: ReturnMapping, spec: ReturnSpec) -> tuple[RawSheet, int]:
    """The sheet and 1-based header row the mapping points to."""
    is_csv = sheets[0].name is None
    needed = _needed(mapping, spec)
    if is_csv:
        candidates = sheets
    elif mapping.sheet_name is not None:
        wanted = normalise_header(mapping.sheet_name)
        candidates = [s for s in sheets if normalise_header(s.name) == wanted]
        if not candidates:
            raise MappingReadError("sheet_not_found", f"the workbook has no sheet named '{mapping.sheet_name}' (it has "
                                                      f"{', '.join(repr(s.name) for s in sheets)}): fix sheet.name in the "
                                                      "provider's mapping, or use sheet: {find_header: true}")
    elif mapping.find_header:
        candidates = sheets
    else:
        candidates = sheets[:1]
    search = bool(mapping.find_header) and mapping.header_row is None
    best: tuple[int, RawSheet, int, list[str]] | None = None
    for sheet in candidates:
        rows = range(1, min(len(sheet.rows), HEADER_SEARCH_ROWS) + 1) if search else [mapping.header_row or 1]
        for number in rows:
            cells = sheet.rows[number - 1] if number <= len(sheet.rows) else []
            found = set(_resolve_header(cells, mapping, spec).values())
            missing = [name for name in needed if name not in found]
            if not missing:
                return sheet, number
            if best is None or len(found) > best[0]:
                best = (len(found), sheet, number, missing)
    if not (search or mapping.find_header):
        sheet, number = candidates[0], mapping.header_row or 1
        return sheet, number  # the declared place: validation lists the missing columns
    where = "the file" if is_csv else "any sheet"
    detail = ""
    if best is not None:
        _, sheet, number, missing = best
        place = f"row {number}" if is_csv else f"sheet '{sheet.name}' row {number}"
        detail = f"; the closest is {place}, which has no header for {', '.join(missing)}"
    raise MappingReadError("header_not_found", f"no header row in {where} (first {HEADER_SEARCH_ROWS} rows) carries every "
                                               f"column the {spec.return_type} return needs{detail}: add aliases for those "
                                               "headers under columns, or a constant")


def apply_mapping(path: Path, mapping: ReturnMapping, spec: ReturnSpec,
                  max_unpacked_bytes: int = 500 * 1024 * 1024) -> pd.DataFrame:
    """The records of a provider's file, read through its mapping, as the template's text columns.

    The index holds each record's row number in the sheet (so problems name the row the provider sees);
    ``attrs`` holds ``sheet``, ``header_row`` and ``notes`` (warnings as ``(code, message)``).
    Raises :class:`MappingReadError` when the file cannot be read through the mapping.
    """
    if mapping.return_type != spec.return_type:
        raise ValueError(f"mapping for {mapping.return_type} applied to a {spec.return_type} return")
    sheets = read_sheets(path, max_unpacked_bytes)
    if not sheets or not any(sheet.rows for sheet in sheets):
        raise MappingReadError("empty_file", "the file has no rows: export the return again and resend it")
    sheet, header_row = _pick_sheet(sheets, mapping, spec)
    is_workbook = sheet.name is not None
    header = sheet.rows[header_row - 1] if header_row <= len(sheet.rows) else []
    positions = _resolve_header(header, mapping, spec)
    notes: list[tuple[str, str]] = []
    where = f"sheet '{sheet.name}' " if is_workbook else ""
    by_column: dict[str, list[int]] = {}
    for i, column in positions.items():
        by_column.setdefault(column, []).append(i)
    for column, places in by_column.items():
        if len(places) > 1:
            headers = " and ".join(f"'{header[i]}' (column {_column_letter(i)})" for i in places)
            raise MappingReadError("duplicate_column", f"{where}row {header_row}: {headers} both read as {column}: "
                                                       "delete one column, or remove one of the aliases from the mapping")
    constants = mapping.constant_values
    for column in constants:
        if column in by_column:
            i = by_column[column][0]
            raise MappingReadError("constant_in_file", f"{where}row {header_row}: the file has a '{header[i]}' column, but the "
                                                       f"mapping sets {column} as a constant: remove the constant, or the column")
    ignored = [f"'{_plain_text(cell)}'" for i, cell in enumerate(header) if not _is_blank(cell) and i not in positions]
    if ignored:
        notes.append(("unmapped_column", f"{where}row {header_row}: {', '.join(ignored)} not in the {spec.return_type} "
                                         "spec and not mapped: ignored"))
    blank_drop = mapping.drop_blank is not False
    first_re = re.compile(mapping.drop_first_cell_matches) if mapping.drop_first_cell_matches else None
    stop_re = re.compile(mapping.drop_stop_at) if mapping.drop_stop_at else None
    width = max(positions, default=-1) + 1
    spec_columns = {c.name: c for c in spec.columns}
    value_maps = mapping.value_maps
    layouts = dict(mapping.date_formats)
    named = {i for i, cell in enumerate(header) if not _is_blank(cell)}
    records: list[list[str]] = []
    numbers: list[int] = []
    dropped: list[str] = []
    stray: list[int] = []
    for number in range(header_row + 1, len(sheet.rows) + 1):
        row = sheet.rows[number - 1]
        if all(_is_blank(cell) for cell in row):
            if blank_drop:
                dropped.append(f"{number} (blank)")
                continue
        first = next((_plain_text(cell) for cell in row if not _is_blank(cell)), "")
        if stop_re is not None and stop_re.search(first):
            dropped.append(f"{number}-{len(sheet.rows)} (from '{first}')" if number < len(sheet.rows) else f"{number} ('{first}')")
            break
        if first_re is not None and first_re.search(first):
            dropped.append(f"{number} ('{first}')")
            continue
        cells = list(row) + [None] * max(0, width - len(row))
        if any(not _is_blank(cell) for i, cell in enumerate(row) if i not in named):
            stray.append(number)
        records.append([_cell_for(cells[i], spec_columns[column], sheet.epoch, is_workbook,
                                  value_maps.get(column), layouts.get(column)) for i, column in positions.items()])
        numbers.append(number)
    if stray:
        shown = ", ".join(map(str, stray[:20])) + (f" and {len(stray) - 20} more" if len(stray) > 20 else "")
        notes.append(("unnamed_cells", f"{where}{'row' if len(stray) == 1 else 'rows'} {shown} {'has' if len(stray) == 1 else 'have'} cells under no header (an unnamed column, or right "
                                       "of the header): ignored; name the column if it matters"))
    if dropped:
        notes.append(("dropped_rows", f"{where}rows not read as records, as the mapping says: {', '.join(dropped)}"))
    frame = pd.DataFrame(records, columns=list(positions.values()), index=numbers, dtype=object)
    if frame.empty:
        frame = pd.DataFrame(columns=list(positions.values()), dtype=str)
    for column, value in constants.items():
        frame[column] = value
    ordered = [name for name in spec.column_names if name in frame.columns]
    frame = frame[ordered].astype(str) if not frame.empty else frame[ordered]
    frame.attrs.update({"sheet": sheet.name, "header_row": header_row, "notes": notes})
    return frame


# ------------------------------------------------------------------ proposing a mapping


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(text).casefold()).split())


def header_score(header: str, column: str) -> float:
    """How much a file header looks like a template column name (0..1): difflib on words, in order and sorted."""
    a, b = _words(header), _words(column)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    plain = difflib.SequenceMatcher(None, a, b).ratio()
    ordered = difflib.SequenceMatcher(None, " ".join(sorted(a.split())), " ".join(sorted(b.split()))).ratio()
    return round(max(plain, ordered), 3)


@dataclass(frozen=True)
class HeaderGuess:
    header: str
    position: int  # 0-based column index
    column: str | None  # the template column it looks like, or None
    score: float

    @property
    def letter(self) -> str:
        return _column_letter(self.position)


@dataclass(frozen=True)
class Proposal:
    """What a file that does not match its template looks like, and the mapping that would read it."""

    return_type: str
    file_name: str
    sheets: tuple[str, ...]  # every sheet's name (empty for CSV)
    sheet: str | None  # the sheet that looks like the return (None for CSV)
    header_row: int
    guesses: tuple[HeaderGuess, ...]
    missing: tuple[str, ...]  # template columns no header looks like (required ones first)
    missing_required: tuple[str, ...]
    footer: dict = field(default_factory=dict)  # the drop_rows the proposal includes
    value_suggestions: dict = field(default_factory=dict)  # column -> {file value: suggested value or None}
    date_suggestions: dict = field(default_factory=dict)  # column -> layout
    constant_suggestions: tuple[str, ...] = ()
    mapping: dict = field(default_factory=dict)  # the register form proposed (no value maps, no constants)
    yaml: str = ""
    plausible: bool = False  # enough headers matched to call this the return

    def lines(self) -> list[str]:
        where = f"sheet '{self.sheet}'" if self.sheet is not None else "the file"
        out = [f"{where} row {self.header_row} looks like the {self.return_type} header"
               + (f" (the workbook's sheets: {', '.join(repr(s) for s in self.sheets)})" if self.sheets else "")]
        for guess in self.guesses:
            if guess.column:
                out.append(f"header '{guess.header}' (column {guess.letter}) looks like {guess.column} (score {guess.score:.2f})")
            else:
                out.append(f"header '{guess.header}' (column {guess.letter}) looks like no column of the return: it would be ignored")
        if self.missing_required:
            out.append(f"no header looks like {', '.join(self.missing_required)}, which the return needs")
        return out


def _best_assignment(headers: list[tuple[int, str]], spec: ReturnSpec) -> list[HeaderGuess]:
    """One-to-one, greedy on score: each template column goes to the header most like it."""
    pairs = sorted(((header_score(text, column.name), i, text, column.name) for i, text in headers
                    for column in spec.columns), key=lambda p: (-p[0], p[1]))
    taken_headers: dict[int, tuple[str, float]] = {}
    taken_columns: set[str] = set()
    for score, i, _text, column in pairs:
        if score < MATCH_THRESHOLD:
            break
        if i in taken_headers or column in taken_columns:
            continue
        taken_headers[i] = (column, score)
        taken_columns.add(column)
    return [HeaderGuess(text, i, taken_headers.get(i, (None, 0.0))[0], taken_headers.get(i, (None, 0.0))[1])
            for i, text in headers]


def _suggest_value(value: str, allowed: tuple[str, ...], kind: str) -> str | None:
    folded = value.casefold()
    for option in allowed:
        if option.casefold() == folded:
            return option
    words = {"yes": "Y", "y": "Y", "true": "Y", "no": "N", "n": "N", "false": "N"}
    if kind == "yn" and folded in words:
        return words[folded]
    if kind == "bool01" and folded in words:
        return "1" if words[folded] == "Y" else "0"
    close = difflib.get_close_matches(folded, [o.casefold() for o in allowed], n=1, cutoff=0.6)
    if close:
        return next(o for o in allowed if o.casefold() == close[0])
    for option in allowed:  # "Settled accommodation" -> settled
        if _words(option) and _words(option) in _words(value).split():
            return option
    return None


def _q(value: Any) -> str:
    """A YAML scalar: JSON strings are valid YAML double-quoted strings."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else json.dumps(value)


FOOTER_WORDS = re.compile(r"(?i)^\s*(grand\s+)?(total|totals|sum|count|end of (report|data))\b")


def propose_mapping(path: Path, spec: ReturnSpec, provider_id: str | None = None,
                    max_unpacked_bytes: int = 500 * 1024 * 1024) -> Proposal:
    """Find the sheet and header row most like ``spec``'s template, guess which header is which column,
    and write the mapping that would read the file (value maps and constants only as suggestions)."""
    sheets = read_sheets(path, max_unpacked_bytes)
    best: tuple[float, RawSheet, int, list[HeaderGuess]] | None = None
    for sheet in sheets:
        for number, row in enumerate(sheet.rows[:HEADER_SEARCH_ROWS], start=1):
            headers = [(i, _plain_text(cell)) for i, cell in enumerate(row) if not _is_blank(cell)]
            if not headers:
                continue
            guesses = _best_assignment(headers, spec)
            score = sum(g.score for g in guesses if g.column)
            if best is None or score > best[0] + 1e-9:
                best = (score, sheet, number, guesses)
    sheet_names = tuple(s.name for s in sheets if s.name is not None)
    if best is None:
        return Proposal(spec.return_type, path.name, sheet_names, sheet_names[0] if sheet_names else None, 1, (),
                        spec.column_names, tuple(c.name for c in spec.columns if not c.optional))
    _, sheet, header_row, guesses = best
    matched = {g.column: g for g in guesses if g.column}
    missing = tuple(c.name for c in spec.columns if c.name not in matched)
    missing_required = tuple(c.name for c in spec.columns if c.name not in matched and not c.optional)
    needed = [c.name for c in spec.columns if not c.optional]
    plausible = sum(1 for name in needed if name in matched) >= max(2, len(needed) // 2)
    is_workbook = sheet.name is not None
    body = sheet.rows[header_row:]
    # Footer: trailing rows that are blank or start with a total-like word.
    footer: dict[str, Any] = {}
    labels = []
    for row in reversed(body):
        first = next((_plain_text(c) for c in row if not _is_blank(c)), "")
        if not first:
            continue
        if FOOTER_WORDS.match(first):
            labels.append(first)
            continue
        break
    if labels:
        words = sorted({re.escape(label.strip()) for label in labels})
        footer["first_cell_matches"] = "^(" + "|".join(words) + ")$" if len(words) > 1 else f"^{words[0]}$"
    drop_res = re.compile(footer["first_cell_matches"]) if footer else None
    data_rows = [row for row in body if not all(_is_blank(c) for c in row)
                 and not (drop_res and drop_res.search(next((_plain_text(c) for c in row if not _is_blank(c)), "")))]
    values: dict[str, dict[str, str | None]] = {}
    dates: dict[str, str] = {}
    for column in spec.columns:
        guess = matched.get(column.name)
        if guess is None:
            continue
        cells = [row[guess.position] if guess.position < len(row) else None for row in data_rows]
        texts = [_plain_text(c) for c in cells if not _is_blank(c)]
        allowed = _allowed(column)
        if allowed:
            unknown = sorted({t for t in texts if t not in allowed})[:20]
            if unknown:
                values[column.name] = {t: _suggest_value(t, allowed, column.kind) for t in unknown}
        if column.kind in ("date", "datetime"):
            strings = [c.strip() for c in cells if isinstance(c, str) and c.strip()]
            if strings and all(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2})?", s) for s in strings):
                dates[column.name] = "%d/%m/%Y %H:%M" if column.kind == "datetime" else "%d/%m/%Y"
    constant_suggestions = tuple(name for name in missing_required if name in ("contract_id", "area_code"))
    mapping: dict[str, Any] = {"return_type": spec.return_type}
    if is_workbook and sheets.index(sheet) != 0:
        mapping["sheet"] = {"name": sheet.name}
    if header_row != 1:
        mapping["header_row"] = header_row
    aliases = {g.header: g.column for g in guesses if g.column and g.header.strip() != g.column}
    if aliases:
        mapping["columns"] = aliases
    if footer:
        mapping["drop_rows"] = footer
    if dates:
        mapping["date_formats"] = dates
    yaml_text = _proposal_yaml(mapping, guesses, provider_id, values, constant_suggestions, missing_required)
    return Proposal(spec.return_type, path.name, sheet_names, sheet.name, header_row, tuple(guesses), missing,
                    missing_required, footer, values, dates, constant_suggestions, mapping, yaml_text, plausible)


def _proposal_yaml(mapping: dict, guesses: list[HeaderGuess], provider_id: str | None,
                   values: dict, constant_suggestions: tuple[str, ...], missing_required: tuple[str, ...]) -> str:
    scores = {g.header: g.score for g in guesses}
    lines = [f"# Add under the provider{f' {provider_id}' if provider_id else ''} in the register "
             "(providers: - id: ... mappings:), check every line, then resend the file.",
             "mappings:", f"  - return_type: {mapping['return_type']}"]
    if "sheet" in mapping:
        lines.append(f"    sheet: {{name: {_q(mapping['sheet']['name'])}}}")
    if "header_row" in mapping:
        lines.append(f"    header_row: {mapping['header_row']}")
    if "columns" in mapping:
        lines.append("    columns:")
        for header, column in mapping["columns"].items():
            check = "" if scores.get(header, 0) >= 0.95 else f"   # check: only {scores.get(header, 0):.2f} alike"
            lines.append(f"      {_q(header)}: {column}{check}")
    if "date_formats" in mapping:
        lines.append("    date_formats:   # the text dates look like day/month/year")
        for column, layout in mapping["date_formats"].items():
            lines.append(f"      {column}: {_q(layout)}")
    if "drop_rows" in mapping:
        lines.append("    drop_rows:")
        for name, value in mapping["drop_rows"].items():
            lines.append(f"      {name}: {_q(value)}")
    if values:
        lines.append("    # SUGGESTED value maps: these values are not allowed in the template. Check each, replace any ?,")
        lines.append("    # then uncomment. Nothing is mapped until you do.")
        lines.append("    # values:")
        for column, pairs in values.items():
            lines.append(f"    #   {column}:")
            for source, target in pairs.items():
                lines.append(f"    #     {_q(source)}: {_q(target) if target is not None else '?'}")
    if constant_suggestions:
        lines.append(f"    # SUGGESTED: the file has no {' or '.join(constant_suggestions)} column. If every row is under one")
        lines.append("    # contract, write it here and uncomment. Nothing is assumed until you do.")
        lines.append("    # constants:")
        for name in constant_suggestions:
            lines.append(f"    #   {name}: <your {name.replace('_', ' ')}>")
    others = [name for name in missing_required if name not in constant_suggestions]
    if others:
        lines.append(f"    # no header looks like {', '.join(others)}: add the header that holds it under columns")
    return "\n".join(lines) + "\n"
