"""Local services declared as data: a return spec and KPIs from a small vocabulary, no code.

A register's ``services:`` list holds one mapping per local service (built-in services are
``crc``, ``ttg``, ``em`` and ``health``). :func:`parse_service` checks one mapping and returns a
frozen :class:`ServiceSpec`; :meth:`ServiceSpec.to_dict` gives the register form back, so
``parse_service(spec.to_dict()) == spec``.

Keys of a service (``*`` = required)::

    id*            slug, 2-20 characters [a-z0-9_], not crc|ttg|em|health|reoffending: the contracts'
                   ``service`` value
    name*          what people call the service ("Women's centre")
    description    one or two sentences for the specs page
    return*:
      type*          the return type, 2-30 characters [a-z0-9_], not a built-in return type; files are
                     <provider>_<type>_<YYYY-MM>[_v<n>].csv|xlsx
      description    what one row is, for the specs page and template
      period_column* a required date column: a row belongs to the month its date falls in
      unique         columns no two rows may share (e.g. [person_id, referral_date]); default none
      columns*:      one mapping per column, in template order:
        name*          [a-z][a-z0-9_], at most 28 characters, no "__", not a reserved SQL word or one of
                       id, submission_id, period, person_key; ``contract_id`` (type text, required) is
                       compulsory
        type*          text | person_key | date | datetime | int | float | yn
                       (person_key: the provider's identifier, pseudonymised at load as for built-in returns)
        required       true: a blank cell is an error (default false)
        allowed        text columns: the only values allowed
        not_before     date columns: another date column this one may not precede
        min, max       int and float columns: the allowed range
        description    shown in the specs and the template
    kpis*: one mapping per KPI:
      code*          [a-z][a-z0-9_], 3-40 characters, unique across services and built-in KPIs
      name*          the KPI's name on scorecards
      direction*     higher | lower (which is better)
      description    what it measures, in words
      unit           percent (proportions, default), days (median_days), count (volume)
      and exactly one way of deriving it:
      numerator* + denominator*   a proportion: rows meeting ``numerator`` among rows meeting
                                  ``denominator``, per contract and month
      median_days: {from, to, working_days: false}   the median days from one date column to another
                                  among the rows meeting ``denominator`` (default all) with both dates;
                                  interval by order statistics; judged on an XmR chart
      volume: <condition>         the number of rows meeting the condition in the month, against the
                                  contract's target (the contracted volume, e.g. 120); Poisson interval;
                                  judged on an XmR chart
      sql: kpis/file.sql          a SQL file in the office's home returning contract_id, period,
                                  submission_id, numerator, denominator, with the bind parameters
                                  :first_period and :last_period, as the files of ``sql/``; the rows are
                                  in table ``declared_<return type>`` (columns as declared, plus period and
                                  submission_id); ``unit`` says what the numerator counts

Conditions (a mapping with exactly one key)::

    {all: true}                                        every row
    {column_in: {column: outcome, values: [a, b]}}     the column holds one of the values
    {column_not_null: first_seen_date}                 the column is filled in
    {within_days: {from: d1, to: d2, days: 21}}        d2 filled in, 0 <= d2 - d1 <= 21 calendar days
    {within_working_days: {from: d1, to: d2, days: 5}} the same in working days (Monday to Friday, not
                                                       England and Wales bank holidays); counted as
                                                       numpy.busday_count: Friday to the next Friday is 5
    {and: [c1, c2, ...]}, {or: [c1, c2, ...]}, {not: c}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from contracts.errors import ContractsError
from contracts.models import DeclaredService
from contracts.returns import RETURN_TYPES, SYSTEM_RETURN_TYPE, ColumnSpec, ReturnSpec

COLUMN_TYPES = {"text": "str", "person_key": "str", "date": "date", "datetime": "datetime", "int": "int",
                "float": "float", "yn": "yn"}
BUILT_IN_SERVICES = ("crc", "ttg", "em", "health", "reoffending")
DIRECTIONS = ("higher", "lower")
CONDITIONS = ("all", "column_in", "column_not_null", "within_days", "within_working_days", "and", "or", "not")
DERIVATIONS = ("numerator", "median_days", "volume", "sql")
UNITS = {"proportion": "percent", "median_days": "days", "volume": "count", "sql": "percent"}
KEY_COLUMNS = ("id", "submission_id", "period", "person_key")
SERVICE_KEYS = ("id", "name", "description", "return", "kpis")
RETURN_KEYS = ("type", "description", "period_column", "unique", "columns")
COLUMN_KEYS = ("name", "type", "required", "allowed", "not_before", "min", "max", "description")
KPI_KEYS = ("code", "name", "direction", "description", "unit", "numerator", "denominator", "median_days",
            "volume", "sql")

_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,19}$")
_RETURN_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
_COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{2,39}$")


def _reserved_words() -> frozenset[str]:
    from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS
    from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer

    return frozenset(RESERVED_WORDS) | frozenset(SQLiteIdentifierPreparer.reserved_words)


class ServiceSpecError(ContractsError, ValueError):
    """A declared service that cannot be used; ``problems`` lists ``(key_path, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


# ------------------------------------------------------------------ the parsed forms


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    type: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    not_before: str | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.required:
            out["required"] = True
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.not_before is not None:
            out["not_before"] = self.not_before
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Condition:
    """One node of the condition vocabulary (``op`` is one of :data:`CONDITIONS`)."""

    op: str
    column: str | None = None
    values: tuple[str, ...] = ()
    start: str | None = None  # from
    end: str | None = None  # to
    days: int | None = None
    parts: tuple[Condition, ...] = ()

    def to_dict(self) -> dict:
        if self.op == "all":
            return {"all": True}
        if self.op == "column_in":
            return {"column_in": {"column": self.column, "values": list(self.values)}}
        if self.op == "column_not_null":
            return {"column_not_null": self.column}
        if self.op in ("within_days", "within_working_days"):
            return {self.op: {"from": self.start, "to": self.end, "days": self.days}}
        if self.op == "not":
            return {"not": self.parts[0].to_dict()}
        return {self.op: [part.to_dict() for part in self.parts]}

    def columns(self) -> set[str]:
        names = {n for n in (self.column, self.start, self.end) if n}
        for part in self.parts:
            names |= part.columns()
        return names

    def describe(self) -> str:
        if self.op == "all":
            return "every row"
        if self.op == "column_in":
            return f"{self.column} is {' or '.join(self.values)}"
        if self.op == "column_not_null":
            return f"{self.column} is filled in"
        if self.op in ("within_days", "within_working_days"):
            unit = "working days" if self.op == "within_working_days" else "days"
            return f"{self.end} within {self.days} {unit} of {self.start}"
        if self.op == "not":
            return f"not ({self.parts[0].describe()})"
        return f" {self.op} ".join(f"({part.describe()})" for part in self.parts)


ALL = Condition("all")


@dataclass(frozen=True)
class MedianDays:
    start: str
    end: str
    working_days: bool = False

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"from": self.start, "to": self.end}
        if self.working_days:
            out["working_days"] = True
        return out


