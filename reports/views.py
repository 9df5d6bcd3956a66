"""Frozen view models: what a document says, built once from the database, rendered to HTML, PDF, XLSX and JSON.

``ScorecardView`` is what the scorecard document is rendered from and what ``cjmonitor scorecard --json``
prints, so the two cannot disagree; the scorecard writes its view beside it (``<contract>.json``).
``MonthlyReportView`` and ``EvidencePackView`` wrap the data their documents are rendered from in the same
way (``to_dict()`` JSON-ready).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd
from sqlmodel import Session, select

from contracts.actions import recommended_actions
from contracts.catalogue import MEASURES_BY_CODE
from contracts.credits import statement
from contracts.fairness import contract_signals
from contracts.judge import ROLLING_WINDOWS, judged_months, kpi_charts, rolling_judgements, variation_breaks
from contracts.models import Area, Contract, Finding, KpiValue, Provider
from reports.artifacts import data_cut_time, format_cut
from reports.env import month_name
from reports.icons import icon_words

CHART_MONTHS = 12


def _plain(value):
    """JSON-ready: numpy and pandas scalars to Python, NaN to None, mappings and sequences recursively."""
    if isinstance(value, MappingProxyType | dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT:
        return None
    return value


def _freeze(records) -> tuple:
    return tuple(MappingProxyType(dict(r)) for r in records)


@dataclass(frozen=True)
class ScorecardView:
    """One contract's scorecard for one month."""

    contract_id: str
    name: str
    provider_id: str
    provider_name: str
    area_code: str
    area_name: str
    period: str
    alpha: float
    headline: str
    measures: tuple = field(repr=False)
    service_credits_due: float = 0.0
    pbr_payable: float = 0.0
    credits: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)
    evidence: tuple = field(default=(), repr=False)
    actions: tuple = ()
    data_cut: str = ""
    charts: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)
    # ^ the SPCResult per KPI behind the icons, for drawing; not part of the view's data

    def to_dict(self) -> dict:
        out = {"contract_id": self.contract_id, "name": self.name, "provider_id": self.provider_id,
               "provider_name": self.provider_name, "area_code": self.area_code, "area_name": self.area_name,
               "period": self.period, "alpha": self.alpha, "headline": self.headline,
               "measures": [dict(m) for m in self.measures], "service_credits_due": self.service_credits_due,
               "pbr_payable": self.pbr_payable, "credits": dict(self.credits),
               "evidence": [dict(e) for e in self.evidence], "actions": list(self.actions), "data_cut": self.data_cut}
        return json.loads(json.dumps(_plain(out), default=str))


def _months_before(period: str, months: int) -> str:
    return str(pd.Period(period, "M") - months)


