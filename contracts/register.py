"""The register: everything a commissioning office maintains, as one YAML (or JSON, or XLSX) file.

The register is the only way reference data enters the database (design.md, "One front door"): the
office and its areas, providers, declared local services, contracts with their KPI terms, payment
terms and dated variations, and the recipients of documents. The demo world writes a register and
applies it like any office.

* :func:`load_register` reads a file (YAML / JSON / XLSX) keeping where every key came from (line, or
  sheet / row / column), and :func:`validate` checks it all; every problem names the place, the key,
  what is wrong and what to do. Nothing is written.
* :func:`apply_register` makes the database match the register in the caller's transaction, and returns
  the diff (added, changed, closed). It never rewrites history: a changed target or payment term becomes
  a dated variation from the ``effective`` month, closing the old terms; a contract removed from the
  register is closed, its data stay.
* A staggered roll-out is declared as a variation of ``kind: rollout`` with its ``kpi`` on each area's contract
  of the same service, each at its own date (one roll-out per service and KPI; an area joins it once).
* :func:`export_register` writes the database back as a register; export then apply changes nothing.

Keys are documented in ``REGISTER_KEYS`` (also ``cjmonitor register schema``, a JSON Schema generated
from the pydantic models below, which also do the structural validation).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, select

from contracts.catalogue import (
    DEFAULT_FRAMEWORK,
    FRAMEWORK_KPIS,
    FRAMEWORK_MEASURES,
    FRAMEWORKS,
    MEASURES,
    SERVICE_TYPES,
)
from contracts.errors import ContractsError
from contracts.geography import AREAS_BY_CODE
from contracts.models import (
    Area,
    Contract,
    ContractVariation,
    Measure,
    Office,
    PaymentTerms,
    Provider,
    Recipient,
    RecipientScope,
    RegisterApply,
    Target,
)
from contracts.variations import VARIATION_KINDS, NewTerms, record_variation, restate_terms

SCOPE_KINDS = ("area", "contract", "provider")
TERM_FIELDS = ("target", "tolerance", "min_volume", "service_credit_pct")
PAYMENT_FIELDS = ("service_credit_cap_pct", "pbr_price_per_reoffender_gbp", "pbr_threshold_points",
                  "pbr_requires_significance", "pbr_cap_gbp", "pbr_frequency_price_gbp", "pbr_frequency_threshold_pct")
SECTIONS = ("office", "providers", "services", "contracts", "recipients")


# ------------------------------------------------------------------ the keys (pydantic models = the schema)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommentaryIn(_Strict):
    """One partner's words for an area's LCJB pack (shown as written, HTML-escaped)."""

    area: str = Field(description="ONS code of the area; one of office.areas.")
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="The pack's month, YYYY-MM (a quarter's last month).")
    partner: str = Field(min_length=1, max_length=120, description="Who wrote it, e.g. 'CPS Wessex' or 'HMCTS'.")
    text: str = Field(min_length=1, max_length=4000, description="The commentary, as written.")


class OfficeIn(_Strict):
    """The commissioning office: its name and the areas (ONS police force area codes) it covers."""

    name: str = Field(min_length=1, max_length=160, description="The office's name, as on its documents.")
    areas: list[str] = Field(min_length=1, description="ONS codes of the areas it covers, from the built-in 42 (e.g. E23000039).")
    lcjb_commentary: list[CommentaryIn] = Field(default_factory=list, description=(
        "Partners' commentary for the LCJB pack: one entry per area, quarter-end month and partner, shown as written."))


class ProviderIn(_Strict):
    id: str = Field(max_length=40, description="Short id used in return file names: lower case, digits and hyphens.")
    name: str = Field(min_length=1, max_length=120, description="The provider's legal or trading name (unique).")
    kind: str = Field(default="other", max_length=40, description="private, voluntary, NHS trust, local authority, other.")
    return_mode: Literal["person", "aggregate"] = Field(
        default="person", description="person: sends person-level returns; aggregate: sends kpi_aggregate numerators only.")
    mappings: list[dict[str, Any]] = Field(default_factory=list, description=(
        "How this provider's files really look, per return type (sheet, header row, column aliases, value maps, "
        "constants, footer rows to drop); see the mapping keys in the README."))


class KpiTermsIn(_Strict):
    code: str = Field(description="KPI code: from the contract's framework, or a declared service's kpis[].code.")
    target: float | None = Field(default=None, description="Target as a proportion: 0.85 for 85%. Default: the framework's.")
    tolerance: float | None = Field(default=None, description="Amber band as a proportion: 0.05 for 5 points.")
    min_volume: int | None = Field(default=None, description="Fewest cases in a month for a verdict.")
    service_credit_pct: float | None = Field(default=None, description="Percent of the monthly fee withheld for a Red month.")


class VariationKpiIn(KpiTermsIn):
    closed: bool = Field(default=False, description="true: the KPI is dropped from the contract from this date.")


class PaymentIn(_Strict):
    service_credit_cap_pct: float = Field(default=10.0, description="Credits in a quarter never exceed this % of its fee.")
    pbr_price_per_reoffender_gbp: float = Field(default=0.0, description="Payment by results: price per reoffender avoided.")
    pbr_threshold_points: float = Field(default=0.0, description="No payment unless the binary rate falls by this many points.")
    pbr_requires_significance: bool = Field(default=True, description="And the whole interval lies below zero.")
    pbr_cap_gbp: float | None = Field(default=None, description="Most that can be paid for one set of cohorts.")
    pbr_frequency_price_gbp: float = Field(default=0.0, description="Price per reoffence avoided (frequency outcome).")
    pbr_frequency_threshold_pct: float = Field(default=0.0, description="Frequency reduction needed, % of the comparison's.")


class PaymentChangeIn(_Strict):
    service_credit_cap_pct: float | None = None
    pbr_price_per_reoffender_gbp: float | None = None
    pbr_threshold_points: float | None = None
    pbr_requires_significance: bool | None = None
    pbr_cap_gbp: float | None = None
    pbr_frequency_price_gbp: float | None = None
    pbr_frequency_threshold_pct: float | None = None


_Date = date  # the field below is called "date"


class VariationIn(_Strict):
    date: _Date = Field(description="First day of the first month under the new terms (YYYY-MM-01).")
    kind: str = Field(default="renegotiation", description=(
        "renegotiation, new_provider, service_redesign, rollout or other. rollout: the service starts here on `date`, "
        "aimed at `kpi` (required); the same kind and kpi on contracts of the same service in other areas, at their own "
        "dates, is one staggered roll-out (analysed with staggered difference-in-differences)."))
    description: str = Field(min_length=1, description="What changed, in plain words (shown in the evidence pack).")
    kpi: str | None = Field(default=None, description="The KPI the change is aimed at (a break for ITS and SPC); none = all.")
    kpis: list[VariationKpiIn] = Field(default_factory=list, description="KPI terms restated from the date (only the keys given change).")
    payment: PaymentChangeIn | None = Field(default=None, description="Payment terms restated from the date.")


class ContractIn(_Strict):
    id: str = Field(max_length=40, description="Contract id as the provider writes it in its returns.")
    name: str = Field(min_length=1, max_length=160)
    area: str = Field(description="ONS code of the contract's area; one of office.areas.")
    provider: str = Field(description="providers[].id of the provider holding the contract.")
    service: str = Field(description="crc, ttg, em, health, or a declared services[].id.")
    framework: str | None = Field(default=None, description="KPI framework (`cjmonitor frameworks`); default by service.")
    start: date
    end: date
    annual_value_gbp: float = Field(ge=0)
    return_due_day: int = Field(default=15, ge=1, le=28, description="Returns are due by this day of the next month.")
    kpis: list[KpiTermsIn] | None = Field(default=None, description="KPI terms at the start; omitted = every framework KPI of the service at its default terms.")
    payment: PaymentIn = Field(default_factory=PaymentIn)
    variations: list[VariationIn] = Field(default_factory=list, description="Dated changes, oldest first.")
    closed_on: date | None = Field(default=None, description="Set when the contract is closed early; its data stay.")


class RecipientIn(_Strict):
    email: str = Field(max_length=254)
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(default_factory=list, description="What they receive: area:<code>, contract:<id> or provider:<id>.")
    active: bool = True


class RegisterIn(_Strict):
    """A commissioning office's register (cjmonitor)."""

    office: OfficeIn
    providers: list[ProviderIn] = Field(default_factory=list)
    services: list[dict[str, Any]] = Field(default_factory=list, description=(
        "Local services declared as data: id, name, return (type, period_column, unique, columns) and kpis."))
    contracts: list[ContractIn] = Field(default_factory=list)
    recipients: list[RecipientIn] = Field(default_factory=list)


