"""The LCJB pack: a quarterly whole-system view of one area for its Local Criminal Justice Board (issue #19).

HTML, PDF and an XLSX annex, made from the stored ``cjs_system_measures`` return and the office's own
judgements:

1. the funnel (``contracts.pathway``), with the area against the national figure and its most similar areas,
   under the same disclosure control as the monthly report (``reports.pathway.published_pathway``);
2. the timeliness trends, each an XmR chart (``outcomes.spc``) of the area's months, read as common or
   special cause;
3. the interdependencies that concern the area (``outcomes.interdependence``): associations, never causes;
4. the commissioned services' KPIs beside the system measures they depend on (``DEPENDS_ON``);
5. partners' commentary (``office.lcjb_commentary`` of the register), shown as written.

No league table: the area is compared with the national figure and with its most similar group only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import Area, Contract, Judgement, Office
from reports.artifacts import data_cut_time, format_cut, record_artifact, write_text
from reports.env import environment, month_name
from reports.pdf import pdf_bytes
from reports.xlsx import workbook_bytes

log = logging.getLogger(__name__)

KIND = "lcjb_pack"
QUARTER_END_MONTHS = (3, 6, 9, 12)
TREND_MONTHS = 24
# The system measures each commissioned service depends on (what partners do upstream or alongside it).
DEPENDS_ON: dict[str, tuple[tuple[str, str], ...]] = {
    "crc": (("courts_magistrates", "custody_or_community_sentence"), ("probation", "order_completion_rate"),
            ("probation", "recall_rate")),
    "ttg": (("prisons", "releases_to_area"), ("prisons", "remand_population"), ("probation", "recall_rate")),
    "em": (("courts_magistrates", "custody_or_community_sentence"), ("courts_crown", "custody_or_community_sentence"),
           ("prisons", "releases_to_area")),
    "health": (("police", "recorded_crime"), ("prisons", "releases_to_area"), ("probation", "order_completion_rate")),
}


class LcjbError(ValueError):
    """The pack cannot be made for this area and period; the message says what to do."""


def is_quarter_end(period: str) -> bool:
    return int(period[5:7]) in QUARTER_END_MONTHS


def latest_quarter_end(period: str) -> str:
    """``period`` itself when it ends a quarter, else the last month of the quarter before."""
    month = pd.Period(period, "M")
    while month.month not in QUARTER_END_MONTHS:
        month -= 1
    return str(month)


def quarter_label(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year}-Q{(month - 1) // 3 + 1}"


class SystemIndex:
    """The stored system measures, read and indexed once: the frame (with breakdowns), each (agency, measure)'s
    whole-area rows in stored order, each measure's unit, and the panel analysis, computed on first use.

    Filtering the whole frame with ``==`` on its string columns cost about 0.1 s a filter; an LCJB pack made 36."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.area_set = set(frame["area_code"])
        self.areas = sorted(self.area_set)
        first = frame.drop_duplicates(["agency", "measure"])
        self.units = {(agency, measure): unit for agency, measure, unit
                      in first[["agency", "measure", "unit"]].itertuples(index=False, name=None)}
        whole = frame[frame["breakdown"] == ""]
        self.whole = {key: rows for key, rows in whole.groupby(["agency", "measure"], sort=False)}
        self._interdependencies = None
        self._interdependencies_error = None
        self._pathway_store = None
        self.cache_key: tuple | None = None  # set by system_index: what a shared copy is filed under

    def rows(self, agency: str, measure: str) -> pd.DataFrame:
        """The whole-area rows of one measure, every area and period, in the frame's order (empty if none)."""
        found = self.whole.get((agency, measure))
        return found if found is not None else self.frame.iloc[0:0]

    def pathway_store(self):
        """The monthly figures indexed for the pathway's sums (the same for every area's pack)."""
        from contracts.pathway import PathwayStore

        if self._pathway_store is None:
            self._pathway_store = PathwayStore(self.frame[self.frame["period_type"] == "month"])
        return self._pathway_store

    def interdependencies(self):
        """The panel analysis across every area (the same for every area's pack)."""
        from outcomes.errors import OutcomesError
        from outcomes.interdependence import analyse_interdependencies

        if self._interdependencies is None and self._interdependencies_error is None:
            whole = self.frame[(self.frame["breakdown"] == "") & (self.frame["period_type"] == "month")]
            try:
                self._interdependencies = analyse_interdependencies(whole, labels=_labels())
            except OutcomesError as exc:  # e.g. too few areas: the same answer every time, so kept too
                self._interdependencies_error = exc
        if self._interdependencies_error is not None:
            raise self._interdependencies_error.with_traceback(None)
        return self._interdependencies


