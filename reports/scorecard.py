"""Provider scorecards (one per contract per month) and the index page linking them."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import Area, Artifact, Contract, Finding, Judgement, Provider, Submission
from reports.charts import kpi_small_multiples
from reports.env import environment, month_name

log = logging.getLogger(__name__)


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return hashlib.sha256(data).hexdigest()


def _record_artifact(session: Session, *, kind: str, audience: str, period: str, path: Path, sha: str,
                     contract_id: str | None = None, area_code: str | None = None) -> None:
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
                     code_version: str, history: pd.DataFrame | None = None) -> Path:
    """Write one contract's scorecard for ``period`` and record it as an artifact."""
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
        series[code] = frame.tail(36)
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
                         "ci_high": None, "numerator": None, "denominator": None,
                         "red_last_12": int((last12["rag"] == "Red").sum()), "source": "derived", "as_of": period,
                         "spc": ""})
            continue
        row = current.iloc[0]
        rows.append({"code": code, "name": measure.name, "value": row["value"], "target": row["target"],
                     "direction": measure.direction, "rag": row["rag"], "verdict": row["verdict"],
                     "ci_low": row["ci_low"], "ci_high": row["ci_high"], "numerator": row["numerator"],
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
    chart = kpi_small_multiples(series, titles) if series else "<p>No KPI values yet.</p>"
    html = environment().get_template("scorecard.html").render(
        contract=contract, provider=provider, area=area, period=period, rows=rows, headline=headline,
        chart=chart, history=history.sort_values(["period", "measure_code"]).to_dict("records") if not history.empty else [],
        submissions=submissions, used=used, alpha=alpha, code_version=code_version, evidence=evidence,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = scorecard_path(out_dir, contract_id, period)
    sha = _write(path, html)
    _record_artifact(session, kind="scorecard", audience="contract_manager", period=period, path=path, sha=sha,
                     contract_id=contract_id, area_code=area.code)
    return path


METHOD_NAMES = {
    "its_binomial_segmented": "Interrupted time series (change after a contract variation)",
    "psm_nn_1to5_replacement": "Comparison group (matched unserved people, Justice Data Lab style)",
    "synthetic_control": "Synthetic control (against a weighted mix of other areas)",
}


def _finding_row(finding: Finding) -> dict:
    import json

    parameters = json.loads(finding.parameters)
    measure = MEASURES_BY_CODE.get(finding.measure_code)
    sentence = parameters.get("verdict_sentence") or parameters.get("sentence") or ""
    if finding.method.startswith("psm"):
        verdict_sentence = parameters.get("verdict_sentence", "")
        sentence = parameters.get("headline", "").rstrip(".") + (
            f". {verdict_sentence[:1].upper()}{verdict_sentence[1:]}." if verdict_sentence else "")
    return {"method": METHOD_NAMES.get(finding.method, finding.method), "measure": measure.name if measure else finding.measure_code,
            "scope": finding.cohort or parameters.get("intervention", ""), "estimate": finding.estimate,
            "ci_low": finding.ci_low, "ci_high": finding.ci_high, "p_value": finding.p_value,
            "verdict": finding.verdict.replace("_", " "),
            "sentence": sentence}


def _months_before(period: str, months: int) -> str:
    stamp = pd.Timestamp(f"{period}-01") - pd.DateOffset(months=months)
    return stamp.strftime("%Y-%m")


def _document_links(session: Session, out_dir: Path, period: str) -> dict:
    """Relative links from ``out/index.html`` to each area's monthly report and each contract's latest pack."""
    reports: dict[str, list[tuple[str, str]]] = {}
    packs: dict[str, list[tuple[str, str]]] = {}
    artifacts = session.exec(select(Artifact).where(Artifact.kind.in_(["monthly_report", "evidence_pack"]),
                                                    Artifact.period <= period).order_by(Artifact.period)).all()
    latest_pack: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.kind == "evidence_pack":
            latest_pack[artifact.contract_id] = artifact.period
    for artifact in artifacts:
        path = Path(artifact.path)
        if not path.is_relative_to(out_dir) or not path.exists():
            continue
        link = (path.suffix[1:].upper(), str(path.relative_to(out_dir)))
        if artifact.kind == "monthly_report" and artifact.period == period:
            reports.setdefault(artifact.area_code, []).append(link)
        elif artifact.kind == "evidence_pack" and artifact.period == latest_pack.get(artifact.contract_id):
            packs.setdefault(artifact.contract_id, []).append(link)
    return {"reports": reports, "packs": packs}


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
                 "provider_name": providers[contract.provider_id],
                 "href": str(scorecard_path(Path("."), contract.id, period))}
        for word in totals:
            entry[word] = int((mine["rag"] == word).sum()) if not mine.empty else 0
            totals[word] += entry[word]
        listed.append(entry)
    documents = _document_links(session, out_dir, period)
    for entry in listed:
        entry["pack"] = documents["packs"].get(entry["id"], [])
    subs = session.exec(select(Submission).where(Submission.period <= period)).all()
    summary = {"accepted": sum(s.status == "accepted" for s in subs), "rejected": sum(s.status == "rejected" for s in subs),
               "late": sum(bool(s.is_late) for s in subs)}
    html = environment().get_template("index.html").render(
        areas=[a for a in areas if any(c["area_code"] == a.code for c in listed)], contracts=listed, totals=totals,
        period=period, submissions=summary, code_version=code_version, reports=documents["reports"],
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = out_dir / "index.html"
    sha = _write(path, html)
    _record_artifact(session, kind="index", audience="all", period=period, path=path, sha=sha)
    return path
