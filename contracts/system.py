"""Criminal-justice system measures: the catalogue, the ``cjs_system_measures`` return and its storage.

The catalogue (``contracts/system_measures.yaml``) declares every measure a partner agency reports
for an area: police, CPS, the courts, prisons, probation and youth justice (issue #19). The return is
long-format: one row per area x period x agency x measure (x breakdown group). ``validate_system_frame``
checks a frame against the catalogue and says which row and column is wrong; ``store_system_measures``
stores a clean frame all-or-nothing, replacing earlier figures for the same keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import delete, insert, select, tuple_
from sqlmodel import Session

from contracts.errors import ContractsError
from contracts.geography import AREAS_BY_CODE
from contracts.ingest import Issue, _add, _rows, parse_columns
from contracts.models import SystemMeasureValue
from contracts.returns import ETHNICITY_GROUPS, ColumnSpec, ReturnSpec

CATALOGUE_PATH = Path(__file__).resolve().parent / "system_measures.yaml"
RETURN_TYPE = "cjs_system_measures"
AGENCIES = ("police", "cps", "courts_magistrates", "courts_crown", "prisons", "probation", "youth_justice")
UNITS = ("count", "percent", "days")
DIRECTIONS = ("higher", "lower", "neutral")
BREAKDOWN_GROUPS: dict[str, tuple[str, ...]] = {
    "sex": ("M", "F"),
    "age_band": ("10-17", "18-20", "21-24", "25-34", "35-49", "50+"),
    "ethnic_group": ETHNICITY_GROUPS,
}
PERIOD_RE = re.compile(r"^(?P<year>\d{4})-(?:(?P<month>0[1-9]|1[0-2])|Q(?P<quarter>[1-4]))$")
PERCENT_TOLERANCE = 0.051  # a percentage published to one decimal place


class SystemReturnError(ContractsError):
    """A cjs_system_measures frame (or the catalogue) has problems; ``issues`` lists each with row and column."""

    def __init__(self, message: str, issues: list[Issue] | None = None):
        super().__init__(message)
        self.issues = issues or []


@dataclass(frozen=True)
class SystemMeasure:
    """One declared measure of one agency."""

    agency: str
    measure: str
    name: str
    definition: str
    unit: str  # count, percent, days
    direction: str  # higher, lower, neutral
    source: str
    secondary: bool  # the level below comes from a secondary source
    national: float  # realistic national level (counts: per million people per month)
    level_note: str
    noise: float = 0.0
    persistence: float = 0.0
    breakdowns: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.agency, self.measure)

    @property
    def label(self) -> str:
        return f"{self.agency}.{self.measure}"


@dataclass(frozen=True)
class SystemCatalogue:
    version: int
    agencies: dict[str, str]
    measures: tuple[SystemMeasure, ...]
    denominators: dict[tuple[str, str], float] = field(default_factory=dict)  # demo sizes, per million a month

    def get(self, agency: str, measure: str) -> SystemMeasure:
        for item in self.measures:
            if item.agency == agency and item.measure == measure:
                return item
        raise KeyError((agency, measure))

    @property
    def by_key(self) -> dict[tuple[str, str], SystemMeasure]:
        return {item.key: item for item in self.measures}

    def agencies_of(self, measure: str) -> tuple[str, ...]:
        return tuple(item.agency for item in self.measures if item.measure == measure)


_FIELDS = ("agency", "measure", "name", "definition", "unit", "direction", "source", "secondary", "national",
           "level_note")


def parse_catalogue(data: dict, where: str = "catalogue") -> SystemCatalogue:
    """Build a catalogue from parsed YAML, naming the entry and key of anything wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("measures"), list):
        raise SystemReturnError(f"{where}: expected a mapping with a 'measures' list")
    measures: list[SystemMeasure] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(data["measures"]):
        label = f"{where}: measures[{index}]"
        if not isinstance(entry, dict):
            raise SystemReturnError(f"{label}: each measure must be a mapping of keys")
        missing = [name for name in _FIELDS if name not in entry]
        if missing:
            raise SystemReturnError(f"{label} ({entry.get('measure', '?')}): missing key(s) {', '.join(missing)}")
        if entry["agency"] not in AGENCIES:
            raise SystemReturnError(f"{label}: agency '{entry['agency']}' is not one of {', '.join(AGENCIES)}")
        if entry["unit"] not in UNITS:
            raise SystemReturnError(f"{label}: unit '{entry['unit']}' is not one of {', '.join(UNITS)}")
        if entry["direction"] not in DIRECTIONS:
            raise SystemReturnError(f"{label}: direction '{entry['direction']}' is not one of {', '.join(DIRECTIONS)}")
        breakdowns = tuple(entry.get("breakdowns") or ())
        unknown = [b for b in breakdowns if b not in BREAKDOWN_GROUPS]
        if unknown:
            raise SystemReturnError(f"{label}: breakdown(s) {', '.join(unknown)} not one of {', '.join(BREAKDOWN_GROUPS)}")
        key = (entry["agency"], entry["measure"])
        if key in seen:
            raise SystemReturnError(f"{label}: {key[0]}.{key[1]} is declared twice")
        seen.add(key)
        measures.append(SystemMeasure(
            agency=entry["agency"], measure=str(entry["measure"]), name=str(entry["name"]),
            definition=str(entry["definition"]), unit=entry["unit"], direction=entry["direction"],
            source=str(entry["source"]), secondary=bool(entry["secondary"]), national=float(entry["national"]),
            level_note=str(entry["level_note"]), noise=float(entry.get("noise", 0.0)),
            persistence=float(entry.get("persistence", 0.0)), breakdowns=breakdowns,
        ))
    denominators: dict[tuple[str, str], float] = {}
    for name, size in (data.get("denominators") or {}).items():
        agency, _, measure = str(name).partition(".")
        if (agency, measure) not in seen:
            raise SystemReturnError(f"{where}: denominators.{name} names no declared measure")
        denominators[(agency, measure)] = float(size)
    for item in measures:
        if item.unit != "count" and item.key not in denominators:
            raise SystemReturnError(f"{where}: denominators has no size for {item.label} (a {item.unit} measure)")
    return SystemCatalogue(version=int(data.get("version", 1)), agencies=dict(data.get("agencies") or {}),
                           measures=tuple(measures), denominators=denominators)