# One index per database, kept for the life of the process and checked against the stored table before each use
# (``_fingerprint``), so that a new or replaced system-measures return is read again, never served stale.
_INDEXES: dict[str, tuple[tuple, SystemIndex]] = {}
_MAX_INDEXES = 2


def _fingerprint(session: Session) -> tuple:
    """What changes whenever ``system_measure_value`` does: its row count, its highest id and its latest load time
    (figures are only ever inserted, each store with a new load time, or deleted)."""
    from sqlalchemy import func

    from contracts.models import SystemMeasureValue

    table = SystemMeasureValue.__table__
    row = session.execute(select(func.count(), func.max(table.c.id), func.max(table.c.loaded_at))
                          .select_from(table)).one()
    return tuple(str(v) for v in row)


def system_index(session: Session) -> SystemIndex:
    """The indexed system measures of ``session``'s database, read once per process while they are unchanged
    (and, with :func:`use_index_cache`, once across the processes of a run)."""
    from contracts.system import read_system_measures

    database = session.get_bind().url.render_as_string(hide_password=False)
    stamp = _fingerprint(session)
    cached = _INDEXES.get(database)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    key = _cache_key(session, stamp)
    index = _read_index_cache(key)
    if index is None:
        index = SystemIndex(read_system_measures(session, breakdowns=True))
    _INDEXES.pop(database, None)
    while len(_INDEXES) >= _MAX_INDEXES:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[database] = (stamp, index)
    index.cache_key = key
    return index


# The index shared by the processes of one home (each of the monthly DAG's rendering tasks is its own process, and
# at a quarter's end each built the same index and panel analysis again: about 2.9 CPU-s, 42 times on the default
# world). A cache, safe to delete; keyed by the database (without its password), the table's fingerprint, the code
# version and the source of the modules that build it, so that it is never served stale. It is a pickle the
# application itself wrote in the home's var/cache, trusted as the home's database is.
_CACHE_FILE: Path | None = None
_SAVED: set[tuple] = set()
_CACHE_MODULES = ("reports/lcjb.py", "contracts/pathway.py", "outcomes/interdependence.py", "contracts/system.py")


def use_index_cache(directory: Path | None) -> None:
    """Read and write the indexed system measures in ``directory`` (the home's ``var/cache``); ``None`` stops."""
    global _CACHE_FILE
    _CACHE_FILE = None if directory is None else Path(directory) / "system-index.pickle"


def _cache_key(session: Session, stamp: tuple) -> tuple:
    from cjmonitor.state import code_version

    root = Path(__file__).resolve().parent.parent
    source = hashlib.sha256(b"".join((root / name).read_bytes() for name in _CACHE_MODULES)).hexdigest()
    return (session.get_bind().url.render_as_string(hide_password=True), stamp, code_version(), source)


def _stored_key(handle) -> tuple | None:
    """The key the cache file was written under: its first pickle, read without the index behind it."""
    key = pickle.load(handle)
    return key if isinstance(key, tuple) else None


