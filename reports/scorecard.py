"""Provider scorecards (one per contract per month) and the index page linking them."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.judge import judgement_rows
from contracts.models import Area, Artifact, Contract, Finding, Judgement, Provider, Submission
from reports.artifacts import data_cut_time, format_cut, record_artifact, write_bytes, write_text
from reports.charts import kpi_small_multiples, spc_table
from reports.env import environment
from reports.icons import icon_words
from reports.pdf import pdf_bytes
from reports.xlsx import workbook_bytes

log = logging.getLogger(__name__)
CHART_MONTHS = 12  # months on the trend chart and in each KPI's drill-down table (the XLSX holds all)


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
        history = judgement_rows(session, Judgement.contract_id == contract_id)
    history = history[history["period"] <= period].sort_values(["measure_code", "period"]) if not history.empty else history
    from reports.views import build_scorecard_view

    view = build_scorecard_view(session, contract_id, period, alpha)
    charts = dict(view.charts)
    rows = [dict(m) for m in view.measures]
    series, titles = {}, {}
    for code, frame in (history.groupby("measure_code", sort=False) if not history.empty else []):
        titles[code] = MEASURES_BY_CODE[code].name
        series[code] = frame.tail(CHART_MONTHS)
    headline = view.headline
    submissions = session.exec(
        select(Submission).where(Submission.provider_id == provider.id, Submission.period == period)
        .order_by(Submission.return_type, Submission.version)
    ).all()
    used = [s for s in submissions if s.is_current and s.status == "accepted"]
    evidence = [_finding_row(f) for f in session.exec(select(Finding).where(Finding.contract_id == contract_id)
                                                      .order_by(Finding.method)).all()]
    units = {code: MEASURES_BY_CODE[code].unit for code in series}
    chart = kpi_small_multiples(series, titles, alpha, spc=charts, units=units) if series else "<p>No KPI values yet.</p>"
    drill = [{"code": code, "name": titles[code], "chart": charts.get(code), "unit": units[code],
              "months": _with_spc(frame, charts.get(code)).sort_values("period", ascending=False).to_dict("records")}
             for code, frame in series.items()]
    cut = data_cut_time(session)
    html = environment().get_template("scorecard.html").render(
        contract=contract, provider=provider, area=area, period=period, rows=rows, headline=headline,
        chart=chart, drill=drill, chart_months=CHART_MONTHS, view=view, chart_kinds=_chart_kinds(charts),
        submissions=submissions, used=used, alpha=alpha, code_version=code_version, evidence=evidence,
        generated_at=format_cut(cut),
    )
    path = scorecard_path(out_dir, contract_id, period)
    import json

    # The view this document was rendered from, beside it: `cjmonitor scorecard --json` prints the same.
    write_text(path.with_suffix(".json"), json.dumps(view.to_dict(), indent=2, sort_keys=True))
    sha = write_text(path, html)
    written = [(path, sha)]
    if "pdf" in formats:
        written.append(write_bytes(path.with_suffix(".pdf"), pdf_bytes(html, path.parent, created=cut)))
    if "xlsx" in formats:
        judged_months = history.copy() if not history.empty else history
        if not judged_months.empty:
            judged_months = judged_months.drop(columns=[c for c in ("id",) if c in judged_months.columns])
        workbook = workbook_bytes({
            "contract": pd.DataFrame([{"contract_id": contract.id, "contract": contract.name, "provider": provider.name,
                                       "area_code": area.code, "area": area.name, "period": period, "alpha": alpha,
                                       "code_version": code_version}]),
            "kpis": pd.DataFrame([{k: v for k, v in r.items() if k not in ("rolling", "cusum", "spc_signals")}
                                  | {"rolling_quarter": _window_words(r, "quarter"), "rolling_year": _window_words(r, "year"),
                                     "shortfall_rule": _cusum_words(r)} for r in rows])
            .drop(columns=["variation_icon", "assurance_icon"])
            .rename(columns={"red_last_12": "red_months_in_last_12", "variation": "variation (MDC)",
                             "assurance": "assurance (MDC)"}),
            "judged_months": judged_months,
            "submissions": pd.DataFrame([{"file": s.file_name, "return_type": s.return_type, "period": s.period,
                                          "version": s.version, "received_at": s.received_at, "late": s.is_late,
                                          "status": s.status, "current": s.is_current, "used": s in used,
                                          "rows": s.rows, "errors": s.errors, "sha256": s.sha256,
                                          "mapping_sha256": s.mapping_sha256} for s in submissions]),
            "outcome_evidence": pd.DataFrame(evidence),
        }, created=cut)
        written.append(write_bytes(path.with_suffix(".xlsx"), workbook))
    for target, digest in written:
        record_artifact(session, kind="scorecard", audience="contract_manager", period=period, path=target, sha=digest,
                        contract_id=contract_id, area_code=area.code)
    return path


def _window_words(row: dict, window: str) -> str:
    pooled = (row.get("rolling") or {}).get(window)
    if not pooled or pooled.get("value") is None:
        return "no data"
    return f"{100 * pooled['value']:.1f}% {pooled['rag']}, {pooled['verdict']} ({pooled['from']} to {pooled['to']})"


def _cusum_words(row: dict) -> str:
    cusum = row.get("cusum") or {}
    if not cusum:
        return "no data"
    if cusum.get("signal"):
        return f"signalled this month ({cusum['statistic']:.1f} over {cusum['threshold']:.1f})"
    if cusum.get("last_signal"):
        return f"last signalled {cusum['last_signal']}; now {cusum['statistic']:.1f} of {cusum['threshold']:.1f}"
    return f"no signal; now {cusum['statistic']:.1f} of {cusum['threshold']:.1f}"


def spc_icons(chart) -> dict:
    """The KPI's MDC icons (codes and words) and the chart behind them, for a row of a document."""
    variation = chart.variation_icon if chart is not None else None
    assurance = chart.assurance_icon if chart is not None else None
    words = icon_words(variation, assurance)
    return {"variation_icon": variation, "assurance_icon": assurance, "variation": words[0], "assurance": words[1],
            "spc_chart": chart.why.split(":")[0] if chart is not None else ""}


