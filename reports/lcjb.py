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
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import Area, Contract, Judgement, Office
from reports.artifacts import data_cut_time, format_cut, record_artifact, write_text
from reports.env import environment, month_name
from reports.pdf import pdf_bytes
from reports.system_index import SystemIndex, system_index
from reports.system_index import labels as measure_labels
from reports.xlsx import workbook_bytes

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
    labels = measure_labels()
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