@dataclass(frozen=True)
class DeclaredKpi:
    code: str
    name: str
    direction: str
    unit: str
    kind: str  # proportion, median_days, volume, sql
    description: str = ""
    numerator: Condition | None = None
    denominator: Condition | None = None  # proportion: the eligible rows; median_days: the population
    median_days: MedianDays | None = None
    volume: Condition | None = None
    sql: str | None = None

    @property
    def definition(self) -> dict:
        """The derivation in register form (numerator/denominator, median_days, volume or sql)."""
        out: dict[str, Any] = {}
        if self.kind == "proportion":
            out = {"denominator": self.denominator.to_dict(), "numerator": self.numerator.to_dict()}
        elif self.kind == "median_days":
            out = {"median_days": self.median_days.to_dict()}
            if self.denominator is not None:
                out["denominator"] = self.denominator.to_dict()
        elif self.kind == "volume":
            out = {"volume": self.volume.to_dict()}
        else:
            out = {"sql": self.sql}
        return out

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"code": self.code, "name": self.name, "direction": self.direction}
        if self.description:
            out["description"] = self.description
        if self.unit != UNITS[self.kind]:
            out["unit"] = self.unit
        return {**out, **self.definition}

    def describe(self) -> tuple[str, str]:
        """(numerator, denominator) in words, for the KPI catalogue."""
        if self.kind == "proportion":
            return self.numerator.describe(), self.denominator.describe()
        if self.kind == "median_days":
            unit = "working days" if self.median_days.working_days else "days"
            population = self.denominator.describe() if self.denominator else "every row"
            return (f"median {unit} from {self.median_days.start} to {self.median_days.end}",
                    f"rows with both dates among: {population}")
        if self.kind == "volume":
            return f"rows in the month where {self.volume.describe()}", "the contracted monthly volume (the target)"
        return f"SQL file {self.sql}", f"SQL file {self.sql}"