def build_scorecard_view(session: Session, contract_id: str, period: str, alpha: float) -> ScorecardView:
    """Everything the scorecard says for ``contract_id`` in ``period``, from the database, once."""
    contract = session.get(Contract, contract_id)
    provider = session.get(Provider, contract.provider_id)
    area = session.get(Area, contract.area_code)
    monthly = judged_months(session, [contract_id])
    history = monthly[monthly["period"] <= period] if not monthly.empty else monthly
    charts = kpi_charts(history, variation_breaks(session, [contract_id]), period) if not history.empty else {}
    rolling = rolling_judgements(monthly, period, alpha) if not monthly.empty else pd.DataFrame()
    pooled = {}
    for r in (rolling.astype(object).where(rolling.notna(), None).to_dict("records") if not rolling.empty else []):
        pooled[(r["measure_code"], r["window"])] = {
            "window": r["window"], "from": r["first_period"], "to": r["last_period"],
            "months_with_data": r["months_with_data"], "value": r["value"], "numerator": r["numerator"],
            "denominator": r["denominator"], "target": r["target"], "rag": r["rag"], "verdict": r["verdict"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
    shortfall = contract_signals(monthly, period) if not monthly.empty else {}
    sources: dict[str, str] = {}
    for kpi in session.exec(select(KpiValue).where(KpiValue.contract_id == contract_id, KpiValue.period == period)).all():
        if sources.get(kpi.measure_code) != "derived":  # derived from records wins, as in the judgement
            sources[kpi.measure_code] = kpi.source
    measures = []
    for code, frame in (history.groupby("measure_code", sort=True) if not history.empty else []):
        measure = MEASURES_BY_CODE[code]
        frame = frame.sort_values("period")
        current = frame[frame["period"] == period]
        last12 = frame[frame["period"] > _months_before(period, 12)]
        as_of = period
        if current.empty and measure.service_type == "reoffending":
            current = frame.tail(1)  # cohort outcomes arrive about 18 months after the cohort: the latest known
            as_of = str(current["period"].iloc[0])
        chart = charts.get(code)
        variation, assurance = icon_words(chart.variation_icon if chart else None,
                                          chart.assurance_icon if chart else None)
        row = {"code": code, "name": measure.name, "direction": measure.direction, "unit": measure.unit,
               "kind": str(frame["kind"].iloc[-1]) if "kind" in frame.columns and isinstance(frame["kind"].iloc[-1], str)
               else "proportion", "as_of": as_of,
               "red_last_12": int((last12["rag"] == "Red").sum()),
               "variation_icon": chart.variation_icon if chart else None,
               "assurance_icon": chart.assurance_icon if chart else None, "variation": variation,
               "assurance": assurance, "spc_chart": chart.why.split(":")[0] if chart else "",
               "rolling": {w: pooled[(code, w)] for w in ROLLING_WINDOWS if (code, w) in pooled},
               "cusum": shortfall.get(code)}
        if current.empty:
            row.update({"value": None, "numerator": None, "denominator": None, "target": float(frame["target"].iloc[-1]),
                        "tolerance": float(frame["tolerance"].iloc[-1]), "rag": "No data", "verdict": "no return",
                        "alpha": alpha, "ci_low": None, "ci_high": None, "source": "derived", "spc_signals": [],
                        "spc_variation": "", "spc": ""})
        else:
            c = current.iloc[0]
            spc_signals = [x for x in str(c.get("spc_signals") or "").split("; ") if x]
            spc_variation = c.get("spc_variation") or ""
            row.update({"value": c["value"], "numerator": c["numerator"], "denominator": c["denominator"],
                        "target": c["target"], "tolerance": c["tolerance"], "rag": c["rag"], "verdict": c["verdict"],
                        "alpha": c["alpha"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
                        "source": sources.get(code, "derived"), "spc_signals": spc_signals,
                        "spc_variation": spc_variation, "spc": "; ".join(spc_signals) or spc_variation or ""})
        measures.append(_plain(row))
    counts = {word: sum(1 for r in measures if r["rag"] == word) for word in ("Green", "Amber", "Red")}
    headline = (f"In {month_name(period)}, {len(measures)} KPIs: {counts['Green']} Green, {counts['Amber']} Amber, "
                f"{counts['Red']} Red.")
    not_met = [r["name"] for r in measures if r["verdict"] == "not met"]
    if not_met:
        headline += " Below target beyond the month's own sampling noise (descriptive): " + "; ".join(not_met) + "."
    notices = [r["name"] for r in measures if (r.get("cusum") or {}).get("signal")]
    if notices:
        headline += " Shortfall rule signalled (a performance notice is due): " + "; ".join(notices) + "."
    money = statement(session, contract_id, period).to_dict()
    evidence = []
    for f in session.exec(select(Finding).where(Finding.contract_id == contract_id)
                          .order_by(Finding.method, Finding.measure_code)).all():
        parameters = json.loads(f.parameters)
        evidence.append({"method": f.method, "measure_code": f.measure_code, "cohort": f.cohort,
                         "estimate": f.estimate, "ci_low": f.ci_low, "ci_high": f.ci_high, "alpha": f.alpha,
                         "verdict": f.verdict, "sentence": parameters.get("headline") or parameters.get("sentence", "")})
    judged_now = [m for m in measures if m["as_of"] == period and m["rag"] != "No data"]
    actions = recommended_actions(judged_now, money["service_credits"]["total"], money["pbr"]["total"], evidence)
    return ScorecardView(
        contract_id=contract_id, name=contract.name, provider_id=contract.provider_id, provider_name=provider.name,
        area_code=area.code, area_name=area.name, period=period, alpha=alpha, headline=headline,
        measures=_freeze(measures), service_credits_due=money["service_credits"]["total"],
        pbr_payable=money["pbr"]["total"], credits=MappingProxyType(_plain(money)), evidence=_freeze(evidence),
        actions=tuple(actions), data_cut=format_cut(data_cut_time(session)), charts=MappingProxyType(charts))


@dataclass(frozen=True)
class MonthlyReportView:
    """An area's monthly report: the gathered data and the summary matrix rows."""

    area_code: str
    period: str
    data: MappingProxyType = field(repr=False)
    matrix: tuple = field(default=(), repr=False)

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.data.items() if k not in ("area", "value_view")}
        return json.loads(json.dumps(_plain({"area_code": self.area_code, "period": self.period, **data,
                                             "matrix": [dict(r) for r in self.matrix]}), default=str))


@dataclass(frozen=True)
class EvidencePackView:
    """A contract's evidence pack: its asks, KPIs (with icons), credits, findings."""

    contract_id: str
    as_of: str
    data: MappingProxyType = field(repr=False)

    def to_dict(self) -> dict:
        keep = ("asks", "kpis", "credit_lines", "credit_total", "pbr", "evidence", "quality", "alpha")
        return json.loads(json.dumps(_plain({"contract_id": self.contract_id, "as_of": self.as_of,
                                             **{k: self.data[k] for k in keep if k in self.data}}), default=str))