def json_schema() -> dict:
    schema = RegisterIn.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cjmonitor.example.org/register.schema.json"
    return schema


# ------------------------------------------------------------------ problems and where they are


@dataclass(frozen=True)
class Problem:
    where: str  # "register.yaml:12" or "register.xlsx, sheet contracts, row 3, column target"
    key: str  # "contracts[0].kpis[1].target"
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}"

    def to_dict(self) -> dict:
        return {"where": self.where, "key": self.key, "message": self.message}


class RegisterError(ContractsError):
    """The register has problems; nothing was written."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"the register has {len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was written:\n{lines}")


def key_path(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Locator:
    """Maps a key path to where it is in the source file."""

    file: str
    marks: dict[tuple, str] = field(default_factory=dict)  # path -> "line 12" or "sheet x, row 3, column y"
    kind: str = "yaml"

    def where(self, path: tuple) -> str:
        path = tuple(path)
        while path:
            if path in self.marks:
                mark = self.marks[path]
                return f"{self.file}:{mark}" if self.kind == "yaml" else f"{self.file}, {mark}"
            path = path[:-1]
        return self.file

    def problem(self, path: tuple, message: str) -> Problem:
        return Problem(self.where(path), key_path(path), message)


# ------------------------------------------------------------------ reading


@dataclass
class LoadedRegister:
    data: dict
    locator: Locator
    source: str
    sha256: str


def _yaml_marks(node, path: tuple, marks: dict, problems: list, locator_file: str) -> None:
    import yaml

    marks[path] = str(node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(Problem(f"{locator_file}:{key_node.start_mark.line + 1}", key_path((*path, key)),
                                        f"the key {key!r} is given twice (first on line {seen[key]}); keep one"))
            seen[key] = key_node.start_mark.line + 1
            marks[(*path, key)] = str(key_node.start_mark.line + 1)
            _yaml_marks(value_node, (*path, key), marks, problems, locator_file)
            marks[(*path, key)] = str(key_node.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _yaml_marks(item, (*path, index), marks, problems, locator_file)


def _loader():
    """A safe YAML loader on which an impossible date (2024-13-01) stays text, so validation names its line."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    def timestamp(loader, node):
        try:
            return base.construct_yaml_timestamp(loader, node)
        except ValueError:
            return loader.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    return Loader


def _construct(node, loader_class):
    """Plain data from a composed YAML tree (one parse serves both the data and the line marks).

    Scalars go through the safe constructor for their resolved tag; mappings and sequences are built here,
    which is several times faster than a second full load.
    """
    import yaml

    if node is None:
        return None
    constructor = loader_class("")
    scalars: dict[str, Any] = {}
    plain = {"tag:yaml.org,2002:str": None, "tag:yaml.org,2002:null": "null"}

    def build(n):
        if isinstance(n, yaml.ScalarNode):
            kind = plain.get(n.tag, n.tag)
            if kind is None:
                return n.value
            if kind == "null":
                return None
            key = (n.tag, n.value)
            if key not in scalars:
                scalars[key] = constructor.construct_object(n, deep=True)
            return scalars[key]
        if isinstance(n, yaml.SequenceNode):
            return [build(item) for item in n.value]
        if isinstance(n, yaml.MappingNode):
            out = {}
            for key_node, value_node in n.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    merged = build(value_node)
                    for part in merged if isinstance(merged, list) else [merged]:
                        for k, v in part.items():
                            out.setdefault(k, v)
                    continue
                out[build(key_node)] = build(value_node)
            return out
        return constructor.construct_object(n, deep=True)

    return build(node)


def parse_yaml_text(text: str, name: str) -> LoadedRegister:
    import yaml

    loader = _loader()
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=loader)
        data = _construct(node, loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise RegisterError([Problem(where, "(file)", f"not valid YAML ({getattr(exc, 'problem', exc)}); "
                                     "check the indentation and quoting on this line")]) from None
    locator = Locator(name, {}, "yaml")
    if node is not None:
        _yaml_marks(node, (), locator.marks, problems, name)
    if problems:
        raise RegisterError(problems)
    if not isinstance(data, dict):
        raise RegisterError([Problem(f"{name}:1", "(file)", "a register is a mapping with the keys office, providers, "
                                     "services, contracts and recipients; start from `cjmonitor init`")])
    return LoadedRegister(data, locator, name, hashlib.sha256(text.encode()).hexdigest())


def load_register(path: Path) -> LoadedRegister:
    """Read a register file: ``.yaml``/``.yml``, ``.json`` or ``.xlsx``."""
    path = Path(path)
    if not path.is_file():
        raise RegisterError([Problem(str(path), "(file)", "no such file; `cjmonitor init` writes a register template")])
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from contracts.register_xlsx import read_register_xlsx

        return read_register_xlsx(path)
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegisterError([Problem(f"{path}:{exc.lineno}", "(file)", f"not valid JSON: {exc.msg}")]) from None
        loaded = parse_yaml_text(text, str(path))  # JSON is YAML: same line marks
        loaded.data = data
        return loaded
    if suffix not in (".yaml", ".yml"):
        raise RegisterError([Problem(str(path), "(file)", "a register is a .yaml, .json or .xlsx file")])
    return parse_yaml_text(text, str(path))


# ------------------------------------------------------------------ validation


@dataclass
class Checked:
    """A valid register: the parsed models plus what validation resolved (frameworks, declared services)."""

    register: RegisterIn
    loaded: LoadedRegister
    services: dict[str, Any]  # declared service id -> ServiceSpec
    kpi_codes: dict[str, list[str]]  # contract id -> KPI codes (start + variations)
    notes: list[str] = field(default_factory=list)


def _close(word: str, options) -> str:
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


_ADVICE = {
    "missing": "add this key",
    "extra_forbidden": "remove it or check its spelling",
    "date_from_datetime_parsing": "write a date as YYYY-MM-DD",
    "date_parsing": "write a date as YYYY-MM-DD",
    "date_type": "write a date as YYYY-MM-DD",
    "float_parsing": "write a number (a proportion such as 0.85 for targets)",
    "float_type": "write a number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "list_type": "write a list: one `- item` per line, or [a, b]",
    "dict_type": "write a mapping of keys and values",
    "string_type": "write text (quote it if it looks like a number or a date)",
    "too_short": "give at least one item",
    "literal_error": "use one of the values named",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
}


def _model_keys(path: tuple) -> list[str]:
    model: Any = RegisterIn
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        field_info = getattr(model, "model_fields", {}).get(part)
        if field_info is None:
            return []
        annotation = field_info.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or [])]
        for candidate in list(candidates):
            candidates += list(getattr(candidate, "__args__", ()) or ())
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _structural_problems(exc: ValidationError, locator: Locator) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            keys = _model_keys(path)
            message = (f"unknown key {path[-1]!r}{_close(path[-1], keys)}; the keys here are: {', '.join(keys)}"
                       if keys else f"unknown key {path[-1]!r}; remove it")
        elif kind == "missing":
            message = f"the key {path[-1]!r} is required here: add it"
        else:
            advice = _ADVICE.get(kind, "see `cjmonitor register schema` for what this key takes")
            given = error.get("input")
            shown = f" (got {given!r})" if not isinstance(given, (dict, list)) else ""
            message = f"{error['msg'].rstrip('.')}{shown}: {advice}"
        problems.append(locator.problem(path, message))
    return problems