@dataclass(frozen=True)
class ServiceSpec:
    id: str
    name: str
    return_type: str
    period_column: str
    columns: tuple[DeclaredColumn, ...]
    kpis: tuple[DeclaredKpi, ...]
    unique: tuple[str, ...] = ()
    description: str = ""
    return_description: str = ""
    return_spec: ReturnSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "return_spec", _return_spec(self))

    def column(self, name: str) -> DeclaredColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def date_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.type == "date")

    @property
    def person_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.type == "person_key")

    def kpi(self, code: str) -> DeclaredKpi:
        for kpi in self.kpis:
            if kpi.code == code:
                return kpi
        raise KeyError(code)

    def to_dict(self) -> dict:
        ret: dict[str, Any] = {"type": self.return_type}
        if self.return_description:
            ret["description"] = self.return_description
        ret["period_column"] = self.period_column
        if self.unique:
            ret["unique"] = list(self.unique)
        ret["columns"] = [c.to_dict() for c in self.columns]
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["return"] = ret
        out["kpis"] = [k.to_dict() for k in self.kpis]
        return out


def _return_spec(spec: ServiceSpec) -> ReturnSpec:
    columns = tuple(
        ColumnSpec(c.name, COLUMN_TYPES[c.type], required=c.required, allowed=c.allowed, minimum=c.min,
                   maximum=c.max, description=c.description or _default_description(c),
                   pseudonymise=c.type == "person_key")
        for c in spec.columns
    )
    return ReturnSpec(
        return_type=spec.return_type, grain="declared",
        description=spec.return_description or f"Records of the local service {spec.name!r}, by {spec.period_column}.",
        columns=columns, key=spec.unique, period_columns=(spec.period_column,),
        order_rules=tuple((c.not_before, c.name) for c in spec.columns if c.not_before),
        extra={"service": spec.id, "declared": "yes"},
    )


def _default_description(column: DeclaredColumn) -> str:
    words = {"text": "Text", "person_key": "The provider's identifier for the person; pseudonymised at load",
             "date": "Date, YYYY-MM-DD", "datetime": "Date and time, YYYY-MM-DD HH:MM", "int": "Whole number",
             "float": "Number", "yn": "Y or N"}
    text = words[column.type]
    if column.allowed:
        text += f": one of {', '.join(column.allowed)}"
    if column.not_before:
        text += f"; not before {column.not_before}"
    return text


# ------------------------------------------------------------------ parsing


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))


def _unknown_keys(d: dict, allowed: tuple[str, ...], key: str, problems: _Problems) -> None:
    for name in d:
        if name not in allowed:
            problems.add(f"{key}.{name}", f"unknown key {name!r}: the keys here are {', '.join(allowed)}")


def _text(d: dict, name: str, key: str, problems: _Problems, *, required: bool = True) -> str | None:
    value = d.get(name)
    if value is None:
        if required:
            problems.add(f"{key}.{name}", f"{name} is missing: add it")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{key}.{name}", f"{name} must be non-empty text, found {value!r}")
        return None
    return value.strip()


