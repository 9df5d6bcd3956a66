"""The KPI catalogue: definitions are data, derivations are named SQL files in ``sql/``.

The definitions live in the framework files ``contracts/frameworks/*.yaml`` (CRC Schedule 9, EMS,
the Probation Service service levels of 2021, Commissioned Rehabilitative Services, health and
justice), each KPI with its official code per version (``valid_from`` / ``valid_to``), its derivation
(a named SQL file) and its default terms. This module reads them once.

Each measure is a proportion ``numerator / denominator`` for one contract and one
month (reoffending: one cohort quarter, labelled by its first month). ``direction``
says whether higher or lower is better. Default targets seed new contracts; the
targets actually in force live in the ``target`` table with their history.

``MEASURES`` holds the built-in measures (those with an ``order`` in their framework file), which are
derived for every contract; the other framework KPIs (``FRAMEWORK_MEASURES``) are derived for the
contracts whose register names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

FRAMEWORK_DIR = Path(__file__).resolve().parent / "frameworks"


@dataclass(frozen=True)
class MeasureDef:
    code: str
    service_type: str
    name: str
    definition: str
    numerator: str
    denominator: str
    direction: str  # "higher" or "lower" is better
    unit: str
    sql_name: str
    default_target: float
    default_tolerance: float
    min_volume: int = 20
    service_credit_pct: float = 0.0


@dataclass(frozen=True)
class KpiVersion:
    official_code: str | None
    valid_from: date | None
    valid_to: date | None
    source: str  # primary or secondary
    note: str = ""


@dataclass(frozen=True)
class FrameworkKpi:
    measure: MeasureDef
    service: str  # crc | ttg | em | health: the return it is derived from
    versions: tuple[KpiVersion, ...]
    defaults_source: str
    order: int | None = None

    @property
    def code(self) -> str:
        return self.measure.code


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    era: str
    valid_from: date | None
    valid_to: date | None
    kpis: tuple[FrameworkKpi, ...] = field(default_factory=tuple)
    path: str = ""

    def codes(self) -> list[str]:
        return [k.code for k in self.kpis]

    def to_dict(self) -> dict:
        """The ``cjmonitor frameworks --json`` shape: one KPI row per versioned definition."""
        return {"id": self.id, "name": self.name, "era": self.era,
                "kpis": [{"code": k.code, "official_code": v.official_code, "name": k.measure.name, "service": k.service,
                          "valid_from": v.valid_from.isoformat() if v.valid_from else None,
                          "valid_to": v.valid_to.isoformat() if v.valid_to else None,
                          "source": v.source, "derivation": {"sql": k.measure.sql_name}}
                         for k in self.kpis for v in k.versions]}


def _date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _load_framework(path: Path) -> Framework:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(), Loader=loader)
    kpis = []
    for item in data["kpis"]:
        defaults = item["defaults"]
        sql = item["derivation"]["sql"]
        if not (FRAMEWORK_DIR.parent.parent / "sql" / f"{sql}.sql").is_file():
            raise RuntimeError(f"{path.name}: KPI {item['code']} names sql/{sql}.sql, which does not exist")
        measure = MeasureDef(item["code"], item.get("measure_type", item["service"]), item["name"], item["definition"],
                             item["numerator"], item["denominator"], item["direction"], item["unit"], sql,
                             float(defaults["target"]), float(defaults["tolerance"]), int(defaults["min_volume"]),
                             float(defaults["service_credit_pct"]))
        versions = tuple(KpiVersion(v.get("official_code"), _date(v.get("valid_from")), _date(v.get("valid_to")),
                                    v["source"], v.get("note", "")) for v in item["versions"])
        kpis.append(FrameworkKpi(measure, item["service"], versions, defaults.get("source", "secondary"), item.get("order")))
    return Framework(data["id"], data["name"], str(data["era"]), _date(data.get("valid_from")), _date(data.get("valid_to")),
                     tuple(kpis), str(path))


FRAMEWORKS: dict[str, Framework] = {f.id: f for f in (_load_framework(p) for p in sorted(FRAMEWORK_DIR.glob("*.yaml")))}
FRAMEWORK_KPIS: dict[str, FrameworkKpi] = {}
FRAMEWORK_OF: dict[str, str] = {}  # measure code -> framework id
for _framework in FRAMEWORKS.values():
    for _kpi in _framework.kpis:
        if _kpi.code in FRAMEWORK_KPIS:
            raise RuntimeError(f"KPI code {_kpi.code} is in two frameworks: {FRAMEWORK_OF[_kpi.code]} and {_framework.id}")
        FRAMEWORK_KPIS[_kpi.code] = _kpi
        FRAMEWORK_OF[_kpi.code] = _framework.id

MEASURES: tuple[MeasureDef, ...] = tuple(
    k.measure for k in sorted((k for k in FRAMEWORK_KPIS.values() if k.order is not None), key=lambda k: k.order))
FRAMEWORK_MEASURES: dict[str, MeasureDef] = {code: k.measure for code, k in FRAMEWORK_KPIS.items()}
# The framework a contract of a built-in service uses when its register names none.
DEFAULT_FRAMEWORK = {"crc": "crc_sch9_2014", "ttg": "crc_sch9_2014", "em": "ems_2014", "health": "health_justice"}


def framework_kpis(framework_id: str, service: str) -> list[FrameworkKpi]:
    """The KPIs of a framework that a contract of ``service`` can carry (CRC contracts also carry reoffending)."""
    return [k for k in FRAMEWORKS[framework_id].kpis if k.service == service]


MEASURES_BY_CODE = {measure.code: measure for measure in (*MEASURES, *FRAMEWORK_MEASURES.values())}
SERVICE_TYPES = ("crc", "ttg", "em", "health")
SERVICE_NAMES = {
    "crc": "Probation (CRC) services",
    "ttg": "Through-the-gate resettlement",
    "em": "Electronic monitoring",
    "health": "Health services for offenders",
}
CONTRACT_PREFIX = {"crc": "CRC", "ttg": "TTG", "em": "EM", "health": "HLT"}


def measures_for(service_type: str) -> list[MeasureDef]:
    return [measure for measure in MEASURES if measure.service_type == service_type]