def _declared():
    import importlib

    try:
        return importlib.import_module("contracts.declared")
    except ModuleNotFoundError as exc:
        if exc.name == "contracts.declared":
            return None
        raise


def _check_terms(loc: Locator, path: tuple, terms: KpiTermsIn, problems: list[Problem], proportion: bool = True) -> None:
    if terms.target is not None and not proportion:
        if terms.target < 0:
            problems.append(loc.problem((*path, "target"), f"a target cannot be negative; got {terms.target:g}"))
    elif terms.target is not None and not 0 <= terms.target <= 1:
        hint = (f"write {terms.target / 100:g} for {terms.target:g}%" if 1 < terms.target <= 100
                else "it must lie between 0 and 1")
        problems.append(loc.problem((*path, "target"), f"a target is a proportion between 0 and 1; got {terms.target:g}: {hint}"))
    if terms.tolerance is not None and not proportion:
        # A days or count KPI's tolerance is in its own unit (1 day, 5 referrals), like its target.
        if terms.tolerance < 0:
            problems.append(loc.problem((*path, "tolerance"), f"a tolerance cannot be negative; got {terms.tolerance:g}"))
    elif terms.tolerance is not None and not 0 <= terms.tolerance < 1:
        hint = f"write {terms.tolerance / 100:g} for {terms.tolerance:g} points" if 1 <= terms.tolerance <= 100 else "use 0 to 0.5"
        problems.append(loc.problem((*path, "tolerance"), f"a tolerance is a proportion; got {terms.tolerance:g}: {hint}"))
    if terms.min_volume is not None and terms.min_volume < 0:
        problems.append(loc.problem((*path, "min_volume"), f"a minimum volume cannot be negative; got {terms.min_volume}"))
    if terms.service_credit_pct is not None and not 0 <= terms.service_credit_pct <= 100:
        problems.append(loc.problem((*path, "service_credit_pct"), "a service credit is a percentage of the monthly fee "
                                    f"between 0 and 100; got {terms.service_credit_pct:g}"))


def _contract_kpi_catalogue(contract: ContractIn, services: dict) -> tuple[dict[str, Any], str | None]:
    """(code -> framework KPI or declared KPI, framework id) allowed for the contract."""
    if contract.service in services:
        return {k.code: k for k in services[contract.service].kpis}, None
    framework_id = contract.framework or DEFAULT_FRAMEWORK.get(contract.service)
    if framework_id not in FRAMEWORKS:
        return {}, framework_id
    return {k.code: k for k in FRAMEWORKS[framework_id].kpis if k.service == contract.service}, framework_id


