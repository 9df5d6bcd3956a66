"""Renegotiation evidence pack per contract: HTML, PDF (WeasyPrint) and an XLSX annex.

Every sentence of the summary is built from stored judgements, findings and the payment
statement; nothing is written that the data do not show. Counts are not suppressed: the pack
is for the contract manager and the provider at a renegotiation meeting, who are entitled to the
contract's own figures (the commissioners' public papers apply disclosure control).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pandas as pd
from sqlmodel import Session, select

from contracts.benchmark import funnel
from contracts.catalogue import MEASURES_BY_CODE
from contracts.credits import statement, statements
from contracts.judge import judgement_rows, kpi_charts, variation_breaks
from contracts.models import (
    Area,
    Contract,
    ContractVariation,
    Finding,
    Judgement,
    KpiValue,
    Provider,
    Submission,
)
from reports.artifacts import data_cut_time, format_cut, record_artifact, write_text
from reports.charts import funnel_panels, its_chart, kpi_small_multiples
from reports.env import environment, month_name
from reports.pdf import pdf_bytes
from reports.scorecard import METHOD_NAMES, spc_icons
from reports.survival_chart import km_chart
from reports.views import EvidencePackView
from reports.xlsx import workbook_bytes

RED_MONTHS_FOR_AN_ASK = 6


def _months_back(period: str, count: int) -> list[str]:
    end = pd.Period(period, "M")
    return [str(end - i) for i in range(count - 1, -1, -1)]


def gather(session: Session, contract_id: str, as_of: str, alpha: float) -> dict:
    """Everything the pack says, as plain data (also written to the XLSX annex)."""
    from contracts.declared import ensure_declared_measures

    ensure_declared_measures(session)  # local services' KPIs by name
    contract = session.get(Contract, contract_id)
    provider = session.get(Provider, contract.provider_id)
    area = session.get(Area, contract.area_code)
    last12 = _months_back(as_of, 12)
    judged = judgement_rows(session, Judgement.contract_id == contract_id, Judgement.period <= as_of)
    history = judged.sort_values(["measure_code", "period"]) if not judged.empty else judged
    kpis, asks = [], []
    charts = kpi_charts(history, variation_breaks(session, [contract_id]), as_of) if not history.empty else {}
    for code, series in (history.groupby("measure_code", sort=True) if not history.empty else []):
        measure = MEASURES_BY_CODE[code]
        recent = series[series["period"].isin(last12)]
        red, not_met = int((recent["rag"] == "Red").sum()), int((recent["verdict"] == "not met").sum())
        latest = series.iloc[-1]
        kpis.append({"code": code, "name": measure.name, "unit": measure.unit, "months": len(recent), "red": red,
                     "not_met": not_met,
                     "latest_period": latest["period"], "latest_value": latest["value"], "target": latest["target"],
                     "latest_rag": latest["rag"], "latest_verdict": latest["verdict"],
                     # a median over months cannot be pooled from monthly medians
                     "pooled_value": recent["numerator"].sum() / recent["denominator"].sum()
                     if recent["denominator"].sum() and latest.get("kind", "proportion") != "median" else None,
                     **spc_icons(charts.get(code))})
        if red >= RED_MONTHS_FOR_AN_ASK:
            asks.append(f"{measure.name} missed its target outside tolerance (Red) in {red} of the last {len(recent)} months; "
                        f"in {not_met} of them the month alone was below target beyond its own sampling noise (not met at alpha "
                        f"{alpha:g}; a descriptive count, each month its own test, not a controlled judgement).")
    credit_lines, credit_total = [], 0.0
    # Only the months the contract ran: no credit line (of nil) for a month before it started or after it ended.
    running = [m for m in last12 if contract.start_date.strftime("%Y-%m") <= m <= contract.end_date.strftime("%Y-%m")]
    money_by_month = statements(session, contract_id, running, pbr=False)
    for month in running:
        money = money_by_month[month].to_dict()
        due = money["service_credits"]["total"]
        credit_total += due
        credit_lines.append({"month": month, "due": due, "working": money["service_credits"]["cap"].get("working", "")})
    pbr = statement(session, contract_id, as_of).to_dict()["pbr"]
    if credit_total > 0:
        asks.append(f"Service credits of £{credit_total:,.2f} are due for the last 12 months (after the quarterly cap).")
    findings = session.exec(select(Finding).where(Finding.contract_id == contract_id).order_by(Finding.method)).all()
    findings = list(findings) + rollout_findings_for(session, contract_id=contract_id)
    evidence = []
    for finding in findings:
        parameters = json.loads(finding.parameters)
        item = {"method": METHOD_NAMES.get(finding.method, finding.method), "code": finding.method,
                "measure_code": finding.measure_code,
                "measure": MEASURES_BY_CODE[finding.measure_code].name if finding.measure_code in MEASURES_BY_CODE else finding.measure_code,
                "estimate": finding.estimate, "ci_low": finding.ci_low, "ci_high": finding.ci_high,
                "p_value": finding.p_value, "verdict": finding.verdict.replace("_", " "), "parameters": parameters,
                "cohort": finding.cohort, "checks": parameters.get("checks") or [],
                "sensitivity": parameters.get("sensitivity") or ""}
        evidence.append(item)
        if finding.method.startswith("its") and (finding.ci_low > 0 or finding.ci_high < 0):
            asks.append(f"After the {parameters.get('variation', 'variation')} of {parameters.get('intervention')}, "
                        f"{item['measure']} changed by {parameters.get('sentence')}: the change is real, not noise.")
        if finding.method.startswith("psm"):
            asks.append(f"Reoffending against a matched comparison group: {parameters.get('headline', '')} "
                        f"{parameters.get('verdict_sentence', '')[:1].upper()}{parameters.get('verdict_sentence', '')[1:]}.")
    variations = session.exec(select(ContractVariation).where(ContractVariation.contract_id == contract_id)).all()
    submissions = session.exec(select(Submission).where(Submission.provider_id == provider.id,
                                                        Submission.period.in_(last12))
                               .order_by(Submission.period, Submission.return_type, Submission.version)).all()
    quality = {"received": len(submissions), "late": sum(bool(s.is_late) for s in submissions),
               "rejected": sum(s.status == "rejected" for s in submissions),
               "resubmitted": len({(s.return_type, s.period) for s in submissions if s.version > 1})}
    return {"contract": contract, "provider": provider, "area": area, "as_of": as_of, "alpha": alpha,
            "asks": asks, "kpis": kpis, "history": history, "credit_lines": credit_lines, "credit_total": credit_total,
            "pbr": pbr, "evidence": evidence, "variations": variations, "submissions": submissions, "quality": quality,
            "spc_charts": charts}


def rollout_findings_for(session: Session, *, contract_id: str | None = None,
                         area_code: str | None = None) -> list[Finding]:
    """The staggered roll-out findings (one per roll-out, no contract of their own) that a contract or an area
    is part of as an adopter (``parameters["areas"]``)."""
    found = []
    for finding in session.exec(select(Finding).where(Finding.method == "staggered_did")
                                .order_by(Finding.cohort, Finding.measure_code)).all():
        adopters = json.loads(finding.parameters).get("areas") or []
        if any(a.get("contract_id") == contract_id or a.get("area_code") == area_code for a in adopters):
            found.append(finding)
    return found


def benchmark(session: Session, contract: Contract, as_of: str, funnels: dict | None = None) -> pd.DataFrame:
    """Last 12 months' pooled rate of each of the contract's KPIs for every contract measuring it (funnel plot
    data from ``contracts.benchmark.funnel``), with this contract marked.

    ``funnels``: a dict shared by the packs of one rendering run, so that each measure's funnel (the same for
    every contract) is worked out once per process rather than once per pack.
    """
    codes = sorted(set(session.exec(select(KpiValue.measure_code).where(KpiValue.contract_id == contract.id)).all()))
    # A funnel plot compares proportions; a declared service's median days or volumes have no national rate.
    codes = [c for c in codes if c in MEASURES_BY_CODE and str(MEASURES_BY_CODE[c].unit).startswith("percent")]
    funnels = {} if funnels is None else funnels
    for code in codes:
        if (code, as_of) not in funnels:
            funnels[(code, as_of)] = funnel(session, code, as_of, months=12).assign(measure_code=code)
    frames = [funnels[(code, as_of)].copy() for code in codes]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    pooled = pd.concat(frames, ignore_index=True)
    pooled["this_contract"] = pooled["contract_id"] == contract.id
    pooled["outside_99_8"] = pooled["position"].str.contains("99.8%")
    return pooled


def _finding_label(e: dict) -> str:
    return f"{e['code']} / {e['measure_code']}" + (f" / {e['cohort']}" if e.get("cohort") else "")


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    """Nested parameters as dotted keys; long lists of records (series, gaps, balance) as JSON text."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out.append((prefix, json.dumps(value, default=str)[:30000]))
    elif isinstance(value, list):
        out.append((prefix, json.dumps(value, default=str)))
    elif isinstance(value, float) and math.isinf(value):
        out.append((prefix, "unbounded" if value > 0 else "-unbounded"))
    else:
        out.append((prefix, "" if value is None else value if isinstance(value, (int, float, bool)) else str(value)))