def _parse_column(d: Any, key: str, problems: _Problems, reserved: frozenset[str]) -> DeclaredColumn | None:
    if not isinstance(d, dict):
        problems.add(key, f"each column is a mapping like {{name: outcome, type: text}}, found {d!r}")
        return None
    _unknown_keys(d, COLUMN_KEYS, key, problems)
    name = _text(d, "name", key, problems)
    kind = _text(d, "type", key, problems)
    ok = True
    if name is not None and (not _COLUMN.match(name) or "__" in name):
        problems.add(f"{key}.name", f"column name {name!r} must start with a letter and hold only a-z, 0-9 and _ "
                                    "(at most 28 characters, no double underscore): rename it")
        ok = False
    elif name is not None and (name in KEY_COLUMNS or name in reserved):
        problems.add(f"{key}.name", f"column name {name!r} is reserved (a key column or an SQL word): rename it, "
                                    f"e.g. {name}_value")
        ok = False
    if kind is not None and kind not in COLUMN_TYPES:
        problems.add(f"{key}.type", f"type {kind!r} is not one of {', '.join(COLUMN_TYPES)}")
        ok = False
    required = d.get("required", False)
    if not isinstance(required, bool):
        problems.add(f"{key}.required", f"required must be true or false, found {required!r}")
        ok = False
    allowed = d.get("allowed")
    if allowed is not None:
        if kind not in ("text",):
            problems.add(f"{key}.allowed", f"allowed applies to text columns only, and this column is {kind}: "
                                           "remove allowed or make the column text")
            ok = False
        elif (not isinstance(allowed, list) or not allowed
              or not all(isinstance(v, str) and v.strip() == v and v for v in allowed)):
            problems.add(f"{key}.allowed", f"allowed must be a non-empty list of text values, found {allowed!r}")
            ok = False
        elif len(set(allowed)) != len(allowed):
            problems.add(f"{key}.allowed", "allowed lists a value twice: list each value once")
            ok = False
    bounds = {}
    for bound in ("min", "max"):
        value = d.get(bound)
        if value is None:
            continue
        if kind not in ("int", "float"):
            problems.add(f"{key}.{bound}", f"{bound} applies to int and float columns only: remove it")
            ok = False
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.add(f"{key}.{bound}", f"{bound} must be a number, found {value!r}")
            ok = False
        else:
            bounds[bound] = value
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problems.add(f"{key}.max", f"max {bounds['max']} is below min {bounds['min']}: swap them")
        ok = False
    not_before = d.get("not_before")
    if not_before is not None and (not isinstance(not_before, str) or not not_before):
        problems.add(f"{key}.not_before", f"not_before must name another date column, found {not_before!r}")
        ok = False
    description = d.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{key}.description", "description must be text")
        ok = False
    if not ok or name is None or kind is None:
        return None
    return DeclaredColumn(name=name, type=kind, required=required, allowed=tuple(allowed) if allowed else None,
                          not_before=not_before, min=bounds.get("min"), max=bounds.get("max"),
                          description=description.strip())