def validate(loaded: LoadedRegister) -> Checked:
    """Every check that needs no database; raises RegisterError listing every problem found."""
    loc = loaded.locator
    try:
        register = RegisterIn.model_validate(loaded.data)
    except ValidationError as exc:
        raise RegisterError(_structural_problems(exc, loc)) from None
    problems: list[Problem] = []
    notes: list[str] = []

    def dupes(items, attr, section):
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                problems.append(loc.problem((section, index, attr), f"duplicate {attr} {value!r} (also {section}[{seen[value]}]): "
                                            "each must be unique; rename or merge them"))
            seen.setdefault(value, index)

    # office
    office_areas = set()
    for index, code in enumerate(register.office.areas):
        if code not in AREAS_BY_CODE:
            problems.append(loc.problem(("office", "areas", index), f"unknown area code {code!r}{_close(code, AREAS_BY_CODE)}: "
                                        "use an ONS police force area code from the built-in 42 (`cjmonitor areas`)"))
        elif code in office_areas:
            problems.append(loc.problem(("office", "areas", index), f"area {code} is listed twice; keep one"))
        office_areas.add(code)
    for index, note in enumerate(register.office.lcjb_commentary):
        if note.area not in office_areas:
            problems.append(loc.problem(("office", "lcjb_commentary", index, "area"),
                                        f"area {note.area!r} is not one of office.areas: add it there or correct the code"))

    # providers
    dupes(register.providers, "id", "providers")
    dupes(register.providers, "name", "providers")
    providers = {p.id: p for p in register.providers}
    for index, provider in enumerate(register.providers):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", provider.id):
            problems.append(loc.problem(("providers", index, "id"), f"provider id {provider.id!r} must be lower case letters, "
                                        "digits and hyphens (it starts every return file name, before an underscore)"))

    # services (declared)
    services: dict[str, Any] = {}
    failed_services: set[str] = set()  # declared but with problems: contracts naming them are not judged again
    declared = _declared()
    for index, raw in enumerate(register.services):
        if isinstance(raw.get("id"), str):
            failed_services.add(raw["id"])
        if declared is None:
            problems.append(loc.problem(("services", index), "declared services need contracts.declared, which this build "
                                        "lacks; remove the section or upgrade cjmonitor"))
            continue
        try:
            spec = declared.parse_service(raw, key=f"services[{index}]")
        except declared.ServiceSpecError as exc:
            for key, message in exc.problems:
                problems.append(Problem(loc.where(_path_of(key)), key, message))
            continue
        if spec.id in services or spec.id in SERVICE_TYPES:
            problems.append(loc.problem(("services", index, "id"), f"service id {spec.id!r} is already used "
                                        f"({'a built-in service' if spec.id in SERVICE_TYPES else 'twice'}); choose another"))
        services[spec.id] = spec
        failed_services.discard(spec.id)

    # contracts
    dupes(register.contracts, "id", "contracts")
    kpi_codes: dict[str, list[str]] = {}
    for index, contract in enumerate(register.contracts):
        base = ("contracts", index)
        if contract.area not in AREAS_BY_CODE:
            problems.append(loc.problem((*base, "area"), f"unknown area code {contract.area!r}{_close(contract.area, AREAS_BY_CODE)}: "
                                        "use an ONS police force area code (`cjmonitor areas`)"))
        elif contract.area not in office_areas:
            problems.append(loc.problem((*base, "area"), f"area {contract.area} is not one of office.areas: add it there"))
        if contract.provider not in providers:
            problems.append(loc.problem((*base, "provider"), f"no provider {contract.provider!r}{_close(contract.provider, providers)} "
                                        "in providers: add it there or correct the id"))
        if contract.service in failed_services:
            continue
        if contract.service not in SERVICE_TYPES and contract.service not in services:
            problems.append(loc.problem((*base, "service"), f"unknown service {contract.service!r}"
                                        f"{_close(contract.service, [*SERVICE_TYPES, *services])}: use crc, ttg, em, health "
                                        "or the id of a service declared in services"))
            continue
        if contract.framework is not None:
            if contract.service in services:
                problems.append(loc.problem((*base, "framework"), f"{contract.service} is a declared service: its KPIs are its "
                                            "own (services[].kpis), remove framework"))
            elif contract.framework not in FRAMEWORKS:
                problems.append(loc.problem((*base, "framework"), f"unknown framework {contract.framework!r}"
                                            f"{_close(contract.framework, FRAMEWORKS)}; `cjmonitor frameworks` lists them"))
                continue
            elif not any(k.service == contract.service for k in FRAMEWORKS[contract.framework].kpis):
                problems.append(loc.problem((*base, "framework"), f"framework {contract.framework} has no KPIs for service "
                                            f"{contract.service}; `cjmonitor frameworks` shows which services each covers"))
                continue
        if contract.end <= contract.start:
            problems.append(loc.problem((*base, "end"), f"the contract ends ({contract.end}) on or before it starts "
                                        f"({contract.start}): check both dates"))
        if contract.start.day != 1:
            problems.append(loc.problem((*base, "start"), f"a contract starts on the first of a month (KPIs are monthly); "
                                        f"got {contract.start}: use {contract.start.replace(day=1)}"))
        if contract.closed_on is not None and contract.closed_on <= contract.start:
            problems.append(loc.problem((*base, "closed_on"), "a contract is closed after it starts"))
        allowed, framework_id = _contract_kpi_catalogue(contract, services)
        for field_name in ("service_credit_cap_pct", "pbr_frequency_threshold_pct"):
            value = getattr(contract.payment, field_name)
            if not 0 <= value <= 100:
                problems.append(loc.problem((*base, "payment", field_name), f"a percentage between 0 and 100; got {value:g}"))
        codes: list[str] = []
        for k_index, terms in enumerate(contract.kpis or []):
            path = (*base, "kpis", k_index)
            if terms.code not in allowed:
                where = (f"declared service {contract.service}" if contract.service in services
                         else f"framework {framework_id} for service {contract.service}")
                other = FRAMEWORK_KPIS.get(terms.code)
                hint = (f"; {terms.code} belongs to framework {other and _framework_of(terms.code)}: set framework to it"
                        if other and other.service == contract.service else "")
                problems.append(loc.problem((*path, "code"), f"no KPI {terms.code!r}{_close(terms.code, allowed)} in {where}"
                                            f"{hint}; its KPIs are: {', '.join(allowed) or 'none'}"))
            if terms.code in codes:
                problems.append(loc.problem((*path, "code"), f"KPI {terms.code} is listed twice; keep one"))
            codes.append(terms.code)
            if contract.service in services and terms.target is None:
                problems.append(loc.problem((*path, "target"), "a declared service's KPI needs its target (no framework default)"))
            if contract.service in services and terms.tolerance is None:
                problems.append(loc.problem((*path, "tolerance"), "a declared service's KPI needs its tolerance"))
            _check_terms(loc, path, terms, problems, _is_proportion(allowed.get(terms.code)))
        if contract.kpis is None:
            codes = list(allowed)
        seen_variations: set[tuple] = set()
        seen_rollouts: set[str] = set()
        last_date = None
        for v_index, variation in enumerate(contract.variations):
            path = (*base, "variations", v_index)
            if variation.kind not in VARIATION_KINDS:
                problems.append(loc.problem((*path, "kind"), f"unknown kind {variation.kind!r}; use one of {', '.join(VARIATION_KINDS)}"))
            if variation.date.day != 1:
                problems.append(loc.problem((*path, "date"), f"a variation takes effect from the first of a month; got "
                                            f"{variation.date}: use {variation.date.replace(day=1)}"))
            if variation.date <= contract.start:
                problems.append(loc.problem((*path, "date"), f"a variation comes after the contract's start ({contract.start}); "
                                            "change the start terms in kpis instead"))
            if variation.date > contract.end:
                problems.append(loc.problem((*path, "date"), f"the variation ({variation.date}) is after the contract ends ({contract.end})"))
            if last_date is not None and variation.date < last_date:
                problems.append(loc.problem((*path, "date"), "variations are listed oldest first: move this one up"))
            last_date = variation.date
            if (variation.date, variation.kind) in seen_variations:
                problems.append(loc.problem((*path, "kind"), f"two {variation.kind} variations on {variation.date}: merge them "
                                            "into one (it may restate several KPIs)"))
            seen_variations.add((variation.date, variation.kind))
            if variation.kind == "rollout" and variation.kpi is None:
                problems.append(loc.problem((*path, "kpi"), "a rollout variation names the KPI it aims at (kpi: CODE): "
                                            "the staggered roll-out analysis compares that KPI across areas"))
            if variation.kind == "rollout" and variation.kpi is not None:
                if variation.kpi in seen_rollouts:
                    problems.append(loc.problem((*path, "kpi"), f"a second rollout aimed at {variation.kpi} on this "
                                                f"contract: an area joins a roll-out once; keep the first date"))
                seen_rollouts.add(variation.kpi)
            if variation.kpi is not None and variation.kpi not in allowed:
                problems.append(loc.problem((*path, "kpi"), f"no KPI {variation.kpi!r}{_close(variation.kpi, allowed)} on this contract"))
            for k_index, terms in enumerate(variation.kpis):
                kpath = (*path, "kpis", k_index)
                if terms.code not in allowed:
                    problems.append(loc.problem((*kpath, "code"), f"no KPI {terms.code!r}{_close(terms.code, allowed)} on this "
                                                f"contract's framework or service; its KPIs are: {', '.join(allowed)}"))
                elif terms.code not in codes and not terms.closed:
                    if contract.service in services and None in (terms.target, terms.tolerance):
                        problems.append(loc.problem(kpath, f"{terms.code} is new on this contract from {variation.date}: "
                                                    "give its target and tolerance"))
                    codes.append(terms.code)
                _check_terms(loc, kpath, terms, problems, _is_proportion(allowed.get(terms.code)))
        kpi_codes[contract.id] = codes
        if framework_id in FRAMEWORKS and FRAMEWORKS[framework_id].valid_to and contract.start > FRAMEWORKS[framework_id].valid_to:
            notes.append(f"{contract.id}: framework {framework_id} ({FRAMEWORKS[framework_id].name}) ended "
                         f"{FRAMEWORKS[framework_id].valid_to}; its definitions are used as they stood then")

    # recipients
    dupes(register.recipients, "email", "recipients")
    contract_ids = {c.id for c in register.contracts}
    for index, recipient in enumerate(register.recipients):
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", recipient.email):
            problems.append(loc.problem(("recipients", index, "email"), f"{recipient.email!r} is not an email address"))
        for s_index, scope in enumerate(recipient.scopes):
            kind, _, ref = scope.partition(":")
            known = {"area": office_areas, "contract": contract_ids, "provider": set(providers)}.get(kind)
            if known is None:
                problems.append(loc.problem(("recipients", index, "scopes", s_index), f"scope {scope!r} must be area:<code>, "
                                            "contract:<id> or provider:<id>"))
            elif ref not in known:
                problems.append(loc.problem(("recipients", index, "scopes", s_index), f"no {kind} {ref!r}{_close(ref, known)} "
                                            "in this register"))
    # provider mappings
    mapping = _mapping()
    for index, provider in enumerate(register.providers):
        for m_index, raw in enumerate(provider.mappings):
            if mapping is None:
                problems.append(loc.problem(("providers", index, "mappings", m_index), "return mappings need "
                                            "contracts.mapping, which this build lacks; remove them"))
                continue
            try:
                mapping.parse_mapping(raw, key=f"providers[{index}].mappings[{m_index}]", specs=_return_specs(services))
            except mapping.MappingSpecError as exc:
                for key, message in exc.problems:
                    problems.append(Problem(loc.where(_path_of(key)), key, message))
    if problems:
        raise RegisterError(problems)
    return Checked(register, loaded, services, kpi_codes, notes)


def _is_proportion(kpi) -> bool:
    """Framework KPIs are proportions; a declared KPI says its kind (median days and volumes are not)."""
    return getattr(kpi, "kind", "proportion") == "proportion"


def _mapping():
    import importlib

    try:
        return importlib.import_module("contracts.mapping")
    except ModuleNotFoundError as exc:
        if exc.name == "contracts.mapping":
            return None
        raise


def _framework_of(code: str) -> str:
    from contracts.catalogue import FRAMEWORK_OF

    return FRAMEWORK_OF.get(code, "?")


def _path_of(key: str) -> tuple:
    parts: list = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", key):
        parts.append(int(index) if index else name)
    return tuple(parts)


# ------------------------------------------------------------------ apply


@dataclass
class Change:
    action: str  # added, changed, closed, kept
    kind: str  # office, area, provider, service, contract, kpi, variation, payment, recipient, measure
    id: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"action": self.action, "kind": self.kind, "id": self.id, "detail": self.detail}

    def __str__(self) -> str:
        sign = {"added": "+", "changed": "~", "closed": "-", "kept": "="}.get(self.action, "?")
        return f"{sign} {self.kind} {self.id}" + (f": {self.detail}" if self.detail else "")