def _parameter_rows(evidence: list[dict]) -> pd.DataFrame:
    """Every finding's stored parameters, one row per (finding, dotted key): what the pack says the annex holds."""
    rows = []
    for e in evidence:
        flat: list[tuple[str, str]] = []
        _flatten("", {k: v for k, v in e["parameters"].items() if k != "caveats"}, flat)
        rows += [{"finding": _finding_label(e), "parameter": key, "value": value} for key, value in flat]
    return pd.DataFrame(rows, columns=["finding", "parameter", "value"])


def _caveat_rows(evidence: list[dict]) -> pd.DataFrame:
    rows = [{"finding": _finding_label(e), "caveat": caveat} for e in evidence
            for caveat in (e["parameters"].get("caveats") or e["parameters"].get("warnings") or [])]
    return pd.DataFrame(rows or [{"finding": "", "caveat": "no finding carries a caveat"}], columns=["finding", "caveat"])


def _annex(data: dict, funnel: pd.DataFrame, created: datetime | None) -> bytes:
    sheets = {
        "summary": pd.DataFrame({"ask": data["asks"] or ["no ask: the evidence does not support one"]}),
        "kpis": pd.DataFrame(data["kpis"]),
        "history": data["history"],
        "service_credits": pd.DataFrame(data["credit_lines"]),
        "payment_by_results": pd.DataFrame(data["pbr"]["lines"]),
        "findings": pd.DataFrame([{k: ("unbounded" if v > 0 else "-unbounded") if isinstance(v, float) and math.isinf(v)
                                   else v for k, v in e.items() if k not in ("parameters", "checks")} for e in data["evidence"]]),
        "finding_parameters": _parameter_rows(data["evidence"]),
        "caveats": _caveat_rows(data["evidence"]),
        "benchmark": funnel,
        "returns": pd.DataFrame([{"file": s.file_name, "period": s.period, "version": s.version, "status": s.status,
                                  "late": s.is_late, "received_at": s.received_at, "sha256": s.sha256,
                                  "mapping_sha256": s.mapping_sha256}
                                 for s in data["submissions"]]),
    }
    return workbook_bytes(sheets, created=created)