@lru_cache(maxsize=4)
def load_catalogue(path: Path | None = None) -> SystemCatalogue:
    """The system-measures catalogue (``contracts/system_measures.yaml`` unless another file is given)."""
    path = path or CATALOGUE_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SystemReturnError(f"{path}: cannot be read as YAML ({exc})") from None
    return parse_catalogue(data, str(path))


SPEC = ReturnSpec(
    return_type=RETURN_TYPE,
    grain="area x period x agency x measure (x breakdown group)",
    description=("Criminal-justice system measures for an area, from partner agencies or publications "
                 "(police, CPS, courts, prisons, probation, youth justice); long format, one figure a row."),
    columns=(
        ColumnSpec("area_code", "str", description="ONS code of the police force area (criminal justice area)"),
        ColumnSpec("period", "str", description="The month (YYYY-MM) or calendar quarter (YYYY-Qn) the figure covers"),
        ColumnSpec("agency", "str", allowed=AGENCIES, description="The agency the measure belongs to"),
        ColumnSpec("measure", "str", description="A measure code from the system-measures catalogue, declared for the agency"),
        ColumnSpec("numerator", "float", required=False, minimum=0,
                   description="Count meeting the measure (for counts: the count; blank for medians)"),
        ColumnSpec("denominator", "float", required=False, minimum=0,
                   description="Count eligible (for medians: the cases the median is of; blank for counts)"),
        ColumnSpec("value", "float", minimum=0, description="The figure: a count, a percentage (0-100) or days"),
        ColumnSpec("unit", "str", allowed=UNITS, description="count, percent or days, as the catalogue declares"),
        ColumnSpec("breakdown", "str", required=False, optional=True, allowed=tuple(BREAKDOWN_GROUPS),
                   description="Blank for the whole area, or sex, age_band or ethnic_group"),
        ColumnSpec("group", "str", required=False, optional=True,
                   description="The group within the breakdown (e.g. F, 18-20, Black); blank when breakdown is blank"),
    ),
    key=("area_code", "period", "agency", "measure", "breakdown", "group"),
    period_columns=(),
    le_rules=(("numerator", "denominator"),),
    frequency="monthly or quarterly",
)