def _read_index_cache(key: tuple) -> SystemIndex | None:
    if _CACHE_FILE is None or not _CACHE_FILE.exists():
        return None
    try:
        with _CACHE_FILE.open("rb") as handle:
            if _stored_key(handle) != key:
                return None
            index = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - a damaged or incompatible cache is rebuilt, never trusted
        log.warning("ignoring the system-measures cache %s (%s): it is built again", _CACHE_FILE, exc)
        return None
    if not isinstance(index, SystemIndex):
        return None
    _SAVED.add(key)  # it is already there, with what its writer had computed
    return index


def save_index_cache() -> bool:
    """Write this process's index, with its panel analysis and pathway store computed, for the other processes of
    the home, unless the file already holds it; True if it wrote."""
    if _CACHE_FILE is None:
        return False
    wrote = False
    for _stamp, index in list(_INDEXES.values()):
        key = index.cache_key
        if key is None or key in _SAVED:
            continue
        try:
            with _CACHE_FILE.open("rb") as handle:
                current = _stored_key(handle) == key
        except Exception:  # noqa: BLE001 - no file, or a damaged one: written below
            current = False
        if not current:
            from outcomes.errors import OutcomesError

            try:
                index.interdependencies()  # computed (or its error kept) before the copy is shared
            except OutcomesError:
                pass  # kept in the index: each pack says why, as without the copy
            index.pathway_store()
            _CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
            tmp = _CACHE_FILE.with_name(f"{_CACHE_FILE.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                pickle.dump(key, handle, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(index, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, _CACHE_FILE)  # whole or not at all; two writers of one key write the same index
            wrote = True
        _SAVED.add(key)
    return wrote


def _labels() -> dict[tuple[str, str], str]:
    from contracts.system import load_catalogue

    return {item.key: item.name for item in load_catalogue().measures}


def _sparkline(points: pd.DataFrame, title: str) -> str:
    """A small SVG of an XmR chart: the values, the centre line and the limits (text alternative in the table)."""
    width, height, pad = 220, 60, 4
    values = points["value"].to_numpy(float)
    lows, highs = points["lower"].to_numpy(float), points["upper"].to_numpy(float)
    top = float(max(values.max(), highs.max()))
    bottom = float(min(values.min(), lows.min()))
    span = (top - bottom) or 1.0

    def xy(i, v):
        x = pad + (width - 2 * pad) * i / max(len(values) - 1, 1)
        y = pad + (height - 2 * pad) * (top - v) / span
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(i, v) for i, v in enumerate(values))
    centre = " ".join(xy(i, v) for i, v in enumerate(points["centre"].to_numpy(float)))
    upper = " ".join(xy(i, v) for i, v in enumerate(highs))
    lower = " ".join(xy(i, v) for i, v in enumerate(lows))
    return (f'<svg role="img" aria-label="{title}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<polyline points="{upper}" fill="none" stroke="#888" stroke-dasharray="3 2"/>'
            f'<polyline points="{lower}" fill="none" stroke="#888" stroke-dasharray="3 2"/>'
            f'<polyline points="{centre}" fill="none" stroke="#555"/>'
            f'<polyline points="{line}" fill="none" stroke="#005eb8" stroke-width="1.5"/></svg>')


def timeliness(index: SystemIndex, area_code: str, period: str) -> list[dict]:
    """Each timeliness measure (days, and the trial outcomes) of the area, up to 24 months to ``period``, as XmR."""
    from contracts.system import load_catalogue
    from outcomes.spc import xmr_chart

    catalogue = load_catalogue()
    out = []
    for item in catalogue.measures:
        if not (item.unit == "days" or item.measure in ("ineffective_trial_rate", "effective_trial_rate")):
            continue
        rows = index.rows(item.agency, item.measure)
        series = rows[(rows["area_code"] == area_code) & (rows["period_type"] == "month")
                      & (rows["period"] <= period)].sort_values("period")
        series = series.tail(TREND_MONTHS)
        if len(series) < 2:
            continue
        improvement = item.direction if item.direction in ("higher", "lower") else "higher"
        chart = xmr_chart(series["value"].to_numpy(float), list(series["period"]), improvement=improvement)
        points = chart.points
        out.append({"agency": item.agency, "measure": item.measure, "name": item.name, "unit": item.unit,
                    "latest": float(series["value"].iloc[-1]), "centre": float(points["centre"].iloc[-1]),
                    "lower": float(points["lower"].iloc[-1]), "upper": float(points["upper"].iloc[-1]),
                    "variation": chart.variation, "months": len(series), "first": series["period"].iloc[0],
                    "signals": [f"{s.rule} ({s.meaning}) {series['period'].iloc[s.start]} to {series['period'].iloc[s.end]}"
                                for s in chart.signals],
                    "svg": _sparkline(points, f"{item.name}, {area_code}, XmR chart to {period}")})
    return out