@dataclass
class ApplyResult:
    changes: list[Change]
    notes: list[str]
    effective_date: date
    dry_run: bool

    def counts(self) -> dict:
        out = {"added": 0, "changed": 0, "closed": 0}
        for change in self.changes:
            if change.action in out:
                out[change.action] += 1
        return out

    @property
    def changed_anything(self) -> bool:
        return any(c.action in ("added", "changed", "closed") for c in self.changes)

    def to_dict(self) -> dict:
        return {"effective_date": self.effective_date.isoformat(), "dry_run": self.dry_run, **self.counts(),
                "changes": [c.to_dict() for c in self.changes if c.action != "kept"],
                "kept": [c.to_dict() for c in self.changes if c.action == "kept"], "notes": self.notes}


def _measure_row(code: str, services: dict) -> Measure | None:
    """A framework KPI's catalogue row (declared KPIs' rows are written by ``contracts.declared.save_services``)."""
    if code in FRAMEWORK_MEASURES:
        m = FRAMEWORK_MEASURES[code]
        return Measure(code=m.code, service_type=m.service_type, name=m.name, definition=m.definition,
                       numerator=m.numerator, denominator=m.denominator, direction=m.direction, unit=m.unit,
                       sql_name=m.sql_name)
    return None


def _full_terms(code: str, terms: KpiTermsIn | None, services: dict) -> dict:
    """Terms with the framework's defaults filled in."""
    measure = FRAMEWORK_MEASURES.get(code)
    defaults = ({"target": measure.default_target, "tolerance": measure.default_tolerance,
                 "min_volume": measure.min_volume, "service_credit_pct": measure.service_credit_pct}
                if measure else {"target": None, "tolerance": None, "min_volume": 20, "service_credit_pct": 0.0})
    given = {f: getattr(terms, f) for f in TERM_FIELDS if terms is not None and getattr(terms, f) is not None}
    return {**defaults, **given}


def _target_terms(target: Target) -> dict:
    return {"target": target.value, "tolerance": target.tolerance, "min_volume": target.min_volume,
            "service_credit_pct": target.service_credit_pct}


def _payment_terms(row: PaymentTerms) -> dict:
    return {f: getattr(row, f) for f in PAYMENT_FIELDS}


def _same(a: dict, b: dict) -> bool:
    return all((a[k] == b[k]) if not isinstance(a[k], float) or not isinstance(b[k], float) else abs(a[k] - b[k]) < 1e-12
               for k in a)


def _fmt_terms(before: dict | None, after: dict) -> str:
    if before is None:
        return ", ".join(f"{k} {v}" for k, v in after.items())
    return ", ".join(f"{k} {before[k]} -> {after[k]}" for k in after if before.get(k) != after[k])


def _register_chain(contract: ContractIn, services: dict) -> tuple[dict[str, dict | None], dict]:
    """The terms the register puts in force at the end of its variations: code -> terms (None = closed), payment."""
    current: dict[str, dict | None] = {}
    if contract.kpis is None:
        allowed, _ = _contract_kpi_catalogue(contract, services)
        for code in allowed:
            current[code] = _full_terms(code, None, services)
    else:
        for terms in contract.kpis:
            current[terms.code] = _full_terms(terms.code, terms, services)
    payment = contract.payment.model_dump()
    for variation in contract.variations:
        for terms in variation.kpis:
            if terms.closed:
                current[terms.code] = None
                continue
            base = current.get(terms.code) or _full_terms(terms.code, None, services)
            current[terms.code] = {**base, **{f: getattr(terms, f) for f in TERM_FIELDS if getattr(terms, f) is not None}}
        if variation.payment is not None:
            payment = {**payment, **variation.payment.model_dump(exclude_none=True)}
    return current, payment