def period_type(period: str) -> str | None:
    match = PERIOD_RE.match(period)
    if not match:
        return None
    return "month" if match.group("month") else "quarter"


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as the text a CSV would carry (blanks as ''), so typed and text frames are checked alike."""
    out = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_float_dtype(series):
            text = series.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
        else:
            text = series.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v))
        out[str(name).strip()] = text.str.strip()
    return out.reset_index(drop=True)


def validate_system_frame(frame: pd.DataFrame, catalogue: SystemCatalogue | None = None,
                          area_codes: set[str] | None = None) -> tuple[list[Issue], pd.DataFrame | None]:
    """Every problem of a long-format cjs_system_measures frame, and the typed frame when there are none.

    Rows are numbered as in a spreadsheet (header = row 1). ``area_codes`` defaults to the 42 areas.
    """
    catalogue = catalogue or load_catalogue()
    area_codes = set(AREAS_BY_CODE) if area_codes is None else set(area_codes)
    text = _as_text(frame)
    issues: list[Issue] = []
    missing = [c.name for c in SPEC.columns if c.name not in text.columns and not c.optional]
    for name in missing:
        issues.append(Issue("error", 1, name, "missing_column",
                            f"column '{name}' is missing from the header row; the {RETURN_TYPE} return has: "
                            f"{', '.join(SPEC.column_names)}"))
    for name in text.columns:
        if name not in SPEC.column_names:
            issues.append(Issue("warning", 1, name, "unknown_column", f"column '{name}' is not in the {RETURN_TYPE} spec and was ignored"))
    if missing:
        return issues, None
    for column in SPEC.columns:
        if column.name not in text.columns:
            text[column.name] = ""
    if text.empty:
        issues.append(Issue("error", None, None, "no_rows", "the return has no data rows: send it with its figures"))
        return issues, None
    parsed = parse_columns(text, SPEC, issues)

    period = parsed["period"]
    bad_period = period.notna() & ~period.fillna("").str.match(PERIOD_RE.pattern)
    _add(issues, "error", _rows(bad_period), "period", "bad_period",
         lambda r: f"period '{period.iloc[r - 2]}' must be a month YYYY-MM or a quarter YYYY-Qn (e.g. 2024-03 or 2024-Q1)")
    area = parsed["area_code"]
    _add(issues, "error", _rows(area.notna() & ~area.isin(sorted(area_codes))), "area_code", "unknown_area",
         lambda r: f"area '{area.iloc[r - 2]}' is not a criminal justice area code (E23/W15 police force area)")

    agency, measure = parsed["agency"], parsed["measure"]
    declared = catalogue.by_key
    known_measures = {m.measure for m in catalogue.measures}
    unknown = measure.notna() & ~measure.isin(sorted(known_measures))
    _add(issues, "error", _rows(unknown), "measure", "unknown_measure",
         lambda r: f"measure '{measure.iloc[r - 2]}' is not in the system-measures catalogue "
                   f"(contracts/system_measures.yaml); use one of its codes")
    pair_known = pd.Series([(a, m) in declared for a, m in zip(agency, measure, strict=True)], index=text.index)
    wrong_agency = measure.notna() & agency.notna() & ~unknown & ~pair_known
    _add(issues, "error", _rows(wrong_agency), "agency", "wrong_agency",
         lambda r: f"measure '{measure.iloc[r - 2]}' is not declared for agency '{agency.iloc[r - 2]}'; the catalogue "
                   f"declares it for {', '.join(catalogue.agencies_of(measure.iloc[r - 2]))}")

    unit = parsed["unit"]
    expected_unit = pd.Series([declared[(a, m)].unit if (a, m) in declared else None
                               for a, m in zip(agency, measure, strict=True)], index=text.index, dtype=object)
    wrong_unit = pair_known & unit.notna() & (unit != expected_unit)
    _add(issues, "error", _rows(wrong_unit), "unit", "wrong_unit",
         lambda r: f"unit '{unit.iloc[r - 2]}' differs from the catalogue's '{expected_unit.iloc[r - 2]}' for "
                   f"{agency.iloc[r - 2]}.{measure.iloc[r - 2]}")

    numerator, denominator, value = parsed["numerator"], parsed["denominator"], parsed["value"]
    # numerator <= denominator is the spec's le_rule
    _add(issues, "error", _rows(numerator.notna() & denominator.notna() & (numerator > denominator)), "numerator",
         "exceeds", lambda r: f"numerator {numerator.iloc[r - 2]:g} is larger than the denominator "
                              f"{denominator.iloc[r - 2]:g}: it cannot be")
    is_percent = expected_unit == "percent"
    no_parts = is_percent & (numerator.isna() | denominator.isna()) & value.notna()
    _add(issues, "error", _rows(no_parts), "numerator", "percent_needs_parts",
         "a percent measure needs its numerator and denominator, so figures can be pooled and checked: fill both in")
    with np.errstate(divide="ignore", invalid="ignore"):
        implied = 100.0 * numerator / denominator
    inconsistent = is_percent & numerator.notna() & denominator.notna() & value.notna() & (
        ((denominator > 0) & ((value - implied).abs() > PERCENT_TOLERANCE)) | ((denominator == 0) & (value != 0)))
    _add(issues, "error", _rows(inconsistent), "value", "value_inconsistent",
         lambda r: f"value {value.iloc[r - 2]:g} is not 100 x numerator / denominator "
                   f"({implied.iloc[r - 2]:.2f}): correct the value or its parts")
    over = is_percent & value.notna() & (value > 100)
    _add(issues, "error", _rows(over), "value", "out_of_range",
         lambda r: f"value {value.iloc[r - 2]:g} is a percentage above 100")
    is_count = expected_unit == "count"
    count_mismatch = is_count & numerator.notna() & value.notna() & (numerator != value)
    _add(issues, "error", _rows(count_mismatch), "value", "value_inconsistent",
         lambda r: f"a count's value ({value.iloc[r - 2]:g}) must equal its numerator ({numerator.iloc[r - 2]:g})")

    breakdown = parsed["breakdown"]
    group = parsed["group"]
    half = breakdown.isna() != group.isna()
    _add(issues, "error", _rows(half), "group", "breakdown_group",
         "breakdown and group go together: fill in both (e.g. sex and F) or leave both blank")
    allowed_group = pd.Series([g in BREAKDOWN_GROUPS.get(b, ()) for b, g in zip(breakdown, group, strict=True)],
                              index=text.index)
    bad_group = breakdown.notna() & group.notna() & ~allowed_group
    _add(issues, "error", _rows(bad_group), "group", "not_allowed",
         lambda r: f"group '{group.iloc[r - 2]}' is not a {breakdown.iloc[r - 2]} group; use one of "
                   f"{', '.join(BREAKDOWN_GROUPS.get(breakdown.iloc[r - 2], ()))}")
    undeclared = pd.Series([b is not None and isinstance(b, str) and (a, m) in declared
                            and b not in declared[(a, m)].breakdowns
                            for a, m, b in zip(agency, measure, breakdown, strict=True)], index=text.index)
    _add(issues, "error", _rows(undeclared), "breakdown", "breakdown_not_declared",
         lambda r: f"the catalogue declares no {breakdown.iloc[r - 2]} breakdown for "
                   f"{agency.iloc[r - 2]}.{measure.iloc[r - 2]}")

    keys = pd.DataFrame({name: parsed[name].fillna("") for name in SPEC.key})
    duplicated = keys.duplicated(keep="first") & parsed["measure"].notna()
    _add(issues, "error", _rows(duplicated), "measure", "duplicate_key",
         "another row has the same area_code, period, agency, measure, breakdown and group: each figure must appear once")

    if any(issue.severity == "error" for issue in issues):
        return issues, None
    typed = pd.DataFrame({
        "area_code": area, "period": period, "period_type": period.map(period_type), "agency": agency,
        "measure": measure, "breakdown": breakdown.fillna(""), "group": group.fillna(""),
        "numerator": numerator.astype(float), "denominator": denominator.astype(float), "value": value.astype(float),
        "unit": unit,
    })
    return issues, typed


@dataclass(frozen=True)
class StoreOutcome:
    rows: int
    replaced: int
    warnings: tuple[Issue, ...] = ()


def _describe(issues: list[Issue], limit: int = 10) -> str:
    errors = [i for i in issues if i.severity == "error"]
    lines = [f"row {i.row if i.row is not None else '-'}, column {i.column or '-'}: {i.message}" for i in errors[:limit]]
    more = f"\n... and {len(errors) - limit} more" if len(errors) > limit else ""
    return "\n".join(lines) + more


def store_system_measures(session: Session, frame: pd.DataFrame, *, source: str,
                          catalogue: SystemCatalogue | None = None) -> StoreOutcome:
    """Validate ``frame`` and store it in ``system_measure_value``, all or nothing.

    Figures already stored for the same (area, period, agency, measure, breakdown, group) are replaced;
    any error raises ``SystemReturnError`` (with every issue) and leaves the table as it was.
    """
    issues, typed = validate_system_frame(frame, catalogue)
    if typed is None:
        errors = sum(1 for i in issues if i.severity == "error")
        raise SystemReturnError(f"{source}: {errors} errors in the {RETURN_TYPE} return; nothing stored:\n"
                                f"{_describe(issues)}", issues)
    return store_typed(session, typed, source=source, warnings=tuple(i for i in issues if i.severity == "warning"))


def store_typed(session: Session, typed: pd.DataFrame, *, source: str, warnings: tuple[Issue, ...] = ()) -> StoreOutcome:
    """Store a frame ``validate_system_frame`` returned (typed, no errors), replacing the same keys, all or nothing."""
    now = datetime.now(UTC)
    records = typed.assign(source=source[:200], loaded_at=now)
    records = records.astype(object).where(records.notna(), None).to_dict("records")
    columns = SystemMeasureValue.__table__.c
    key_columns = (columns.area_code, columns.period, columns.agency, columns.measure, columns.breakdown, columns.group)
    keys = list(typed[list(SPEC.key)].itertuples(index=False, name=None))
    replaced = 0
    periods = sorted(typed["period"].unique().tolist())
    table = SystemMeasureValue.__table__
    stored_before = session.execute(select(table.c.id).where(table.c.period.in_(periods),
                                                             table.c.area_code.in_(sorted(typed["area_code"].unique())))
                                    .limit(1)).first() is not None
    with session.begin_nested():
        for start in range(0, len(keys) if stored_before else 0, 500):
            result = session.execute(delete(SystemMeasureValue).where(tuple_(*key_columns).in_(keys[start:start + 500])))
            replaced += result.rowcount or 0
        for start in range(0, len(records), 20_000):
            session.execute(insert(SystemMeasureValue), records[start:start + 20_000])
    return StoreOutcome(rows=len(records), replaced=replaced, warnings=warnings)


def read_system_measures(session: Session, *, area_code: str | None = None, breakdowns: bool = False) -> pd.DataFrame:
    """Stored system measures as a long frame (whole-area figures unless ``breakdowns``)."""
    table = SystemMeasureValue.__table__
    columns = ["area_code", "period", "period_type", "agency", "measure", "breakdown", "group", "numerator",
               "denominator", "value", "unit"]
    query = select(*(table.c[name] for name in columns))
    if area_code is not None:
        query = query.where(table.c.area_code == area_code)
    if not breakdowns:
        query = query.where(table.c.breakdown == "")
    rows = session.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=columns)