def _chart_kinds(charts: dict) -> list[str]:
    """The SPC charts a document shows, by name with how many KPIs use each: ["p-chart (5 KPIs)", "XmR ... (1 KPI)"]."""
    from outcomes.spc import CHART_NAMES, CHARTS

    used = [c.chart for c in charts.values() if c is not None]
    return [f"{CHART_NAMES[kind]} ({used.count(kind)} KPI{'' if used.count(kind) == 1 else 's'})"
            for kind in CHARTS if kind in used]


def _with_spc(frame: pd.DataFrame, chart) -> pd.DataFrame:
    """The judged months with the chart's mean, limits and rules per month (the figures the chart draws)."""
    table = pd.DataFrame(spc_table(frame, chart)).rename(columns={"centre": "spc_mean", "lower": "spc_lower",
                                                                  "upper": "spc_upper", "signals": "spc_rules"})
    return frame.merge(table, on="period", how="left")


METHOD_NAMES = {
    "its_binomial_segmented": "Interrupted time series (change after a contract variation)",
    "psm_nn_1to5_replacement": "Comparison group (matched unserved people, Justice Data Lab style)",
    "synthetic_control": "Synthetic control (against a weighted mix of other areas)",
    "km_cox_matched": "Time to first reoffence (matched comparison group, Justice Data Lab style)",
    "psm_custodial_reoffenders": "Custody for the first reoffence (matched reoffenders, Justice Data Lab style)",
    "staggered_did": "Staggered roll-out (Callaway & Sant'Anna difference-in-differences across areas)",
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


def _render_matrices(session: Session, out_dir: Path, period: str, area_codes: list[str], code_version: str) -> dict:
    """The national by-provider matrix and each area's, from one pass over the judgements; links from out/."""
    from reports.matrix import matrix_rows, render_matrix

    contracts = [c.id for c in session.exec(select(Contract)).all()]
    alpha = session.exec(select(Judgement.alpha).where(Judgement.period == period)).first()
    if alpha is None:
        return {}
    import json

    views = {}
    for path in (out_dir / "scorecards" / period).glob("*.json"):
        try:
            views[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a view that cannot be read is computed again
    rows = matrix_rows(session, contracts, period, float(alpha), views=views)
    links = {"national": render_matrix(session, out_dir, period, alpha=float(alpha), code_version=code_version,
                                       rows=rows)["index"].relative_to(out_dir).as_posix()}
    for code in area_codes:
        mine = [r for r in rows if r["area_code"] == code]
        if mine:
            paths = render_matrix(session, out_dir, period, alpha=float(alpha), area_code=code,
                                  code_version=code_version, rows=mine)
            links[code] = paths["index"].relative_to(out_dir).as_posix()
    return links


def render_index(session: Session, out_dir: Path, period: str, *, code_version: str) -> Path:
    areas = session.exec(select(Area).order_by(Area.name)).all()
    contracts = session.exec(select(Contract).order_by(Contract.id)).all()
    providers = {p.id: p.name for p in session.exec(select(Provider)).all()}
    judged = judgement_rows(session)
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
    matrices = _render_matrices(session, out_dir, period, [a.code for a in areas], code_version)
    html = environment().get_template("index.html").render(
        matrices=matrices,
        areas=[a for a in areas if any(c["area_code"] == a.code for c in listed)], contracts=listed, totals=totals,
        period=period, submissions=summary, code_version=code_version, reports=documents["reports"],
        lcjb=documents["lcjb"], lcjb_period=documents["lcjb_period"], periods=_index_pages(out_dir, period), data_quality=_data_quality_links(out_dir, period),
        specs=(out_dir / "specs" / "index.html").exists(),
        generated_at=format_cut(cut),
    )
    # The site is out/ itself: index.html is the latest period rendered, index-YYYY-MM.html each period, all
    # in one folder so that every link is relative and works from the file system or any static server.
    dated = out_dir / f"index-{period}.html"
    record_artifact(session, kind="index", audience="all", period=period, path=dated, sha=write_text(dated, html))
    path = out_dir / "index.html"
    latest = max(month for month, _ in _index_pages(out_dir, period))
    if period >= latest or not path.exists():
        sha = write_text(path, html)
        record_artifact(session, kind="index", audience="all", period=period, path=path, sha=sha)
    return path