class _Applier:
    def __init__(self, session: Session, checked: Checked, effective: date):
        self.session = session
        self.checked = checked
        self.effective = effective
        self.changes: list[Change] = []
        self.problems: list[Problem] = []
        self.loc = checked.loaded.locator

    def change(self, action: str, kind: str, ident: str, detail: str = "") -> None:
        self.changes.append(Change(action, kind, ident, detail))

    # -------------------------------------------------------------- sections

    def run(self) -> None:
        register = self.checked.register
        services = self.checked.services
        self.office(register.office)
        self.measures(register, services)
        if services:
            self.checked_services(services)
        self.providers(register.providers)
        self.session.flush()
        self.contracts(register.contracts, services)
        self.session.flush()
        self.recipients(register.recipients)
        self.session.flush()

    def office(self, office: OfficeIn) -> None:
        row = self.session.get(Office, 1)
        if row is None:
            row = Office(id=1, name=office.name)
            self.session.add(row)
            self.change("added", "office", office.name)
        elif row.name != office.name:
            self.change("changed", "office", office.name, f"name {row.name!r} -> {office.name!r}")
            row.name = office.name
        commentary = (json.dumps([note.model_dump() for note in office.lcjb_commentary], sort_keys=True)
                      if office.lcjb_commentary else None)
        if row.lcjb_commentary != commentary:
            self.change("changed", "office", office.name, f"LCJB commentary: {len(office.lcjb_commentary)} entries")
            row.lcjb_commentary = commentary
        existing = {a.code for a in self.session.exec(select(Area)).all()}
        for code in office.areas:
            if code not in existing:
                info = AREAS_BY_CODE[code]
                self.session.add(Area(code=info.code, name=info.name, region=info.region,
                                      commissioner_type=info.commissioner_type, population_m=info.population_m))
                self.change("added", "area", code, info.name)
        for code in sorted(existing - set(office.areas)):
            self.change("kept", "area", code, "not in office.areas; kept because stored data may refer to it")

    def measures(self, register: RegisterIn, services: dict) -> None:
        wanted = [m.code for m in MEASURES]
        for codes in self.checked.kpi_codes.values():
            wanted += [c for c in codes if c not in wanted]
        existing = {m.code: m for m in self.session.exec(select(Measure)).all()}
        for code in wanted:
            row = _measure_row(code, services)
            if row is None:
                continue
            old = existing.get(code)
            if old is None:
                self.session.add(row)
                self.change("added", "measure", code, row.name)
            else:
                fields = ("service_type", "name", "definition", "numerator", "denominator", "direction", "unit", "sql_name")
                differ = [f for f in fields if getattr(old, f) != getattr(row, f)]
                if differ:
                    for f in differ:
                        setattr(old, f, getattr(row, f))
                    self.change("changed", "measure", code, "definition updated from its framework: " + ", ".join(differ))

    def providers(self, providers: list[ProviderIn]) -> None:
        existing = {p.id: p for p in self.session.exec(select(Provider)).all()}
        for provider in providers:
            row = existing.get(provider.id)
            if row is None:
                self.session.add(Provider(id=provider.id, name=provider.name, kind=provider.kind, return_mode=provider.return_mode))
                self.change("added", "provider", provider.id, provider.name)
            else:
                differ = [f"{f} {getattr(row, f)!r} -> {getattr(provider, f)!r}" for f in ("name", "kind", "return_mode")
                          if getattr(row, f) != getattr(provider, f)]
                if differ:
                    row.name, row.kind, row.return_mode = provider.name, provider.kind, provider.return_mode
                    self.change("changed", "provider", provider.id, "; ".join(differ))
        for provider_id in sorted(set(existing) - {p.id for p in providers}):
            self.change("kept", "provider", provider_id, "not in the register; kept because its submissions refer to it")
        mapping = _mapping()
        if mapping is not None:
            self.session.flush()
            for index, provider in enumerate(providers):
                specs = _return_specs(self.checked.services)
                parsed = [mapping.parse_mapping(raw, key=f"providers[{index}].mappings[{m}]", specs=specs)
                          for m, raw in enumerate(provider.mappings)]
                before = _stored_mappings(self.session, provider.id, self.checked.services)
                after = [m.to_dict() for m in sorted(parsed, key=lambda m: m.return_type)]
                if before != after:
                    mapping.save_mappings(self.session, provider.id, parsed)
                    self.change("changed" if before else "added", "mapping", provider.id,
                                f"{len(after)} return mapping{'s' if len(after) != 1 else ''}")

    def checked_services(self, services: dict) -> None:
        declared = _declared()
        before = {s["id"]: s for s in _stored_services(self.session)}
        after = {sid: spec.to_dict() for sid, spec in services.items()}
        if before == after:
            return
        declared.save_services(self.session, list(services.values()))
        for sid in after:
            if sid not in before:
                self.change("added", "service", sid)
            elif before[sid] != after[sid]:
                self.change("changed", "service", sid, "declared return or KPIs changed")

    def _prefetch(self) -> None:
        """Every stored target, payment term and variation by contract: one query per table, not per contract."""
        self.targets: dict[str, list[Target]] = {}
        for row in self.session.exec(select(Target).order_by(Target.valid_from, Target.id)).all():
            self.targets.setdefault(row.contract_id, []).append(row)
        self.payments: dict[str, list[PaymentTerms]] = {}
        for row in self.session.exec(select(PaymentTerms).order_by(PaymentTerms.valid_from)).all():
            self.payments.setdefault(row.contract_id, []).append(row)
        self.variations: dict[str, list[ContractVariation]] = {}
        for row in self.session.exec(select(ContractVariation)).all():
            self.variations.setdefault(row.contract_id, []).append(row)

    def _refetch(self, contract_id: str) -> None:
        self.session.flush()
        self.targets[contract_id] = list(self.session.exec(select(Target).where(Target.contract_id == contract_id)
                                                           .order_by(Target.valid_from, Target.id)).all())
        self.payments[contract_id] = list(self.session.exec(select(PaymentTerms).where(
            PaymentTerms.contract_id == contract_id).order_by(PaymentTerms.valid_from)).all())

    def contracts(self, contracts: list[ContractIn], services: dict) -> None:
        existing = {c.id: c for c in self.session.exec(select(Contract)).all()}
        self._prefetch()
        new = [c for c in contracts if c.id not in existing]
        if new:
            self.new_contracts(new, services)
        for index, contract in enumerate(contracts):
            row = existing.get(contract.id)
            if row is not None:
                self.existing_contract(index, contract, row, services)
        for contract_id in sorted(set(existing) - {c.id for c in contracts}):
            row = existing[contract_id]
            if row.closed_on is None:
                row.closed_on = max(self.effective, row.start_date + timedelta(days=1))
                self.change("closed", "contract", contract_id, f"removed from the register: closed from {row.closed_on}; its data stay")

    def new_contracts(self, contracts: list[ContractIn], services: dict) -> None:
        """New contracts, their start terms and payment terms: one bulk insert per table, then their variations."""
        from sqlalchemy import insert

        contract_rows, target_rows, payment_rows = [], [], []
        for contract in contracts:
            contract_rows.append({
                "id": contract.id, "area_code": contract.area, "provider_id": contract.provider,
                "service_type": contract.service, "name": contract.name, "start_date": contract.start,
                "end_date": contract.end, "annual_value_gbp": contract.annual_value_gbp,
                "return_due_day": contract.return_due_day, "framework": contract.framework, "closed_on": contract.closed_on})
            self.change("added", "contract", contract.id, contract.name)
            terms_list = contract.kpis if contract.kpis is not None else [
                KpiTermsIn(code=code) for code in _contract_kpi_catalogue(contract, services)[0]]
            for terms in terms_list:
                full = _full_terms(terms.code, terms, services)
                target_rows.append({"contract_id": contract.id, "measure_code": terms.code, "valid_from": contract.start,
                                    "valid_to": None, "value": full["target"], "tolerance": full["tolerance"],
                                    "min_volume": full["min_volume"], "service_credit_pct": full["service_credit_pct"]})
            payment_rows.append({"contract_id": contract.id, "valid_from": contract.start, **contract.payment.model_dump()})
        self.session.flush()
        self.session.execute(insert(Contract.__table__), contract_rows)
        if target_rows:
            self.session.execute(insert(Target.__table__), target_rows)
        self.session.execute(insert(PaymentTerms.__table__), payment_rows)
        for contract in contracts:
            for variation in contract.variations:
                self.record(contract, variation, services)

    def record(self, contract: ContractIn, variation: VariationIn, services: dict) -> None:
        measure_code = variation.kpi
        if measure_code is None and len(variation.kpis) == 1:
            measure_code = variation.kpis[0].code
        try:
            record_variation(self.session, contract.id, variation.date, variation.kind, variation.description,
                             measure_code=measure_code)
            for terms in variation.kpis:
                if terms.closed:
                    self.close_kpi(contract.id, terms.code, variation.date)
                    continue
                has_any = self.session.exec(select(Target.id).where(Target.contract_id == contract.id,
                                                                    Target.measure_code == terms.code)).first()
                given = NewTerms(*(getattr(terms, f) for f in TERM_FIELDS))
                if not has_any:
                    full = _full_terms(terms.code, terms, services)
                    given = NewTerms(full["target"], full["tolerance"], full["min_volume"], full["service_credit_pct"])
                restate_terms(self.session, contract.id, terms.code, variation.date, given)
            if variation.payment is not None:
                self.restate_payment(contract.id, variation.date, variation.payment.model_dump(exclude_none=True))
        except ContractsError as exc:
            index = next(i for i, c in enumerate(self.checked.register.contracts) if c.id == contract.id)
            v_index = contract.variations.index(variation)
            self.problems.append(self.loc.problem(("contracts", index, "variations", v_index), str(exc)))
            return
        self.change("added", "variation", f"{contract.id} {variation.date} {variation.kind}", variation.description)

    def close_kpi(self, contract_id: str, code: str, when: date) -> None:
        rows = self.session.exec(select(Target).where(Target.contract_id == contract_id, Target.measure_code == code,
                                                      Target.valid_from < when)).all()
        for row in rows:
            if row.valid_to is None or row.valid_to >= when:
                row.valid_to = when - timedelta(days=1)

    def restate_payment(self, contract_id: str, when: date, values: dict) -> None:
        rows = self.session.exec(select(PaymentTerms).where(PaymentTerms.contract_id == contract_id)
                                 .order_by(PaymentTerms.valid_from)).all()
        later = [r for r in rows if r.valid_from > when]
        if later:
            raise ContractsError(f"{contract_id} already has payment terms from {later[0].valid_from}, after {when}: "
                                 "record variations in date order")
        same = next((r for r in rows if r.valid_from == when), None)
        before = [r for r in rows if r.valid_from < when]
        base = _payment_terms(same or before[-1]) if (same or before) else PaymentIn().model_dump()
        merged = {**base, **values}
        if same is None:
            self.session.add(PaymentTerms(contract_id=contract_id, valid_from=when, **merged))
        else:
            for key, value in merged.items():
                setattr(same, key, value)

    def existing_contract(self, index: int, contract: ContractIn, row: Contract, services: dict) -> None:
        base = ("contracts", index)
        fixed = {"area": (row.area_code, contract.area), "service": (row.service_type, contract.service),
                 "start": (row.start_date, contract.start)}
        for key, (old, new) in fixed.items():
            if old != new:
                self.problems.append(self.loc.problem((*base, key), f"{contract.id} was applied with {key} {old}; a contract's "
                                                      f"{key} cannot change (its data are tied to it): close it by removing it "
                                                      "and add a new contract with a new id"))
        if any(old != new for old, new in fixed.values()):
            return
        in_place = {"name": ("name", contract.name), "end": ("end_date", contract.end),
                    "annual_value_gbp": ("annual_value_gbp", contract.annual_value_gbp),
                    "return_due_day": ("return_due_day", contract.return_due_day),
                    "framework": ("framework", contract.framework), "closed_on": ("closed_on", contract.closed_on),
                    "provider": ("provider_id", contract.provider)}
        for key, (column, new) in in_place.items():
            old = getattr(row, column)
            if old != new:
                setattr(row, column, new)
                action = "closed" if key == "closed_on" and new is not None else "changed"
                self.change(action, "contract", contract.id, f"{key} {old} -> {new}")
        stored = {(v.effective_date, v.kind): v for v in self.variations.get(contract.id, [])}
        targets = self.targets.get(contract.id, [])
        payments = self.payments.get(contract.id, [])
        recorded = False
        for v_index, variation in enumerate(contract.variations):
            found = stored.get((variation.date, variation.kind))
            if found is None:
                self.record(contract, variation, services)
                recorded = True
                continue
            vpath = (*base, "variations", v_index)
            if found.description != variation.description:
                self.change("changed", "variation", f"{contract.id} {variation.date} {variation.kind}", "description updated")
                found.description = variation.description
            for k_index, terms in enumerate(variation.kpis):
                at_date = next((t for t in targets if t.measure_code == terms.code and t.valid_from == variation.date), None)
                if terms.closed:
                    continue
                if at_date is None:
                    self.problems.append(self.loc.problem((*vpath, "kpis", k_index), f"the variation of {variation.date} is "
                                                          f"recorded without terms for {terms.code}; history is not rewritten: "
                                                          "add a new variation from a later month"))
                    continue
                stored_terms = _target_terms(at_date)
                given = {f: getattr(terms, f) for f in TERM_FIELDS if getattr(terms, f) is not None}
                if not _same(given, {k: stored_terms[k] for k in given}):
                    self.problems.append(self.loc.problem((*vpath, "kpis", k_index), f"the variation of {variation.date} is "
                                                          f"recorded with {_fmt_terms(None, stored_terms)} for {terms.code}; "
                                                          "history is not rewritten: add a new variation from a later month"))
            if variation.payment is not None:
                at_date = next((p for p in payments if p.valid_from == variation.date), None)
                given = variation.payment.model_dump(exclude_none=True)
                if at_date is None or not _same(given, {k: _payment_terms(at_date)[k] for k in given}):
                    self.problems.append(self.loc.problem((*vpath, "payment"), f"the variation of {variation.date} is recorded "
                                                          "with other payment terms; history is not rewritten: add a new "
                                                          "variation from a later month"))
        if recorded:
            self._refetch(contract.id)
        self.terms_now(index, contract, services)

    def terms_now(self, index: int, contract: ContractIn, services: dict) -> None:
        """Compare the terms the register puts in force with the latest stored ones; differences become a variation."""
        wanted, payment = _register_chain(contract, services)
        targets = self.targets.get(contract.id, [])
        latest: dict[str, Target] = {}
        for target in targets:
            latest[target.measure_code] = target
        effective = self.effective
        changes: list[tuple[str, dict | None, dict | None]] = []
        for code, terms in wanted.items():
            row = latest.get(code)
            current = _target_terms(row) if row is not None and row.valid_to is None else None
            if terms is None and current is not None:
                changes.append((code, current, None))
            elif terms is not None and (current is None or not _same(current, terms)):
                changes.append((code, current, terms))
        for code, row in latest.items():
            if code not in wanted and row.valid_to is None:
                changes.append((code, _target_terms(row), None))
        payments = self.payments.get(contract.id, [])
        pay_now = _payment_terms(payments[-1]) if payments else None
        pay_change = pay_now is not None and not _same(pay_now, payment)
        if not changes and not pay_change:
            return
        if effective <= contract.start:
            # Not started yet: there is no history to keep, the start terms are simply corrected.
            for code, _before, after in changes:
                rows = [t for t in targets if t.measure_code == code]
                if after is None:
                    for t in rows:
                        self.session.delete(t)
                elif rows:
                    rows[-1].value, rows[-1].tolerance = after["target"], after["tolerance"]
                    rows[-1].min_volume, rows[-1].service_credit_pct = after["min_volume"], after["service_credit_pct"]
                else:
                    self.session.add(Target(contract_id=contract.id, measure_code=code, valid_from=contract.start,
                                            value=after["target"], tolerance=after["tolerance"],
                                            min_volume=after["min_volume"], service_credit_pct=after["service_credit_pct"]))
                self.change("changed", "kpi", f"{contract.id} {code}", "start terms corrected before the contract starts: "
                            + (_fmt_terms(_before, after) if after else "removed"))
            if pay_change:
                for key, value in payment.items():
                    setattr(payments[-1], key, value)
                self.change("changed", "payment", contract.id, "start terms corrected: " + _fmt_terms(pay_now, payment))
            return
        later = [t for t in targets if t.valid_from > effective] + [p for p in payments if p.valid_from > effective]
        if later:
            self.problems.append(self.loc.problem(("contracts", index), f"{contract.id} already has terms from "
                                                  f"{later[0].valid_from}, after the effective month {effective:%Y-%m}: "
                                                  "apply with a later --effective month"))
            return
        words = []
        for code, before, after in changes:
            if after is None:
                self.close_kpi(contract.id, code, effective)
                words.append(f"{code} dropped")
                self.change("closed", "kpi", f"{contract.id} {code}", f"from {effective}")
            else:
                restate_terms(self.session, contract.id, code, effective, NewTerms(after["target"], after["tolerance"],
                                                                                    after["min_volume"], after["service_credit_pct"]))
                words.append(f"{code} {_fmt_terms(before, after)}")
                self.change("changed" if before else "added", "kpi", f"{contract.id} {code}",
                            f"from {effective}: {_fmt_terms(before, after)} (a variation; the old terms are closed)")
        if pay_change:
            self.restate_payment(contract.id, effective, payment)
            words.append(f"payment {_fmt_terms(pay_now, payment)}")
            self.change("changed", "payment", contract.id, f"from {effective}: {_fmt_terms(pay_now, payment)}")
        codes = [c for c, _, _ in changes]
        description = f"Terms changed in the register from {effective:%Y-%m}: " + "; ".join(words) + "."
        variation = self.session.exec(select(ContractVariation).where(
            ContractVariation.contract_id == contract.id, ContractVariation.effective_date == effective,
            ContractVariation.kind == "renegotiation")).first()
        if variation is None:
            self.session.add(ContractVariation(contract_id=contract.id, effective_date=effective, kind="renegotiation",
                                               measure_code=codes[0] if len(codes) == 1 else None, description=description))
            self.change("added", "variation", f"{contract.id} {effective} renegotiation", description)
        else:
            variation.description = f"{variation.description} {description}"
            if variation.measure_code not in (None, *codes) or len(codes) > 1:
                variation.measure_code = None

    def recipients(self, recipients: list[RecipientIn]) -> None:
        from sqlalchemy import insert

        existing = {r.email: r for r in self.session.exec(select(Recipient)).all()}
        new_rows: list[RecipientIn] = []
        scopes: dict[int, set[tuple[str, str]]] = {}
        for scope in self.session.exec(select(RecipientScope)).all():
            scopes.setdefault(scope.recipient_id, set()).add((scope.kind, scope.ref))
        for recipient in recipients:
            wanted = {tuple(s.split(":", 1)) for s in recipient.scopes}
            row = existing.get(recipient.email)
            if row is None:
                new_rows.append(recipient)
                continue
            else:
                have = scopes.get(row.id, set())
                if (row.name, row.active) != (recipient.name, recipient.active):
                    self.change("changed", "recipient", recipient.email,
                                f"name/active {row.name!r}/{row.active} -> {recipient.name!r}/{recipient.active}")
                    row.name, row.active = recipient.name, recipient.active
            if have != wanted:
                if have:
                    self.change("changed", "recipient", recipient.email, "scopes " + ", ".join(sorted(":".join(s) for s in wanted)))
                for scope in self.session.exec(select(RecipientScope).where(RecipientScope.recipient_id == row.id)).all():
                    if (scope.kind, scope.ref) not in wanted:
                        self.session.delete(scope)
                for kind, ref in sorted(wanted - have):
                    self.session.add(RecipientScope(recipient_id=row.id, kind=kind, ref=ref))
        if new_rows:
            self.session.flush()
            self.session.execute(insert(Recipient.__table__), [{"email": r.email, "name": r.name, "active": r.active}
                                                                for r in new_rows])
            ids = dict(self.session.exec(select(Recipient.email, Recipient.id).where(
                Recipient.email.in_([r.email for r in new_rows]))).all())
            scope_rows = [{"recipient_id": ids[r.email], "kind": kind, "ref": ref}
                          for r in new_rows for kind, ref in sorted({tuple(s.split(":", 1)) for s in r.scopes})]
            if scope_rows:
                self.session.execute(insert(RecipientScope.__table__), scope_rows)
            for r in new_rows:
                self.change("added", "recipient", r.email, r.name)
        for email in sorted(set(existing) - {r.email for r in recipients}):
            if existing[email].active:
                existing[email].active = False
                self.change("closed", "recipient", email, "removed from the register: no longer sent documents (deliveries kept)")