def build_evidence_pack_view(session: Session, contract_id: str, as_of: str, alpha: float,
                             funnels: dict | None = None) -> EvidencePackView:
    """Everything the pack says, built once: the HTML, the PDF, the XLSX annex and ``pack.json`` render this view
    (``funnels``: see ``benchmark``)."""
    data = gather(session, contract_id, as_of, alpha)
    funnel = benchmark(session, data["contract"], as_of, funnels)
    for row in (funnel[funnel["this_contract"] & (funnel["assessment"] == "worse than expected")].itertuples()
                if not funnel.empty else []):
        data["asks"].append(
            f"{MEASURES_BY_CODE[row.measure_code].name}: {100 * row.rate:.1f}% over the 12 months to {as_of} against "
            f"{100 * row.national:.1f}% across all areas, {row.position}: worse than other areas beyond chance.")
    data["funnel"] = funnel
    return EvidencePackView(contract_id, as_of, MappingProxyType(data))


def render_pack(session: Session, out_dir: Path, contract_id: str, as_of: str, *, alpha: float,
                code_version: str, funnels: dict | None = None) -> dict[str, Path]:
    """Write ``pack.html``, ``pack.pdf`` and ``annex.xlsx`` under ``out/packs/<contract>/<as_of>/``
    (``funnels``: see ``benchmark``)."""
    view = build_evidence_pack_view(session, contract_id, as_of, alpha, funnels)
    data = dict(view.data)
    funnel = data.pop("funnel")
    history = data["history"]
    series = {code: frame.tail(36) for code, frame in history.groupby("measure_code")} if not history.empty else {}
    titles = {code: MEASURES_BY_CODE[code].name for code in series}
    its_items = [e for e in data["evidence"] if e["code"].startswith("its") and e["parameters"].get("series")]
    charts = {
        "history": kpi_small_multiples(series, titles, alpha, spc=data["spc_charts"],
                                       units={code: MEASURES_BY_CODE[code].unit for code in series}) if series else "",
        "its": [(e, its_chart(pd.DataFrame(e["parameters"]["series"]), f"{e['measure']}: change after "
                                                                      f"{e['parameters'].get('intervention')}")) for e in its_items],
        "funnel": funnel_panels(funnel, titles) if not funnel.empty else "",
        "survival": [(e, km_chart(pd.DataFrame(e["parameters"]["result"]["km"]), "Time to first proven reoffence"))
                     for e in data["evidence"] if e["code"] == "km_cox_matched" and e["parameters"].get("result")],
    }
    folder = out_dir / "packs" / contract_id / as_of
    folder.mkdir(parents=True, exist_ok=True)
    cut = data_cut_time(session)
    html = environment().get_template("evidence_pack.html").render(
        **data, charts=charts, funnel=funnel.to_dict("records") if not funnel.empty else [],
        measure_names={code: m.name for code, m in MEASURES_BY_CODE.items()},
        code_version=code_version, generated_at=format_cut(cut),
        as_of_name=month_name(as_of), red_threshold=RED_MONTHS_FOR_AN_ASK,
    )
    paths = {"html": folder / "pack.html", "pdf": folder / "pack.pdf", "xlsx": folder / "annex.xlsx"}
    # The view the pack was rendered from, beside it (as the scorecard's JSON is).
    write_text(folder / "pack.json", json.dumps(view.to_dict(), indent=2, sort_keys=True))
    records = [(paths["html"], write_text(paths["html"], html))]
    pdf = pdf_bytes(html, folder, created=cut)
    paths["pdf"].write_bytes(pdf)
    records.append((paths["pdf"], hashlib.sha256(pdf).hexdigest()))
    annex = _annex(data, funnel, cut)
    paths["xlsx"].write_bytes(annex)
    records.append((paths["xlsx"], hashlib.sha256(annex).hexdigest()))
    # Recorded last, so that a database write lock is never held while a PDF renders (parallel renderers).
    for path, digest in records:
        record_artifact(session, kind="evidence_pack", audience="contract_manager", period=as_of, path=path,
                        sha=digest, contract_id=contract_id, area_code=data["area"].code)
    return paths
