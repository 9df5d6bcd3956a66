"""Provider scorecards (one per contract per month) and the index page linking them."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, func
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import Area, Artifact, Contract, Finding, Judgement, Provider, Submission
from reports.charts import kpi_small_multiples
from reports.env import environment, month_name
from reports.pdf import pdf_bytes
from reports.xlsx import workbook_bytes

log = logging.getLogger(__name__)
CHART_MONTHS = 12  # months on the trend chart and in each KPI's drill-down table (the XLSX holds all)


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return hashlib.sha256(data).hexdigest()


def data_cut_time(session: Session) -> datetime | None:
    """When the data a document shows were cut: the receipt time of the latest accepted return (None before any).
    Derived from the data, not the clock, so rendering the same data again writes the same bytes."""
    return session.exec(select(func.max(Submission.received_at)).where(Submission.status == "accepted")).one()


def format_cut(cut: datetime | None) -> str:
    return cut.strftime("%Y-%m-%d %H:%M UTC") if cut is not None else "no returns accepted yet"


def _record_artifact(session: Session, *, kind: str, audience: str, period: str, path: Path, sha: str,
                     contract_id: str | None = None, area_code: str | None = None) -> None:
    existing = session.exec(select(Artifact).where(Artifact.path == str(path))).all()
    same = (kind, audience, period, contract_id, area_code, sha)
    if len(existing) == 1 and (existing[0].kind, existing[0].audience, existing[0].period, existing[0].contract_id,
                               existing[0].area_code, existing[0].sha256) == same:
        return  # the same document written again: keep its record and first creation time (reruns change nothing)
    session.execute(delete(Artifact).where(Artifact.path == str(path)))
    session.add(Artifact(kind=kind, audience=audience, period=period, contract_id=contract_id, area_code=area_code,
                         path=str(path), sha256=sha, created_at=datetime.now(UTC)))


def judgements_frame(session: Session, contract_ids: list[str] | None = None) -> pd.DataFrame:
    query = select(Judgement)
    if contract_ids is not None:
        query = query.where(Judgement.contract_id.in_(contract_ids))
    rows = [j.model_dump() for j in session.exec(query).all()]
    return pd.DataFrame(rows)


def scorecard_path(out_dir: Path, contract_id: str, period: str) -> Path:
    return out_dir / "scorecards" / period / f"{contract_id}.html"


def render_scorecard(session: Session, out_dir: Path, contract_id: str, period: str, *, alpha: float,
                     code_version: str, history: pd.DataFrame | None = None,
                     formats: tuple[str, ...] = ("html", "pdf", "xlsx")) -> Path:
    """Write one contract's scorecard for ``period`` (HTML, and unless ``formats`` is ``("html",)`` its PDF and
    XLSX beside it) and record each file as an artifact; returns the HTML path.

    The HTML and PDF carry a drill-down table per KPI (the judged months behind the chart and the figures)
    and the submissions used; the XLSX holds the whole judged history.
    """
    from contracts.declared import ensure_declared_measures

    ensure_declared_measures(session)  # local services' KPIs: names, directions and units
    contract = session.get(Contract, contract_id)
    provider = session.get(Provider, contract.provider_id)
    area = session.get(Area, contract.area_code)
    if history is None:
        history = judgements_frame(session, [contract_id])
    history = history[history["period"] <= period].sort_values(["measure_code", "period"]) if not history.empty else history
    rows, series, titles = [], {}, {}
    for code, frame in (history.groupby("measure_code", sort=False) if not history.empty else []):
        measure = MEASURES_BY_CODE[code]
        titles[code] = measure.name
        series[code] = frame.tail(CHART_MONTHS)
        current = frame[frame["period"] == period]
        last12 = frame[frame["period"] > _months_before(period, 12)]
        as_of = period
        if current.empty and measure.service_type == "reoffending":
            # Cohort outcomes arrive about 18 months after the cohort: show the latest known cohort.
            current = frame.tail(1)
            as_of = str(current["period"].iloc[0])
        if current.empty:
            rows.append({"code": code, "name": measure.name, "value": None, "target": frame["target"].iloc[-1],
                         "direction": measure.direction, "rag": "No data", "verdict": "no return", "ci_low": None,
                         "ci_high": None, "numerator": None, "denominator": None, "unit": measure.unit,
                         "red_last_12": int((last12["rag"] == "Red").sum()), "source": "derived", "as_of": period,
                         "spc": ""})
            continue
        row = current.iloc[0]
        rows.append({"code": code, "name": measure.name, "value": row["value"], "target": row["target"],
                     "direction": measure.direction, "rag": row["rag"], "verdict": row["verdict"],
                     "ci_low": row["ci_low"], "ci_high": row["ci_high"], "numerator": row["numerator"], "unit": measure.unit,
                     "denominator": row["denominator"], "red_last_12": int((last12["rag"] == "Red").sum()),
                     "source": row.get("source", "derived"), "as_of": as_of,
                     "spc": row.get("spc_signals") or row.get("spc_variation") or ""})
    counts = {word: sum(1 for r in rows if r["rag"] == word) for word in ("Green", "Amber", "Red")}
    headline = (f"In {month_name(period)}, {len(rows)} KPIs: {counts['Green']} Green, {counts['Amber']} Amber, "
                f"{counts['Red']} Red.")
    not_met = [r["name"] for r in rows if r["verdict"] == "not met"]
    if not_met:
        headline += " Missed beyond sampling noise: " + "; ".join(not_met) + "."
    submissions = session.exec(
        select(Submission).where(Submission.provider_id == provider.id, Submission.period == period)
        .order_by(Submission.return_type, Submission.version)
    ).all()
    used = [s for s in submissions if s.is_current and s.status == "accepted"]
    evidence = [_finding_row(f) for f in session.exec(select(Finding).where(Finding.contract_id == contract_id)
                                                      .order_by(Finding.method)).all()]
    units = {code: MEASURES_BY_CODE[code].unit for code in series}
    chart = kpi_small_multiples(series, titles, alpha, units) if series else "<p>No KPI values yet.</p>"
    drill = [{"code": code, "name": titles[code], "unit": MEASURES_BY_CODE[code].unit,
              "months": frame.sort_values("period", ascending=False).to_dict("records")}
             for code, frame in series.items()]
    cut = data_cut_time(session)
    html = environment().get_template("scorecard.html").render(
        contract=contract, provider=provider, area=area, period=period, rows=rows, headline=headline,
        chart=chart, drill=drill, chart_months=CHART_MONTHS,
        submissions=submissions, used=used, alpha=alpha, code_version=code_version, evidence=evidence,
        generated_at=format_cut(cut),
    )
    path = scorecard_path(out_dir, contract_id, period)
    sha = _write(path, html)
    written = [(path, sha)]
    if "pdf" in formats:
        written.append(_write_bytes(path.with_suffix(".pdf"), pdf_bytes(html, path.parent, created=cut)))
    if "xlsx" in formats:
        judged_months = history.copy() if not history.empty else history
        if not judged_months.empty:
            judged_months = judged_months.drop(columns=[c for c in ("id",) if c in judged_months.columns])
        workbook = workbook_bytes({
            "contract": pd.DataFrame([{"contract_id": contract.id, "contract": contract.name, "provider": provider.name,
                                       "area_code": area.code, "area": area.name, "period": period, "alpha": alpha,
                                       "code_version": code_version}]),
            "kpis": pd.DataFrame(rows).rename(columns={"red_last_12": "red_months_in_last_12"}),
            "judged_months": judged_months,
            "submissions": pd.DataFrame([{"file": s.file_name, "return_type": s.return_type, "period": s.period,
                                          "version": s.version, "received_at": s.received_at, "late": s.is_late,
                                          "status": s.status, "current": s.is_current, "used": s in used,
                                          "rows": s.rows, "errors": s.errors, "sha256": s.sha256,
                                          "mapping_sha256": s.mapping_sha256} for s in submissions]),
            "outcome_evidence": pd.DataFrame(evidence),
        }, created=cut)
        written.append(_write_bytes(path.with_suffix(".xlsx"), workbook))
    for target, digest in written:
        _record_artifact(session, kind="scorecard", audience="contract_manager", period=period, path=target, sha=digest,
                         contract_id=contract_id, area_code=area.code)
    return path


def _write_bytes(path: Path, data: bytes) -> tuple[Path, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return path, hashlib.sha256(data).hexdigest()


METHOD_NAMES = {
    "its_binomial_segmented": "Interrupted time series (change after a contract variation)",
    "psm_nn_1to5_replacement": "Comparison group (matched unserved people, Justice Data Lab style)",
    "synthetic_control": "Synthetic control (against a weighted mix of other areas)",
    "km_cox_matched": "Time to first reoffence (matched comparison group, Justice Data Lab style)",
    "psm_custodial_reoffenders": "Custody for the first reoffence (matched reoffenders, Justice Data Lab style)",
}


def _finding_row(finding: Finding) -> dict:
    import json

    parameters = json.loads(finding.parameters)
    measure = MEASURES_BY_CODE.get(finding.measure_code)
    sentence = parameters.get("verdict_sentence") or parameters.get("sentence") or parameters.get("headline") or ""
    if finding.method.startswith("psm"):
        verdict_sentence = parameters.get("verdict_sentence", "")
        sentence = parameters.get("headline", "").rstrip(".") + (
            f". {verdict_sentence[:1].upper()}{verdict_sentence[1:]}." if verdict_sentence else "")
    return {"method": METHOD_NAMES.get(finding.method, finding.method), "measure": measure.name if measure else finding.measure_code,
            "scope": finding.cohort or parameters.get("intervention", ""), "estimate": finding.estimate,
            "ci_low": finding.ci_low, "ci_high": finding.ci_high, "p_value": finding.p_value,
            "verdict": finding.verdict.replace("_", " "),
            "unit": "months" if finding.measure_code == "reo_time_to_first" else "points",
            "sentence": sentence}


def _months_before(period: str, months: int) -> str:
    stamp = pd.Timestamp(f"{period}-01") - pd.DateOffset(months=months)
    return stamp.strftime("%Y-%m")


FORMAT_ORDER = {"html": 0, "pdf": 1, "xlsx": 2}


def _document_links(session: Session, out_dir: Path, period: str) -> dict:
    """Relative links from ``out/index.html`` to every document of ``period``: each area's monthly report, each
    contract's scorecard and its latest evidence pack (HTML, PDF, XLSX), only for files that exist."""
    found: dict = {"reports": {}, "scorecards": {}, "packs": {}, "pack_period": {}, "lcjb": {}, "lcjb_period": {}}
    artifacts = session.exec(select(Artifact).where(Artifact.kind.in_(["monthly_report", "evidence_pack", "scorecard",
                                                                       "lcjb_pack"]),
                                                    Artifact.period <= period).order_by(Artifact.period)).all()
    latest_pack = {a.contract_id: a.period for a in artifacts if a.kind == "evidence_pack"}
    latest_lcjb = {a.area_code: a.period for a in artifacts if a.kind == "lcjb_pack"}  # the latest quarter's pack
    for artifact in artifacts:
        path = Path(artifact.path)
        if not path.is_relative_to(out_dir) or not path.exists():
            continue
        link = (path.suffix[1:].upper(), path.relative_to(out_dir).as_posix())
        if artifact.kind == "monthly_report" and artifact.period == period:
            found["reports"].setdefault(artifact.area_code, []).append(link)
        elif artifact.kind == "scorecard" and artifact.period == period:
            found["scorecards"].setdefault(artifact.contract_id, []).append(link)
        elif artifact.kind == "evidence_pack" and artifact.period == latest_pack.get(artifact.contract_id):
            found["packs"].setdefault(artifact.contract_id, []).append(link)
            found["pack_period"][artifact.contract_id] = artifact.period
        elif artifact.kind == "lcjb_pack" and artifact.period == latest_lcjb.get(artifact.area_code):
            found["lcjb"].setdefault(artifact.area_code, []).append(link)
            found["lcjb_period"][artifact.area_code] = artifact.period
    for name in ("reports", "scorecards", "packs", "lcjb"):
        for key, links in found[name].items():
            found[name][key] = sorted(set(links), key=lambda item: FORMAT_ORDER.get(item[0].lower(), 9))
    return found