def _latest(index: SystemIndex, agency: str, measure: str, period: str, areas: list[str]) -> float | None:
    """The measure over the quarter to ``period`` in ``areas``: pooled numerator/denominator for percentages,
    a mean of monthly figures otherwise (per area, then summed for counts)."""
    months = [str(pd.Period(period, "M") - k) for k in range(3)]
    rows = index.rows(agency, measure)
    rows = rows[rows["period"].isin(months) & rows["area_code"].isin(areas)]
    if rows.empty:
        return None
    unit = rows["unit"].iloc[0]
    if unit == "percent":
        denominator = rows["denominator"].sum()
        return float(100 * rows["numerator"].sum() / denominator) if denominator > 0 else None
    if unit == "count":
        return float(rows["value"].sum() / len(months))
    return float(rows["value"].mean())


def services(session: Session, index: SystemIndex, area_code: str, period: str, similar: list[str]) -> list[dict]:
    """The area's commissioned services' KPIs this month, each beside the system measures its service depends on."""
    labels = _labels()
    contracts = session.exec(select(Contract).where(Contract.area_code == area_code).order_by(Contract.id)).all()
    judged = session.exec(select(Judgement).where(Judgement.contract_id.in_([c.id for c in contracts]),
                                                  Judgement.period == period)).all()
    areas = index.areas
    out = []
    for contract in contracts:
        kpis = [{"name": MEASURES_BY_CODE[j.measure_code].name if j.measure_code in MEASURES_BY_CODE else j.measure_code,
                 "value": j.value, "target": j.target, "rag": j.rag, "kind": j.kind}
                for j in judged if j.contract_id == contract.id]
        system = []
        for agency, measure in DEPENDS_ON.get(contract.service_type, ()):
            unit = index.units.get((agency, measure), "")
            system.append({"agency": agency, "name": labels.get((agency, measure), measure), "unit": unit,
                           "area": _latest(index, agency, measure, period, [area_code]),
                           "national": _per_area(_latest(index, agency, measure, period, areas), unit, len(areas)),
                           "similar": _per_area(_latest(index, agency, measure, period, similar), unit, len(similar))})
        out.append({"id": contract.id, "name": contract.name, "kpis": kpis, "system": system})
    return out


def _per_area(value: float | None, unit: str, n: int) -> float | None:
    """Counts over a group of areas are shown per area (an average area), so that they compare with one area's."""
    if value is None or unit != "count" or not n:
        return value
    return value / n


def commentary(session: Session, area_code: str, period: str) -> list[dict]:
    office = session.get(Office, 1)
    notes = json.loads(office.lcjb_commentary) if office is not None and office.lcjb_commentary else []
    return [n for n in notes if n["area"] == area_code and n["period"] == period]


