"""Published system-measure tables -> the cjs_system_measures return, through a mapping file.

A mapping file (YAML, ``contracts/adapters/*.yaml``) says which column holds the area, which the
period and how it is written, and which columns (``layout: wide``) or which measure labels
(``layout: long``) hold each catalogue measure. A new publication format is a new mapping file.
Anything the mapping names that the file does not have is an ``AdapterError`` naming the mapping
key and the column.

Period formats: ``month`` (2024-03), ``quarter`` (2024-Q1), ``month_range`` ("Jan-Mar 2024", a
calendar quarter) and ``financial_quarter`` ("2023/24 Q1" = April-June 2023).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from contracts.errors import ContractsError
from contracts.geography import AREAS, AREAS_BY_CODE
from contracts.ingest import Issue
from contracts.system import SystemCatalogue, load_catalogue, validate_system_frame

ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
PERIOD_FORMATS = ("month", "quarter", "month_range", "financial_quarter")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
AREA_ALIASES = {
    "metropolitan police": "London", "metropolitan": "London", "london (metropolitan and city)": "London",
    "city of london": "London", "hampshire": "Hampshire and Isle of Wight",
    "hampshire and the isle of wight": "Hampshire and Isle of Wight", "devon & cornwall": "Devon and Cornwall",
    "avon & somerset": "Avon and Somerset",
}


class AdapterError(ContractsError):
    """A mapping file that does not fit itself or the file it is applied to."""


@dataclass(frozen=True)
class MeasureColumns:
    agency: str
    measure: str
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None


@dataclass(frozen=True)
class Mapping:
    name: str
    path: str
    layout: str  # wide, long
    area_column: str
    area_match: str  # name, code
    period_column: str
    period_format: str
    suppressed: tuple[str, ...]
    measures: tuple[MeasureColumns, ...] = ()  # wide
    measure_column: str | None = None  # long
    numerator_column: str | None = None
    denominator_column: str | None = None
    value_column: str | None = None
    labels: dict[str, tuple[str, str]] | None = None


@dataclass(frozen=True)
class AdaptedReturn:
    frame: pd.DataFrame  # the cjs_system_measures columns, plus source_row (the CSV row each figure came from)
    issues: tuple[Issue, ...]  # rows numbered as in the published file

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


def _need(data: dict, key: str, where: str):
    if key not in data or data[key] in (None, ""):
        raise AdapterError(f"{where}: the mapping has no '{key}'")
    return data[key]


def load_mapping(path: Path | str, catalogue: SystemCatalogue | None = None) -> Mapping:
    """Read and check a mapping file against the catalogue (every measure it names must be declared)."""
    path = Path(path)
    if not path.exists() and (ADAPTERS_DIR / f"{path}.yaml").exists():
        path = ADAPTERS_DIR / f"{path}.yaml"
    catalogue = catalogue or load_catalogue()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AdapterError(f"mapping file {path}: cannot be read as YAML ({exc})") from None
    where = f"mapping file {path}"
    if not isinstance(data, dict):
        raise AdapterError(f"{where}: expected a mapping of keys (name, layout, area, period, measures)")
    layout = _need(data, "layout", where)
    if layout not in ("wide", "long"):
        raise AdapterError(f"{where}: layout '{layout}' must be wide or long")
    area, period = _need(data, "area", where), _need(data, "period", where)
    if not isinstance(area, dict) or not isinstance(period, dict):
        raise AdapterError(f"{where}: 'area' and 'period' must each be a mapping with 'column'")
    match = area.get("match", "code")
    if match not in ("name", "code"):
        raise AdapterError(f"{where}: area.match '{match}' must be name or code")
    period_format = period.get("format", "month")
    if period_format not in PERIOD_FORMATS:
        raise AdapterError(f"{where}: period.format '{period_format}' must be one of {', '.join(PERIOD_FORMATS)}")
    declared = catalogue.by_key

    def check_pair(agency, measure, key):
        if (agency, measure) not in declared:
            raise AdapterError(f"{where}: {key} maps to {agency}.{measure}, which the system-measures catalogue does "
                               "not declare (contracts/system_measures.yaml)")

    common = dict(name=str(data.get("name", path.stem)), path=str(path), layout=layout,
                  area_column=_need(area, "column", f"{where}, area"), area_match=match,
                  period_column=_need(period, "column", f"{where}, period"), period_format=period_format,
                  suppressed=tuple(str(s) for s in data.get("suppressed") or ()))
    if layout == "wide":
        measures = []
        for index, entry in enumerate(_need(data, "measures", where)):
            key = f"measures[{index}]"
            agency, measure = _need(entry, "agency", f"{where}, {key}"), _need(entry, "measure", f"{where}, {key}")
            check_pair(agency, measure, key)
            columns = MeasureColumns(agency, measure, entry.get("value"), entry.get("numerator"), entry.get("denominator"))
            unit = declared[(agency, measure)].unit
            if unit == "percent" and not (columns.numerator and columns.denominator):
                raise AdapterError(f"{where}, {key}: {agency}.{measure} is a percent measure: name its numerator "
                                   "and denominator columns")
            if unit != "percent" and not columns.value:
                raise AdapterError(f"{where}, {key}: {agency}.{measure} is a {unit} measure: name its value column")
            measures.append(columns)
        return Mapping(**common, measures=tuple(measures))
    labels = {}
    for label, target in (_need(data, "labels", where) or {}).items():
        check_pair(target.get("agency"), target.get("measure"), f"labels['{label}']")
        labels[str(label)] = (target["agency"], target["measure"])
    return Mapping(**common, measure_column=_need(data, "measure_column", where),
                   numerator_column=data.get("numerator_column"), denominator_column=data.get("denominator_column"),
                   value_column=_need(data, "value_column", where), labels=labels)


def _parse_period(text: str, period_format: str) -> str | None:
    text = text.strip()
    if period_format == "month":
        return text if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text) else None
    if period_format == "quarter":
        return text if re.fullmatch(r"\d{4}-Q[1-4]", text) else None
    if period_format == "month_range":
        match = re.fullmatch(r"([A-Za-z]{3})[a-z]*\s*[-–to ]+\s*([A-Za-z]{3})[a-z]*\s+(\d{4})", text)
        if not match:
            return None
        first, last = match.group(1).lower(), match.group(2).lower()
        if first not in MONTHS or last not in MONTHS:
            return None
        start, end = MONTHS.index(first), MONTHS.index(last)
        if start % 3 or end != start + 2:
            return None  # not a calendar quarter
        return f"{match.group(3)}-Q{start // 3 + 1}"
    match = re.fullmatch(r"(\d{4})/(\d{2})\s*Q([1-4])", text)  # financial year: Q1 = Apr-Jun
    if not match:
        return None
    year, quarter = int(match.group(1)), int(match.group(3))
    return f"{year}-Q{quarter + 1}" if quarter < 4 else f"{year + 1}-Q1"


def _area_lookup(match: str) -> dict[str, str]:
    if match == "code":
        return {code.lower(): code for code in AREAS_BY_CODE}
    lookup = {area.name.lower(): area.code for area in AREAS}
    by_name = {area.name: area.code for area in AREAS}
    lookup.update({alias: by_name[name] for alias, name in AREA_ALIASES.items()})
    return lookup


def _number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("%", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return None


def read_published(path: Path) -> pd.DataFrame:
    """A published CSV as text cells (UTF-8, optional BOM)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).rename(columns=lambda c: str(c).strip())
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise AdapterError(f"{path}: cannot be read as a UTF-8 CSV ({type(exc).__name__}: {exc})") from None