def _parse_condition(d: Any, key: str, columns: dict[str, DeclaredColumn], problems: _Problems) -> Condition | None:
    if not isinstance(d, dict) or len(d) != 1:
        problems.add(key, f"a condition is a mapping with exactly one of {', '.join(CONDITIONS)}, "
                          f"e.g. {{all: true}}; found {d!r}")
        return None
    (op, body), = d.items()
    path = f"{key}.{op}"
    if op not in CONDITIONS:
        problems.add(path, f"unknown condition {op!r}: use one of {', '.join(CONDITIONS)}")
        return None

    def known(name: Any, where: str) -> DeclaredColumn | None:
        if not isinstance(name, str) or not name:
            problems.add(where, f"name a column of the return, found {name!r}")
            return None
        if name not in columns:
            problems.add(where, f"the return has no column {name!r}: use one of {', '.join(columns)} "
                                "or add the column to return.columns")
            return None
        return columns[name]

    if op == "all":
        if body is not True:
            problems.add(path, f"write all: true, found {body!r}")
            return None
        return ALL
    if op == "column_not_null":
        column = known(body, path)
        return Condition(op, column=body) if column else None
    if op == "column_in":
        if not isinstance(body, dict) or set(body) != {"column", "values"}:
            problems.add(path, "write column_in: {column: <name>, values: [<value>, ...]}")
            return None
        column = known(body["column"], f"{path}.column")
        values = body["values"]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            problems.add(f"{path}.values", f"values must be a non-empty list of text values, found {values!r}")
            return None
        if column is None:
            return None
        if column.type not in ("text", "yn"):
            problems.add(f"{path}.column", f"column_in compares text, and {column.name!r} is a {column.type} column: "
                                           "use a text or yn column")
            return None
        allowed = column.allowed if column.type == "text" else ("Y", "N")
        if allowed:
            stray = [v for v in values if v not in allowed]
            if stray:
                problems.add(f"{path}.values", f"{', '.join(map(repr, stray))} can never occur in {column.name!r}, whose "
                                               f"allowed values are {', '.join(allowed)}: correct the value")
                return None
        return Condition(op, column=column.name, values=tuple(values))
    if op in ("within_days", "within_working_days"):
        if not isinstance(body, dict) or set(body) != {"from", "to", "days"}:
            problems.add(path, f"write {op}: {{from: <date column>, to: <date column>, days: <whole number>}}")
            return None
        ok = True
        for end in ("from", "to"):
            column = known(body[end], f"{path}.{end}")
            if column is None:
                ok = False
            elif column.type != "date":
                problems.add(f"{path}.{end}", f"{op} counts days between two date columns, and {column.name!r} is a "
                                              f"{column.type} column: name a date column (or declare {column.name!r} "
                                              "with type: date)")
                ok = False
        days = body["days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            problems.add(f"{path}.days", f"days must be a whole number of 0 or more, found {days!r}")
            ok = False
        if ok and body["from"] == body["to"]:
            problems.add(f"{path}.to", "from and to name the same column: name two different date columns")
            ok = False
        return Condition(op, start=body["from"], end=body["to"], days=days) if ok else None
    if op == "not":
        part = _parse_condition(body, path, columns, problems)
        return Condition(op, parts=(part,)) if part else None
    if not isinstance(body, list) or len(body) < 2:
        problems.add(path, f"{op} takes a list of at least two conditions")
        return None
    parts = [_parse_condition(item, f"{path}[{i}]", columns, problems) for i, item in enumerate(body)]
    if any(p is None for p in parts):
        return None
    return Condition(op, parts=tuple(parts))


def _parse_kpi(d: Any, key: str, columns: dict[str, DeclaredColumn], problems: _Problems) -> DeclaredKpi | None:
    if not isinstance(d, dict):
        problems.add(key, f"each KPI is a mapping with code, name, direction and its derivation, found {d!r}")
        return None
    _unknown_keys(d, KPI_KEYS, key, problems)
    before = len(problems.items)
    code = _text(d, "code", key, problems)
    name = _text(d, "name", key, problems)
    direction = _text(d, "direction", key, problems)
    description = d.get("description", "")
    if code is not None and not _CODE.match(code):
        problems.add(f"{key}.code", f"KPI code {code!r} must be 3-40 characters, a-z, 0-9 and _, starting with a letter")
    if code is not None:
        from contracts.catalogue import MEASURES

        if code in {m.code for m in MEASURES}:
            problems.add(f"{key}.code", f"{code!r} is a built-in KPI code: choose another code for the local KPI")
    if direction is not None and direction not in DIRECTIONS:
        problems.add(f"{key}.direction", f"direction must be higher or lower (which is better), found {direction!r}")
    if not isinstance(description, str):
        problems.add(f"{key}.description", "description must be text")
    ways = [w for w in DERIVATIONS if w in d]
    if "denominator" in d and "numerator" not in d and "median_days" not in d:
        problems.add(f"{key}.numerator", "a KPI with a denominator needs a numerator (or median_days): add it")
        return None
    if len(ways) != 1:
        found = ", ".join(ways) if ways else "none"
        problems.add(key, f"give exactly one derivation: numerator and denominator, median_days, volume or sql "
                          f"(found {found})")
        return None
    way = ways[0]
    kind = "proportion" if way == "numerator" else way
    numerator = denominator = volume = None
    median = sql = None
    if kind == "proportion":
        if "denominator" not in d:
            problems.add(f"{key}.denominator", "a proportion needs a denominator: add one, e.g. denominator: {all: true}")
        else:
            denominator = _parse_condition(d["denominator"], f"{key}.denominator", columns, problems)
        numerator = _parse_condition(d["numerator"], f"{key}.numerator", columns, problems)
    elif kind == "median_days":
        body = d["median_days"]
        if not isinstance(body, dict) or not {"from", "to"} <= set(body) or not set(body) <= {"from", "to", "working_days"}:
            problems.add(f"{key}.median_days", "write median_days: {from: <date column>, to: <date column>} "
                                               "(and working_days: true to count working days)")
        else:
            ok = True
            for end in ("from", "to"):
                column = columns.get(body[end]) if isinstance(body[end], str) else None
                if column is None:
                    problems.add(f"{key}.median_days.{end}", f"the return has no column {body[end]!r}: use one of "
                                                             f"{', '.join(c for c in columns if columns[c].type == 'date')}")
                    ok = False
                elif column.type != "date":
                    problems.add(f"{key}.median_days.{end}", f"median_days counts days between two date columns, and "
                                                             f"{column.name!r} is a {column.type} column: name a date column")
                    ok = False
            working = body.get("working_days", False)
            if not isinstance(working, bool):
                problems.add(f"{key}.median_days.working_days", "working_days must be true or false")
                ok = False
            if ok:
                median = MedianDays(body["from"], body["to"], working)
        if "denominator" in d:
            denominator = _parse_condition(d["denominator"], f"{key}.denominator", columns, problems)
    elif kind == "volume":
        volume = _parse_condition(d["volume"], f"{key}.volume", columns, problems)
    else:
        sql = d["sql"]
        if not isinstance(sql, str) or not sql.endswith(".sql") or sql.startswith("/") or ".." in sql.split("/"):
            problems.add(f"{key}.sql", f"sql must be a path to a .sql file inside the office's home, relative to it "
                                       f"(e.g. kpis/{code or 'my_kpi'}.sql), found {sql!r}")
            sql = None
    unit = d.get("unit", UNITS[kind])
    if not isinstance(unit, str) or not unit.strip() or len(unit) > 20:
        problems.add(f"{key}.unit", f"unit must be short text (e.g. percent, days, count), found {unit!r}")
    if len(problems.items) > before:
        return None
    return DeclaredKpi(code=code, name=name, direction=direction, unit=unit, kind=kind,
                       description=description.strip(), numerator=numerator, denominator=denominator,
                       median_days=median, volume=volume, sql=sql)


def parse_service(d: dict, key: str = "services[0]") -> ServiceSpec:
    """Check one declared service (register form) and return it; every problem at once in a :class:`ServiceSpecError`."""
    problems = _Problems()
    if not isinstance(d, dict):
        raise ServiceSpecError([(key, f"a service is a mapping with {', '.join(SERVICE_KEYS)}, found {d!r}")])
    _unknown_keys(d, SERVICE_KEYS, key, problems)
    service_id = _text(d, "id", key, problems)
    name = _text(d, "name", key, problems)
    description = d.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{key}.description", "description must be text")
        description = ""
    if service_id is not None:
        if service_id in BUILT_IN_SERVICES:
            problems.add(f"{key}.id", f"{service_id!r} is a built-in service: a declared service needs its own id")
        elif not _SLUG.match(service_id):
            problems.add(f"{key}.id", f"service id {service_id!r} must be 2-20 characters, a-z, 0-9 and _, "
                                      "starting with a letter")
    ret = d.get("return")
    columns: dict[str, DeclaredColumn] = {}
    return_type = period_column = None
    unique: list[str] = []
    return_description = ""
    rkey = f"{key}.return"
    if not isinstance(ret, dict):
        problems.add(rkey, "return is missing: give the return's type, period_column and columns")
    else:
        _unknown_keys(ret, RETURN_KEYS, rkey, problems)
        return_type = _text(ret, "type", rkey, problems)
        if return_type is not None:
            if return_type in (*RETURN_TYPES, SYSTEM_RETURN_TYPE):
                problems.add(f"{rkey}.type", f"{return_type!r} is a built-in return type: choose another name")
            elif not _RETURN_TYPE.match(return_type):
                problems.add(f"{rkey}.type", f"return type {return_type!r} must be 2-30 characters, a-z, 0-9 and _, "
                                             "starting with a letter")
        return_description = ret.get("description", "")
        if not isinstance(return_description, str):
            problems.add(f"{rkey}.description", "description must be text")
            return_description = ""
        raw_columns = ret.get("columns")
        if not isinstance(raw_columns, list) or not raw_columns:
            problems.add(f"{rkey}.columns", "columns must be a list of {name, type} mappings: add the return's columns")
            raw_columns = []
        reserved = _reserved_words()
        names_seen: set[str] = set()
        for i, item in enumerate(raw_columns):
            raw_name = item.get("name") if isinstance(item, dict) else None
            if isinstance(raw_name, str) and raw_name in names_seen:
                problems.add(f"{rkey}.columns[{i}].name", f"column {raw_name!r} is declared twice: keep one")
                continue
            if isinstance(raw_name, str):
                names_seen.add(raw_name)
            column = _parse_column(item, f"{rkey}.columns[{i}]", problems, reserved)
            if column is not None:
                columns[column.name] = column
        for i, item in enumerate(raw_columns):
            if isinstance(item, dict) and item.get("not_before") and item.get("name") in columns:
                other = columns.get(item["not_before"])
                this = columns[item["name"]]
                if other is None:
                    problems.add(f"{rkey}.columns[{i}].not_before",
                                 f"the return has no column {item['not_before']!r}: name one of its date columns")
                elif this.type != "date" or other.type != "date":
                    problems.add(f"{rkey}.columns[{i}].not_before",
                                 f"not_before compares two date columns, and {this.name!r} is {this.type}, "
                                 f"{other.name!r} is {other.type}: use date columns")
                elif other.name == this.name:
                    problems.add(f"{rkey}.columns[{i}].not_before", "a column cannot be compared with itself")
        if raw_columns and "contract_id" not in columns and not any(
                isinstance(c, dict) and c.get("name") == "contract_id" for c in raw_columns):
            problems.add(f"{rkey}.columns", "the return needs a contract_id column: add "
                                            "{name: contract_id, type: text, required: true}")
        elif "contract_id" in columns and (columns["contract_id"].type != "text" or not columns["contract_id"].required):
            problems.add(f"{rkey}.columns", "contract_id must be {name: contract_id, type: text, required: true}")
        period_column = _text(ret, "period_column", rkey, problems)
        if period_column is not None and columns:
            column = columns.get(period_column)
            if column is None:
                problems.add(f"{rkey}.period_column", f"the return has no column {period_column!r}: name one of its "
                                                      f"date columns ({', '.join(c for c in columns if columns[c].type == 'date') or 'none declared'})")
            elif column.type != "date" or not column.required:
                problems.add(f"{rkey}.period_column", f"the period column must be a date column with required: true; "
                                                      f"{period_column!r} is {'a required' if column.required else 'an optional'} "
                                                      f"{column.type} column")
        raw_unique = ret.get("unique", [])
        if not isinstance(raw_unique, list) or not all(isinstance(u, str) for u in raw_unique):
            problems.add(f"{rkey}.unique", f"unique must be a list of column names, found {raw_unique!r}")
        else:
            for i, name_ in enumerate(raw_unique):
                if columns and name_ not in columns:
                    problems.add(f"{rkey}.unique[{i}]", f"the return has no column {name_!r}: name one of "
                                                        f"{', '.join(columns)}")
            if len(set(raw_unique)) != len(raw_unique):
                problems.add(f"{rkey}.unique", "unique names a column twice: name each once")
            unique = raw_unique
    raw_kpis = d.get("kpis")
    kpis: list[DeclaredKpi] = []
    if not isinstance(raw_kpis, list) or not raw_kpis:
        problems.add(f"{key}.kpis", "kpis must be a list with at least one KPI (code, name, direction, numerator, "
                                    "denominator)")
        raw_kpis = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw_kpis):
        kpi = _parse_kpi(item, f"{key}.kpis[{i}]", columns, problems)
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and code in seen:
            problems.add(f"{key}.kpis[{i}].code", f"KPI code {code!r} is also used by kpis[{seen[code]}]: "
                                                  "each KPI needs its own code")
        elif isinstance(code, str):
            seen[code] = i
        if kpi is not None:
            kpis.append(kpi)
    if problems.items:
        raise ServiceSpecError(problems.items)
    return ServiceSpec(id=service_id, name=name, description=description.strip(), return_type=return_type,
                       period_column=period_column, columns=tuple(columns.values()), kpis=tuple(kpis),
                       unique=tuple(unique), return_description=return_description.strip())