def _stored_services(session: Session) -> list[dict]:
    declared = _declared()
    if declared is None or not hasattr(declared, "load_services"):
        return []
    return [spec.to_dict() for spec in declared.load_services(session).values()]


def _return_specs(services: dict) -> dict:
    from contracts.returns import SPECS

    return {**SPECS, **{spec.return_type: spec.return_spec for spec in services.values()}}


def _stored_mappings(session: Session, provider_id: str, services: dict | None = None) -> list[dict]:
    mapping = _mapping()
    if mapping is None:
        return []
    if services is None:
        declared = _declared()
        services = declared.load_services(session) if declared is not None else {}
    stored = mapping.load_mappings(session, provider_id, _return_specs(services))
    return [stored[return_type].to_dict() for return_type in sorted(stored)]


def default_effective(today: date | None = None) -> date:
    """Changes take effect from the first of the current month unless said otherwise."""
    today = today or date.today()
    return today.replace(day=1)


def apply_register(session: Session, checked: Checked, *, effective: date | None = None, dry_run: bool = False) -> ApplyResult:
    """Make the database match the register, in the session's transaction.

    The caller commits, or rolls back: on RegisterError (something the database holds conflicts with the
    register), and always for a dry run (``dry_run`` only marks the result; the step rolls back).
    """
    effective = effective or default_effective()
    if effective.day != 1:
        raise ContractsError(f"changes take effect from the first of a month; got {effective}")
    applier = _Applier(session, checked, effective)
    applier.run()
    if applier.problems:
        raise RegisterError(applier.problems)
    result = ApplyResult(applier.changes, checked.notes, effective, dry_run)
    if result.changed_anything and not dry_run:
        session.add(RegisterApply(applied_at=datetime.now(UTC), source=checked.loaded.source, sha256=checked.loaded.sha256,
                                  effective_date=effective, diff=json.dumps([c.to_dict() for c in result.changes
                                                                             if c.action != "kept"])))
        session.flush()
    return result


