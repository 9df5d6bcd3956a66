"""The summary matrix: one row per contract x KPI with this month, target, RAG, verdict, the MDC icons, the
rolling year and the action, for an area (on its monthly report and as pages of the site) and nationally by
provider.

It sorts and filters without JavaScript: each order and each filter is its own pre-rendered page
(``index.html``, ``by-variation.html``, ``needs-action.html`` ...), linked from every page, so it works from
the file system, prints (a page is a plain table), and a screen reader reads one table at a time. Every row
links to its scorecard. The XLSX holds every row with an autofilter on every column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.fairness import contract_signals
from contracts.judge import judged_months, kpi_charts, rolling_judgements, variation_breaks
from contracts.models import Area, Contract, Provider
from reports.artifacts import write_bytes
from reports.env import environment, month_name
from reports.icons import icon_words
from reports.xlsx import workbook_bytes

VARIATION_ORDER = {"concern_low": 0, "concern_high": 0, "neither_low": 1, "neither_high": 1, "common_cause": 2,
                   "improvement_low": 3, "improvement_high": 3, None: 4}
ASSURANCE_ORDER = {"fail": 0, "hit_and_miss": 1, "pass": 2, None: 3}
RAG_ORDER = {"Red": 0, "Amber": 1, "Green": 2, "No data": 3}
ACTION_ORDER = {"performance notice": 0, "check remedial plan": 1, "raise at meeting": 2, "ask what changed": 3,
                "watch": 4, "none": 5}

# (file stem, link text, sort key or filter)
VARIANTS = [
    ("index", "by contract", None),
    ("by-action", "by action", "action"),
    ("by-variation", "concerning variation first", "variation"),
    ("by-assurance", "failing assurance first", "assurance"),
    ("by-rag", "Red first", "rag"),
    ("needs-action", "only rows needing action", "filter:action"),
    ("concerning", "only special cause of concern", "filter:concern"),
    ("failing", "only consistently failing", "filter:fail"),
]


def _action(measure: dict, cusum: dict | None) -> str:
    """The action word for one row (the full sentence is on the scorecard)."""
    if cusum and cusum.get("signal"):
        return "performance notice"
    if cusum and cusum.get("in_last_12"):
        return "check remedial plan"
    year = (measure.get("rolling") or {}).get("year") or {}
    if year.get("verdict") == "not met" or measure.get("verdict") == "not met":
        return "raise at meeting"
    if (measure.get("variation_icon") or "").startswith("concern"):
        return "ask what changed"
    if measure.get("rag") == "Red":
        return "watch"
    return "none"


def rows_from_view(view: dict, contract: Contract, provider: str, area: str) -> list[dict]:
    """The matrix rows of one contract from its scorecard view (``ScorecardView.to_dict()``): the same figures
    as :func:`matrix_rows` computes, without computing them again."""
    period = view["period"]
    rows = []
    for m in view["measures"]:
        if m["as_of"] != period or m["verdict"] == "no return":
            continue
        year = (m.get("rolling") or {}).get("year")
        row = {"contract_id": contract.id, "contract": contract.name, "provider_id": contract.provider_id,
               "provider": provider, "area_code": contract.area_code, "area": area, "code": m["code"], "kpi": m["name"],
               "direction": m["direction"], "unit": m.get("unit") or "percent", "value": m["value"], "target": m["target"], "rag": m["rag"],
               "verdict": m["verdict"], "variation_icon": m["variation_icon"], "assurance_icon": m["assurance_icon"],
               "year_value": year["value"] if year else None, "year_verdict": year["verdict"] if year else "no data",
               "year_rag": year["rag"] if year else "No data", "scorecard": f"scorecards/{period}/{contract.id}.html"}
        row["variation"], row["assurance"] = icon_words(row["variation_icon"], row["assurance_icon"])
        measure = {"rag": row["rag"], "verdict": row["verdict"], "variation_icon": row["variation_icon"],
                   "rolling": {"year": {"verdict": row["year_verdict"]}}}
        row["action"] = _action(measure, m.get("cusum"))
        rows.append(row)
    return rows


def matrix_rows(session: Session, contract_ids: list[str], period: str, alpha: float,
                views: dict[str, dict] | None = None) -> list[dict]:
    """One row per contract x KPI judged in ``period`` (sorted by contract then KPI).

    ``views``: scorecard views already built for this period (``{contract_id: ScorecardView.to_dict()}``, e.g. read
    from the JSON written beside each scorecard); those contracts' rows are taken from them, the rest computed.
    """
    if not contract_ids:
        return []
    if views:
        from reports.artifacts import data_cut_time, format_cut

        cut = format_cut(data_cut_time(session))
        # Only views of this month, at this alpha, from the data as they are now (a stale view is computed again).
        views = {k: v for k, v in views.items() if k in contract_ids and v.get("period") == period
                 and v.get("data_cut") == cut and v.get("alpha") == alpha}
    if views:
        contracts = {c.id: c for c in session.exec(select(Contract).where(Contract.id.in_(list(views)))).all()}
        providers = {p.id: p.name for p in session.exec(select(Provider)).all()}
        areas = {a.code: a.name for a in session.exec(select(Area)).all()}
        done = []
        for contract_id in sorted(views):
            c = contracts[contract_id]
            done += rows_from_view(views[contract_id], c, providers.get(c.provider_id, c.provider_id),
                                   areas.get(c.area_code, c.area_code))
        rest = matrix_rows(session, [c for c in contract_ids if c not in views], period, alpha)
        return sorted(done + rest, key=lambda r: (r["contract_id"], r["code"]))
    contracts = {c.id: c for c in session.exec(select(Contract).where(Contract.id.in_(contract_ids))).all()}
    providers = {p.id: p.name for p in session.exec(select(Provider)).all()}
    areas = {a.code: a.name for a in session.exec(select(Area)).all()}
    monthly = judged_months(session, contract_ids)
    if monthly.empty:
        return []
    breaks = variation_breaks(session, contract_ids)
    rolling = rolling_judgements(monthly, period, alpha)
    year = {(r["contract_id"], r["measure_code"]): r for r in rolling[rolling["window"] == "year"].to_dict("records")}
    rows = []
    for contract_id, mine in monthly.groupby("contract_id", sort=True):
        charts = kpi_charts(mine, breaks, period)
        signals = contract_signals(mine, period)
        contract = contracts[contract_id]
        for r in mine[mine["period"] == period].sort_values("measure_code").to_dict("records"):
            code = r["measure_code"]
            chart = charts.get(code)
            y = year.get((contract_id, code))
            row = {
                "contract_id": contract_id, "contract": contract.name, "provider_id": contract.provider_id,
                "provider": providers.get(contract.provider_id, contract.provider_id), "area_code": contract.area_code,
                "area": areas.get(contract.area_code, contract.area_code), "code": code,
                "kpi": MEASURES_BY_CODE[code].name, "direction": MEASURES_BY_CODE[code].direction,
                "unit": MEASURES_BY_CODE[code].unit, "value": r["value"], "target": r["target"], "rag": r["rag"], "verdict": r["verdict"],
                "variation_icon": chart.variation_icon if chart else None,
                "assurance_icon": chart.assurance_icon if chart else None,
                "year_value": y["value"] if y else None, "year_verdict": y["verdict"] if y else "no data",
                "year_rag": y["rag"] if y else "No data",
                "scorecard": f"scorecards/{period}/{contract_id}.html",
            }
            row["variation"], row["assurance"] = icon_words(row["variation_icon"], row["assurance_icon"])
            measure = {"rag": r["rag"], "verdict": r["verdict"], "variation_icon": row["variation_icon"],
                       "rolling": {"year": {"verdict": row["year_verdict"]}}}
            row["action"] = _action(measure, signals.get(code))
            rows.append(row)
    return rows


def _variant(rows: list[dict], how: str | None) -> list[dict]:
    if how is None:
        return rows
    if how == "filter:action":
        return [r for r in rows if r["action"] != "none"]
    if how == "filter:concern":
        return [r for r in rows if (r["variation_icon"] or "").startswith("concern")]
    if how == "filter:fail":
        return [r for r in rows if r["assurance_icon"] == "fail"]
    key = {"action": lambda r: ACTION_ORDER[r["action"]], "variation": lambda r: VARIATION_ORDER[r["variation_icon"]],
           "assurance": lambda r: ASSURANCE_ORDER[r["assurance_icon"]], "rag": lambda r: RAG_ORDER.get(r["rag"], 9)}[how]
    return sorted(rows, key=lambda r: (key(r), r["contract_id"], r["code"]))


def xlsx_frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["area_code", "area", "provider", "contract_id", "contract", "code", "kpi", "value", "target", "rag",
               "verdict", "variation", "assurance", "year_value", "year_verdict", "action"]
    return pd.DataFrame(rows, columns=columns).rename(columns={
        "verdict": "verdict (descriptive)", "variation": "variation (MDC)", "assurance": "assurance (MDC)",
        "year_value": "rolling year", "year_verdict": "rolling year verdict (descriptive)"})


def render_matrix(session: Session, out_dir: Path, period: str, *, alpha: float, area_code: str | None = None,
                  code_version: str = "", created=None, rows: list[dict] | None = None) -> dict[str, Path]:
    """Write the area (or, without ``area_code``, the national by-provider) matrix pages and XLSX.

    Files: ``matrix/<area or national>/<period>/<variant>.html`` and ``matrix.xlsx``; returns them by name.
    """
    from reports.artifacts import data_cut_time, format_cut

    if area_code is not None:
        ids = [c.id for c in session.exec(select(Contract).where(Contract.area_code == area_code)).all()]
        scope, title = area_code, session.get(Area, area_code).name
    else:
        ids = [c.id for c in session.exec(select(Contract)).all()]
        scope, title = "national", "All areas, by provider"
    rows = matrix_rows(session, ids, period, alpha) if rows is None else rows
    if area_code is None:
        rows = sorted(rows, key=lambda r: (r["provider"], r["area_code"], r["contract_id"], r["code"]))
    folder = out_dir / "matrix" / scope / period
    cut = data_cut_time(session)
    written = {}
    template = environment().get_template("matrix.html")
    for stem, label, how in VARIANTS:
        shown = _variant(rows, how)
        html = template.render(rows=shown, all_rows=len(rows), variants=VARIANTS, current=stem, label=label,
                               title=title, national=area_code is None, period=period,
                               period_name=month_name(period), root="../../../", code_version=code_version,
                               generated_at=format_cut(cut), providers=_by_provider(shown) if area_code is None else [])
        path = folder / f"{stem}.html"
        write_bytes(path, html.encode("utf-8"))
        written[stem] = path
    xlsx = folder / "matrix.xlsx"
    write_bytes(xlsx, workbook_bytes({"matrix": xlsx_frame(rows)}, percent=("value", "target", "rolling year"), created=cut))
    written["xlsx"] = xlsx
    return written


def _by_provider(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["provider"], []).append(r)
    return list(groups.items())