def parse_services(items: list, key: str = "services") -> list[ServiceSpec]:
    """Every declared service of a register; problems of all services (and clashes between them) at once."""
    problems: list[tuple[str, str]] = []
    specs: list[ServiceSpec] = []
    for i, item in enumerate(items):
        try:
            specs.append(parse_service(item, f"{key}[{i}]"))
        except ServiceSpecError as error:
            problems += error.problems
    for attribute, label in (("id", "service id"), ("return_type", "return type")):
        seen: dict[str, int] = {}
        for i, spec in enumerate(specs):
            value = getattr(spec, attribute)
            if value in seen:
                problems.append((f"{key}[{i}]", f"{label} {value!r} is also used by {key}[{seen[value]}]"))
            seen.setdefault(value, i)
    codes: dict[str, int] = {}
    for i, spec in enumerate(specs):
        for kpi in spec.kpis:
            if kpi.code in codes and codes[kpi.code] != i:
                problems.append((f"{key}[{i}]", f"KPI code {kpi.code!r} is also used by {key}[{codes[kpi.code]}]"))
            codes.setdefault(kpi.code, i)
    if problems:
        raise ServiceSpecError(problems)
    return specs


# ------------------------------------------------------------------ storing the declarations


def save_services(session: Session, specs: list[ServiceSpec]) -> None:
    """Upsert the declared services, their KPIs in the ``measure`` catalogue and each return's record table."""
    from contracts.models import Measure
    from contracts.records import ensure_table

    for spec in specs:
        session.merge(DeclaredService(id=spec.id, name=spec.name, return_type=spec.return_type,
                                      spec=json.dumps(spec.to_dict(), sort_keys=True)))
        for kpi in measure_defs(spec):
            session.merge(Measure(code=kpi.code, service_type=spec.id, name=kpi.name, definition=kpi.definition,
                                  numerator=kpi.numerator, denominator=kpi.denominator, direction=kpi.direction,
                                  unit=kpi.unit, sql_name=None))
    session.flush()
    declare_measures(specs)
    for spec in specs:
        ensure_table(session, spec)