def gather(session: Session, area_code: str, period: str, *, threshold: int = 5) -> dict:
    from contracts.pathway import build_pathway
    from reports.pathway import published_pathway

    area = session.get(Area, area_code)
    if area is None:
        raise LcjbError(f"no area '{area_code}': use an ONS code such as E23000005")
    index = system_index(session)
    frame = index.frame
    if frame.empty or area_code not in index.area_set:
        raise LcjbError(f"no system measures are stored for {area_code}: drop the cjs_system_measures returns in the "
                        "drop folder and run `cjmonitor ingest` (or `cjmonitor system load FILES`)")
    pathway = published_pathway(build_pathway(frame, area_code, period, months=3,
                                                               store=index.pathway_store()), threshold=threshold)
    similar = [s["area_code"] for s in pathway["similar_areas"]]
    names = {a.code: a.name for a in session.exec(select(Area)).all()}
    from outcomes.errors import OutcomesError

    try:
        result = index.interdependencies()
    except OutcomesError as exc:  # e.g. too few areas for cluster-robust inference: say so in the pack
        links, headline = [], f"The interdependencies were not analysed: {exc}."
    else:
        links, headline = result.links_for_area(area_code), result.headline
    return {"area": area, "period": period, "quarter": quarter_label(period), "pathway": pathway,
            "similar_names": [names.get(code, code) for code in similar], "threshold": threshold,
            "trends": timeliness(index, area_code, period), "links": links, "links_headline": headline,
            "services": services(session, index, area_code, period, similar),
            "commentary": commentary(session, area_code, period)}


def render_lcjb_pack(session: Session, out_dir: Path, area_code: str, period: str, *, code_version: str,
                     threshold: int = 5) -> dict[str, Path]:
    """Write ``out/lcjb/<area>/<period>/lcjb.{html,pdf,xlsx}`` and record them as artifacts (kind ``lcjb_pack``)."""
    data = gather(session, area_code, period, threshold=threshold)
    folder = out_dir / "lcjb" / area_code / period
    folder.mkdir(parents=True, exist_ok=True)
    cut = data_cut_time(session)
    html = environment().get_template("lcjb_pack.html").render(**data, period_name=month_name(period),
                                                               code_version=code_version, generated_at=format_cut(cut))
    paths = {"html": folder / "lcjb.html", "pdf": folder / "lcjb.pdf", "xlsx": folder / "lcjb.xlsx"}
    records = [(paths["html"], write_text(paths["html"], html))]
    pdf = pdf_bytes(html, folder, created=cut)
    paths["pdf"].write_bytes(pdf)
    records.append((paths["pdf"], hashlib.sha256(pdf).hexdigest()))
    stages = [{k: s[k] for k in ("label", "volume", "conversion", "attrition", "trend")}
              | {"national_conversion": s["national"]["conversion"], "similar_conversion": s["similar"]["conversion"]}
              for s in data["pathway"]["stages"]]
    sheets = {
        "funnel": pd.DataFrame(stages),
        "timeliness": pd.DataFrame([{k: t[k] for k in ("agency", "name", "unit", "latest", "centre", "lower", "upper",
                                                        "variation")} for t in data["trends"]] or [{"note": "none"}]),
        "interdependencies": pd.DataFrame([{"scope": link["scope"], "cause": f"{link['cause']['agency']}.{link['cause']['measure']}",
                                            "effect": f"{link['effect']['agency']}.{link['effect']['measure']}",
                                            "lag_months": link["lag_months"], "estimate": link["estimate"],
                                            "ci_low": link["ci_low"], "ci_high": link["ci_high"],
                                            "q_value": link["q_value"], "sentence": link["headline"]}
                                           for link in data["links"]] or [{"note": "no association found"}]),
        "services": pd.DataFrame([{"contract": s["id"], "system_measure": m["name"], "area": m["area"],
                                   "national": m["national"], "similar": m["similar"]}
                                  for s in data["services"] for m in s["system"]] or [{"note": "no contracts"}]),
        "commentary": pd.DataFrame(data["commentary"] or [{"note": "no commentary"}]),
    }
    workbook = workbook_bytes(sheets, created=cut)
    paths["xlsx"].write_bytes(workbook)
    records.append((paths["xlsx"], hashlib.sha256(workbook).hexdigest()))
    for path, digest in records:
        record_artifact(session, kind=KIND, audience="commissioner", period=period, path=path, sha=digest,
                        area_code=area_code)
    return paths
