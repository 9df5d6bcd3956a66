"""Monthly commissioner report per area: HTML, PDF and an XLSX annex.

For the police and crime commissioner's office: a headline dashboard of every contract in the area,
what changed since last month, exceptions needing a decision, outcome effects with intervals,
breakdowns by sex, young adults, age band, ethnic group and care leaver (with disclosure control: this
report may be published), and the value view (reoffences avoided x an assumed unit cost, with intervals). Every sentence is built from stored judgements and findings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from contracts.benchmark import breakdowns
from contracts.catalogue import MEASURES_BY_CODE
from contracts.credits import statement
from contracts.judge import judgement_rows
from contracts.models import Area, Contract, Finding, Judgement, Provider
from contracts.status import return_status
from contracts.value import FREQUENCY_MEASURE, value_view
from outcomes.proportions import wilson_interval
from reports.artifacts import data_cut_time, format_cut, record_artifact, write_text
from reports.env import environment, month_name, pct
from reports.pdf import pdf_bytes
from reports.scorecard import METHOD_NAMES
from reports.suppression import SUPPRESSED, suppress_breakdown
from reports.xlsx import workbook_bytes

WORDS = ("Green", "Amber", "Red")


BREAKDOWN_TITLES = {"sex": "Sex", "young_adult": "Young adults (18-24) and older", "age_band": "Age band",
                    "ethnicity_group": "Ethnic group", "care_leaver": "Care leaver"}


def _breakdowns(session: Session, contract_ids: list[str], period: str, alpha: float, threshold: int = 5) -> list[dict]:
    """Orders completed successfully by sex, young adults, age band, ethnic group and care leaver, over the 12
    months to ``period`` (counts from ``contracts.benchmark``), suppressed for publication.

    Each table ends with its total; below it, in words, the groups whose completion rate differs from
    everyone else's beyond chance (the interval of the ratio excludes 1), for groups that are not suppressed.
    """
    table = breakdowns(session, "crc_orders_completed", period, alpha=alpha, months=12, contract_ids=contract_ids)
    tables = []
    if table.empty:
        return tables
    for dimension, title in BREAKDOWN_TITLES.items():
        groups = table[table["dimension"] == dimension].reset_index(drop=True)
        grouped = pd.DataFrame({dimension: groups["group"], "completed": groups["numerator"].astype(int),
                                "ended": groups["denominator"].astype(int), "rate": groups["rate"],
                                "ci_low": groups["ci_low"], "ci_high": groups["ci_high"]})
        overall = grouped["completed"].sum() / grouped["ended"].sum()
        grouped["ratio_to_overall"] = (grouped["rate"] / overall).round(2)
        shown = suppress_breakdown(grouped, "completed", "ended", threshold)
        # The total row publishes the margins explicitly (the whole area is not a small count).
        completed, ended = int(grouped["completed"].sum()), int(grouped["ended"].sum())
        low, high = wilson_interval(pd.Series([completed]), pd.Series([ended]), alpha)
        total = {dimension: "Total", "completed": completed, "ended": ended, "rate": overall, "ci_low": float(low[0]),
                 "ci_high": float(high[0]), "ratio_to_overall": 1.0}
        notes = [f"{groups.at[i, 'group']}: {groups.at[i, 'reading']}" for i in shown.index
                 if shown.at[i, "completed"] != SUPPRESSED and "excludes 1" in groups.at[i, "reading"]]
        tables.append({"title": title, "column": dimension, "rows": shown.to_dict("records"), "total": total,
                       "overall": overall, "notes": notes})
    return tables


def gather(session: Session, area_code: str, period: str, alpha: float, threshold: int = 5,
           unit_cost_gbp: float = 5000.0) -> dict:
    from contracts.declared import ensure_declared_measures

    ensure_declared_measures(session)  # local services' KPIs by name
    area = session.get(Area, area_code)
    contracts = session.exec(select(Contract).where(Contract.area_code == area_code).order_by(Contract.id)).all()
    ids = [c.id for c in contracts]
    providers = {p.id: p.name for p in session.exec(select(Provider)).all()}
    previous = str(pd.Period(period, "M") - 1)
    judged = judgement_rows(session, Judgement.contract_id.in_(ids), Judgement.period.in_([period, previous]))
    dashboard, changes, exceptions, kpis = [], [], [], []
    totals = dict.fromkeys(WORDS, 0)
    for contract in contracts:
        mine = judged[judged["contract_id"] == contract.id] if not judged.empty else judged
        now = mine[mine["period"] == period] if not mine.empty else mine
        before = mine[mine["period"] == previous].set_index("measure_code") if not mine.empty else mine
        counts = {word: int((now["rag"] == word).sum()) if not now.empty else 0 for word in WORDS}
        for word in WORDS:
            totals[word] += counts[word]
        money = statement(session, contract.id, period).to_dict()
        dashboard.append({"id": contract.id, "name": contract.name, "provider": providers[contract.provider_id],
                          **counts, "kpis": len(now), "credits": money["service_credits"]["total"],
                          "value": contract.annual_value_gbp})
        for row in (now.sort_values("measure_code").itertuples() if not now.empty else []):
            name, unit = MEASURES_BY_CODE[row.measure_code].name, MEASURES_BY_CODE[row.measure_code].unit
            kpis.append({"contract_id": contract.id, "measure_code": row.measure_code, "kpi": name, "unit": unit,
                         "value": row.value, "target": row.target, "tolerance": row.tolerance, "rag": row.rag,
                         "verdict": row.verdict})
            if row.measure_code in before.index and before.loc[row.measure_code, "rag"] != row.rag:
                changes.append(f"{contract.id}: {name} went from {before.loc[row.measure_code, 'rag']} to {row.rag}.")
            if row.rag == "Red" and row.verdict == "not met":
                exceptions.append(f"{contract.id} ({providers[contract.provider_id]}): {name} is {pct(row.value, 1, unit)} "
                                  f"against a target of {pct(row.target, 0, unit)}, below target beyond the month's own "
                                  "sampling noise (a descriptive figure).")
    status = [r for r in return_status(session, period) if r["provider_id"] in {c.provider_id for c in contracts}]
    for row in status:
        if row["late"] or row["status"] in ("missing", "quarantined"):
            exceptions.append(f"The {row['return_type']} return from {row['provider_name']} for {period} is "
                              f"{row['status']}{' and late' if row['late'] else ''}.")
    findings = []
    from reports.evidence import rollout_findings_for

    stored = list(session.exec(select(Finding).where(Finding.contract_id.in_(ids)).order_by(Finding.contract_id)).all())
    for finding in stored + rollout_findings_for(session, area_code=area_code):
        parameters = json.loads(finding.parameters)
        shown_contract = finding.contract_id
        if shown_contract is None:  # a roll-out across areas: shown against this area's contract in it
            mine = [a for a in parameters.get("areas", []) if a.get("area_code") == area_code]
            shown_contract = mine[0]["contract_id"] if mine else area_code
        frequency = finding.measure_code == FREQUENCY_MEASURE
        timing = finding.measure_code == "reo_time_to_first"
        findings.append({"contract_id": shown_contract, "method": METHOD_NAMES.get(finding.method, finding.method),
                         "measure": (MEASURES_BY_CODE[finding.measure_code].name if finding.measure_code in MEASURES_BY_CODE
                                     else "Proven reoffences per person in 12 months" if frequency
                                     else "Months free of proven reoffending in the first 12" if timing else ""),
                         "unit": "reoffences per person" if frequency else "months" if timing else "points",
                         "estimate": finding.estimate, "ci_low": finding.ci_low, "ci_high": finding.ci_high,
                         "verdict": finding.verdict.replace("_", " "),
                         "sentence": parameters.get("verdict_sentence") or parameters.get("sentence")
                         or parameters.get("headline") or ""})
    crc_ids = [c.id for c in contracts if c.service_type == "crc"]
    return {"area": area, "period": period, "alpha": alpha, "dashboard": dashboard, "totals": totals,
            "changes": changes, "exceptions": exceptions, "kpis": kpis, "findings": findings,
            "breakdowns": _breakdowns(session, crc_ids, period, alpha, threshold) if crc_ids else [],
            "threshold": threshold, "value_view": value_view(session, unit_cost_gbp=unit_cost_gbp, area_code=area_code),
            "value_total": sum(d["value"] for d in dashboard), "credits_total": sum(d["credits"] for d in dashboard)}


def render_monthly_report(session: Session, out_dir: Path, area_code: str, period: str, *, alpha: float,
                          code_version: str, threshold: int = 5, unit_cost_gbp: float = 5000.0) -> dict[str, Path]:
    data = gather(session, area_code, period, alpha, threshold, unit_cost_gbp)
    from types import MappingProxyType

    from reports.matrix import matrix_rows, xlsx_frame
    from reports.views import MonthlyReportView

    ids = [d["id"] for d in data["dashboard"]]
    views = {}  # the scorecard views already written for this month: their rows, not a second computation
    for contract_id in ids:
        path = out_dir / "scorecards" / period / f"{contract_id}.json"
        try:
            views[contract_id] = json.loads(path.read_text()) if path.exists() else None
        except (OSError, ValueError):
            views[contract_id] = None
    rows = matrix_rows(session, ids, period, alpha, views={k: v for k, v in views.items() if v is not None})
    notices = [f"{r['contract_id']} ({r['provider']}): {r['kpi']}: the shortfall rule signalled this month; a "
               "performance notice is due (the rule draws one for a provider on target in at most 5% of contract-years)."
               for r in rows if r["action"] == "performance notice"]
    data["exceptions"] = notices + list(data["exceptions"])
    view = MonthlyReportView(area_code, period, MappingProxyType(data), tuple(rows))
    data, matrix = dict(view.data), list(view.matrix)  # the document renders the view, and only the view
    folder = out_dir / "reports" / area_code / period
    folder.mkdir(parents=True, exist_ok=True)
    cut = data_cut_time(session)
    html = environment().get_template("monthly_report.html").render(
        **data, period_name=month_name(period), code_version=code_version,
        generated_at=format_cut(cut), matrix=matrix, matrix_link=f"../../../matrix/{area_code}/{period}/index.html")
    paths = {"html": folder / "monthly.html", "pdf": folder / "monthly.pdf", "xlsx": folder / "monthly.xlsx"}
    records = []
    sha = write_text(paths["html"], html)
    records.append((paths["html"], sha))
    pdf = pdf_bytes(html, folder, created=cut)
    paths["pdf"].write_bytes(pdf)
    records.append((paths["pdf"], hashlib.sha256(pdf).hexdigest()))
    sheets = {"dashboard": pd.DataFrame(data["dashboard"]).rename(columns={"value": "annual_value_gbp"}),
              "exceptions": pd.DataFrame({"exception": data["exceptions"] or ["none"]}),
              "kpis": pd.DataFrame(data["kpis"], columns=["contract_id", "measure_code", "kpi", "unit", "value", "target",
                                                          "tolerance", "rag", "verdict"]),
              "changes": pd.DataFrame({"change": data["changes"] or ["none"]}),
              "outcomes": pd.DataFrame(data["findings"] or [{"note": "no finding"}]),
              "matrix": xlsx_frame(matrix)}
    for table in data["breakdowns"]:
        sheets[f"by_{table['column']}"] = pd.DataFrame([*table["rows"], table["total"]])
    workbook = workbook_bytes(sheets, created=cut)
    paths["xlsx"].write_bytes(workbook)
    records.append((paths["xlsx"], hashlib.sha256(workbook).hexdigest()))
    for path, digest in records:
        record_artifact(session, kind="monthly_report", audience="commissioner", period=period, path=path,
                        sha=digest, area_code=area_code)
    return paths