def _index_pages(out_dir: Path, period: str) -> list[tuple[str, str]]:
    """Other periods' index pages beside ``out/index.html`` (``index-YYYY-MM.html``), newest first."""
    pages = {p.stem.removeprefix("index-") for p in out_dir.glob("index-????-??.html")} | {period}
    return [(month, f"index-{month}.html") for month in sorted(pages, reverse=True)]


def _data_quality_links(out_dir: Path, period: str) -> list[tuple[str, str, str]]:
    """Error reports of rejected returns up to ``period``: (file, HTML link, CSV link)."""
    links = []
    for html in sorted((out_dir / "data-quality").glob("*/*.errors.html")):
        if html.parent.name <= period:
            name = html.name.removesuffix(".errors.html")
            links.append((name, html.relative_to(out_dir).as_posix(), html.with_name(f"{name}.errors.csv").relative_to(out_dir).as_posix()))
    return links


def render_index(session: Session, out_dir: Path, period: str, *, code_version: str) -> Path:
    areas = session.exec(select(Area).order_by(Area.name)).all()
    contracts = session.exec(select(Contract).order_by(Contract.id)).all()
    providers = {p.id: p.name for p in session.exec(select(Provider)).all()}
    judged = judgements_frame(session)
    current = judged[judged["period"] == period] if not judged.empty else judged
    totals = {"Green": 0, "Amber": 0, "Red": 0, "No data": 0}
    listed = []
    for contract in contracts:
        mine = current[current["contract_id"] == contract.id] if not current.empty else current
        entry = {"id": contract.id, "name": contract.name, "area_code": contract.area_code,
                 "provider_name": providers[contract.provider_id]}
        for word in totals:
            entry[word] = int((mine["rag"] == word).sum()) if not mine.empty else 0
            totals[word] += entry[word]
        listed.append(entry)
    documents = _document_links(session, out_dir, period)
    for entry in listed:
        entry["pack"] = documents["packs"].get(entry["id"], [])
        entry["pack_period"] = documents["pack_period"].get(entry["id"], "")
        entry["scorecard"] = documents["scorecards"].get(entry["id"], [])
    subs = session.exec(select(Submission).where(Submission.period <= period)).all()
    summary = {"accepted": sum(s.status == "accepted" for s in subs), "rejected": sum(s.status == "rejected" for s in subs),
               "late": sum(bool(s.is_late) for s in subs)}
    cut = data_cut_time(session)
    html = environment().get_template("index.html").render(
        areas=[a for a in areas if any(c["area_code"] == a.code for c in listed)], contracts=listed, totals=totals,
        period=period, submissions=summary, code_version=code_version, reports=documents["reports"],
        lcjb=documents["lcjb"], lcjb_period=documents["lcjb_period"], periods=_index_pages(out_dir, period), data_quality=_data_quality_links(out_dir, period),
        specs=(out_dir / "specs" / "index.html").exists(),
        generated_at=format_cut(cut),
    )
    # The site is out/ itself: index.html is the latest period rendered, index-YYYY-MM.html each period, all
    # in one folder so that every link is relative and works from the file system or any static server.
    dated = out_dir / f"index-{period}.html"
    _record_artifact(session, kind="index", audience="all", period=period, path=dated, sha=_write(dated, html))
    path = out_dir / "index.html"
    latest = max(month for month, _ in _index_pages(out_dir, period))
    if period >= latest or not path.exists():
        sha = _write(path, html)
        _record_artifact(session, kind="index", audience="all", period=period, path=path, sha=sha)
    return path