def check_file(path: Path) -> Checked:
    return validate(load_register(path))


# ------------------------------------------------------------------ export


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def export_register(session: Session) -> dict:
    """The database as a register (plain data: dates as ``date``): export then apply changes nothing."""
    office = session.get(Office, 1)
    areas = [a.code for a in session.exec(select(Area).order_by(Area.code)).all()]
    data: dict = {"office": {"name": office.name if office else "(unnamed office)", "areas": areas}}
    if office is not None and office.lcjb_commentary:
        data["office"]["lcjb_commentary"] = json.loads(office.lcjb_commentary)
    data["providers"] = []
    declared = _declared()
    services = declared.load_services(session) if declared is not None else {}
    for p in session.exec(select(Provider).order_by(Provider.id)).all():
        item = {"id": p.id, "name": p.name, "kind": p.kind, "return_mode": p.return_mode}
        mappings = _stored_mappings(session, p.id, services)
        if mappings:
            item["mappings"] = mappings
        data["providers"].append(item)
    data["services"] = [spec.to_dict() for spec in services.values()]
    data["contracts"] = []
    targets: dict[str, list[Target]] = {}
    for t in session.exec(select(Target).order_by(Target.contract_id, Target.valid_from, Target.id)).all():
        targets.setdefault(t.contract_id, []).append(t)
    payments: dict[str, list[PaymentTerms]] = {}
    for p in session.exec(select(PaymentTerms).order_by(PaymentTerms.contract_id, PaymentTerms.valid_from)).all():
        payments.setdefault(p.contract_id, []).append(p)
    variations: dict[str, list[ContractVariation]] = {}
    for v in session.exec(select(ContractVariation).order_by(ContractVariation.contract_id, ContractVariation.effective_date,
                                                             ContractVariation.kind)).all():
        variations.setdefault(v.contract_id, []).append(v)
    for c in session.exec(select(Contract).order_by(Contract.id)).all():
        rows = targets.get(c.id, [])
        item = {"id": c.id, "name": c.name, "area": c.area_code, "provider": c.provider_id, "service": c.service_type}
        if c.framework:
            item["framework"] = c.framework
        item.update({"start": c.start_date, "end": c.end_date, "annual_value_gbp": c.annual_value_gbp,
                     "return_due_day": c.return_due_day})
        item["kpis"] = [{"code": t.measure_code, **_target_terms(t)} for t in rows if t.valid_from == c.start_date]
        pay = payments.get(c.id, [])
        item["payment"] = _drop_none(_payment_terms(pay[0])) if pay else {}
        out_variations = []
        used_dates: set[date] = set()
        for v in variations.get(c.id, []):
            entry: dict = {"date": v.effective_date, "kind": v.kind, "description": v.description}
            if v.measure_code:
                entry["kpi"] = v.measure_code
            if v.effective_date not in used_dates:
                used_dates.add(v.effective_date)
                restated = [{"code": t.measure_code, **_target_terms(t)} for t in rows if t.valid_from == v.effective_date]
                closed = [{"code": t.measure_code, "closed": True} for t in rows
                          if t.valid_to is not None and t.valid_to + timedelta(days=1) == v.effective_date
                          and not any(o.measure_code == t.measure_code and o.valid_from > t.valid_from for o in rows)]
                if restated or closed:
                    entry["kpis"] = restated + closed
                pay_at = next((p for p in pay[1:] if p.valid_from == v.effective_date), None)
                if pay_at is not None:
                    entry["payment"] = _drop_none(_payment_terms(pay_at))
            out_variations.append(entry)
        item["variations"] = out_variations
        if c.closed_on:
            item["closed_on"] = c.closed_on
        data["contracts"].append(item)
    scopes: dict[int, list[str]] = {}
    for s in session.exec(select(RecipientScope).order_by(RecipientScope.recipient_id, RecipientScope.kind,
                                                          RecipientScope.ref)).all():
        scopes.setdefault(s.recipient_id, []).append(f"{s.kind}:{s.ref}")
    data["recipients"] = [{"email": r.email, "name": r.name, "scopes": scopes.get(r.id, []), **({} if r.active else {"active": False})}
                          for r in session.exec(select(Recipient).order_by(Recipient.email)).all()]
    return data


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_json(data: dict) -> str:
    return json.dumps(_jsonable(data), indent=2) + "\n"


def to_yaml(data: dict, header: str = "") -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
    return header + text


def parse_data(data: dict, name: str = "(register)") -> Checked:
    """Validate an in-memory register (the demo's), with key paths but no line numbers."""
    return validate(LoadedRegister(data, Locator(name, {}, "yaml"), name,
                                   hashlib.sha256(to_json(data).encode()).hexdigest()))