def load_services(session: Session) -> dict[str, ServiceSpec]:
    """Every declared service by id (an empty dict when none is declared); their KPIs join the catalogue."""
    rows = session.exec(select(DeclaredService)).all()
    specs = {row.id: parse_service(json.loads(row.spec), f"declared_service[{row.id}]") for row in rows}
    declare_measures(specs.values())
    return specs


def measure_defs(spec: ServiceSpec) -> list:
    """The service's KPIs as catalogue entries (``contracts.catalogue.MeasureDef``; no SQL file of ``sql/``)."""
    from contracts.catalogue import MeasureDef

    defs = []
    for kpi in spec.kpis:
        numerator, denominator = kpi.describe()
        defs.append(MeasureDef(kpi.code, spec.id, kpi.name, kpi.description or kpi.name, numerator, denominator,
                               kpi.direction, kpi.unit, "", float("nan"), float("nan")))
    return defs


def declare_measures(specs) -> None:
    """Make declared KPIs known to ``MEASURES_BY_CODE`` (names, directions, units on every document) in this
    process; built-in KPIs (``MEASURES``) are untouched and win on a clash (parse_service forbids one)."""
    from contracts.catalogue import MEASURES_BY_CODE, SERVICE_NAMES

    for spec in specs:
        SERVICE_NAMES.setdefault(spec.id, spec.name)
        for definition in measure_defs(spec):
            if definition.sql_name == "" and MEASURES_BY_CODE.get(definition.code, definition).sql_name == "":
                MEASURES_BY_CODE[definition.code] = definition


def ensure_declared_measures(session: Session) -> None:
    """Load the declared services' KPIs into the catalogue, for views built in a fresh process."""
    load_services(session)


def services_by_return_type(session: Session) -> dict[str, ServiceSpec]:
    return {spec.return_type: spec for spec in load_services(session).values()}


def return_types(session: Session) -> tuple[str, ...]:
    """Every return type a file may name: the built-in ones and those of declared services."""
    return (*RETURN_TYPES, SYSTEM_RETURN_TYPE, *(spec.return_type for spec in load_services(session).values()))