def adapt_frame(published: pd.DataFrame, mapping: Mapping, catalogue: SystemCatalogue | None = None,
                file_name: str = "the file") -> AdaptedReturn:
    """Map a published table (text cells) to the cjs_system_measures return and validate it."""
    catalogue = catalogue or load_catalogue()
    header = list(published.columns)

    def require(column: str | None, key: str) -> None:
        if column and column not in header:
            raise AdapterError(f"mapping {mapping.name} ({mapping.path}): {key} names column '{column}', which "
                               f"{file_name} does not have; its columns are: {', '.join(header)}")

    require(mapping.area_column, "area.column")
    require(mapping.period_column, "period.column")
    if mapping.layout == "wide":
        for index, columns in enumerate(mapping.measures):
            for part in ("value", "numerator", "denominator"):
                require(getattr(columns, part), f"measures[{index}].{part} ({columns.agency}.{columns.measure})")
    else:
        for key in ("measure_column", "numerator_column", "denominator_column", "value_column"):
            require(getattr(mapping, key), key)

    issues: list[Issue] = []
    areas = _area_lookup(mapping.area_match)
    suppressed = set(mapping.suppressed)
    rows: list[dict] = []
    for position, record in enumerate(published.to_dict("records")):
        source_row = position + 2
        area_text = str(record[mapping.area_column]).strip()
        area_code = areas.get(area_text.lower())
        if area_code is None:
            issues.append(Issue("error", source_row, mapping.area_column, "unknown_area",
                                f"'{area_text}' is not a criminal justice area {mapping.area_match} known to cjmonitor"))
            continue
        period_text = str(record[mapping.period_column])
        period = _parse_period(period_text, mapping.period_format)
        if period is None:
            issues.append(Issue("error", source_row, mapping.period_column, "bad_period",
                                f"'{period_text}' is not a period in the mapping's format '{mapping.period_format}'"))
            continue
        if mapping.layout == "wide":
            targets = [(c, c.value, c.numerator, c.denominator) for c in mapping.measures]
        else:
            label = str(record[mapping.measure_column]).strip()
            if label not in mapping.labels:
                issues.append(Issue("warning", source_row, mapping.measure_column, "unmapped_label",
                                    f"measure label '{label}' is not in mapping {mapping.name}; row ignored"))
                continue
            agency, measure = mapping.labels[label]
            targets = [(MeasureColumns(agency, measure), mapping.value_column, mapping.numerator_column,
                        mapping.denominator_column)]
        for columns, value_col, num_col, den_col in targets:
            item = catalogue.get(columns.agency, columns.measure)
            cells = {part: (str(record[col]).strip() if col else "") for part, col in
                     (("value", value_col), ("numerator", num_col), ("denominator", den_col))}
            if any(cell in suppressed for cell in cells.values()):
                issues.append(Issue("warning", source_row, value_col or num_col, "suppressed",
                                    f"{item.label} is published as suppressed or not available; left out"))
                continue
            numbers = {}
            for part, col in (("value", value_col), ("numerator", num_col), ("denominator", den_col)):
                if not cells[part]:
                    numbers[part] = None
                    continue
                numbers[part] = _number(cells[part])
                if numbers[part] is None:
                    issues.append(Issue("error", source_row, col, "not_a_number",
                                        f"'{cells[part]}' in '{col}' ({item.label}) is not a number"))
            if any(numbers[p] is None and cells[p] for p in numbers):
                continue
            value, numerator, denominator = numbers["value"], numbers["numerator"], numbers["denominator"]
            if item.unit == "percent" and value is None and numerator is not None and denominator:
                value = round(100.0 * numerator / denominator, 4)
            if item.unit == "count" and numerator is None:
                numerator = value
            rows.append({"area_code": area_code, "period": period, "agency": item.agency, "measure": item.measure,
                         "numerator": numerator, "denominator": denominator, "value": value, "unit": item.unit,
                         "breakdown": "", "group": "", "source_row": source_row})
    frame = pd.DataFrame(rows, columns=["area_code", "period", "agency", "measure", "numerator", "denominator",
                                        "value", "unit", "breakdown", "group", "source_row"])
    if not frame.empty:
        found, _typed = validate_system_frame(frame.drop(columns=["source_row"]), catalogue)
        for issue in found:
            if issue.row is not None and issue.row >= 2:
                source = int(frame["source_row"].iloc[issue.row - 2])
                label = f"{frame['agency'].iloc[issue.row - 2]}.{frame['measure'].iloc[issue.row - 2]}"
                issue = Issue(issue.severity, source, issue.column, issue.code, f"{label}: {issue.message}")
            issues.append(issue)
    return AdaptedReturn(frame=frame, issues=tuple(issues))


def adapt_csv(path: Path, mapping_path: Path | str, catalogue: SystemCatalogue | None = None) -> AdaptedReturn:
    """Read a published CSV and map it through ``mapping_path`` (a path, or a name in contracts/adapters/)."""
    catalogue = catalogue or load_catalogue()
    mapping = load_mapping(mapping_path, catalogue)
    return adapt_frame(read_published(Path(path)), mapping, catalogue, file_name=Path(path).name)
