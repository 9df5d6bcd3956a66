"""Service credits and payment by results, with the working shown line by line.

Service credits (CRC Schedule 9 style): a KPI that misses its target outside the
tolerance band (RAG "Red") in a month costs the provider ``Target.service_credit_pct``
per cent of that month's fee, unless the month's volume is below the contract's minimum
(then nothing is due: the miss is not measurable). Credits in a contract quarter (Jan-Mar,
Apr-Jun, ...) never exceed ``PaymentTerms.service_credit_cap_pct`` of the quarter's fee;
months are applied in order, so the cap bites on the later months of a quarter.

Payment by results (Peterborough / CRC design): the comparison-group finding for the
contract's reoffending cohorts earns ``reoffenders avoided x price`` only when the
reduction in the binary rate is statistically significant (the whole interval below zero)
and at least ``pbr_threshold_points``; an optional cap limits one set of cohorts. The
point estimate is paid; the interval of the payment is shown beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.errors import ContractsError
from contracts.models import Contract, Finding, Judgement, PaymentTerms, Target

DEFAULT_TERMS = PaymentTerms(contract_id="", valid_from=pd.Timestamp("1900-01-01").date())


@dataclass
class Statement:
    contract_id: str
    period: str
    monthly_fee_gbp: float
    service_credit_lines: list[dict] = field(default_factory=list)
    service_credit_total: float = 0.0
    cap_working: dict = field(default_factory=dict)
    pbr_lines: list[dict] = field(default_factory=list)
    pbr_total: float = 0.0

    def to_dict(self) -> dict:
        return {
            "contract_id": self.contract_id,
            "period": self.period,
            "monthly_fee_gbp": round(self.monthly_fee_gbp, 2),
            "service_credits": {"total": round(self.service_credit_total, 2), "lines": self.service_credit_lines,
                                "cap": self.cap_working},
            "pbr": {"total": round(self.pbr_total, 2), "lines": self.pbr_lines},
        }


def quarter_months(period: str) -> list[str]:
    stamp = pd.Period(period, "M")
    first = pd.Period(year=stamp.year, month=3 * ((stamp.month - 1) // 3) + 1, freq="M")
    return [str(first + i) for i in range(3)]


def terms_in_force(session: Session, contract_id: str, period: str) -> PaymentTerms:
    month_start = pd.Timestamp(f"{period}-01").date()
    rows = session.exec(select(PaymentTerms).where(PaymentTerms.contract_id == contract_id,
                                                   PaymentTerms.valid_from <= month_start)
                        .order_by(PaymentTerms.valid_from)).all()
    return rows[-1] if rows else DEFAULT_TERMS


def _credit_pcts(session: Session, contract_id: str, period: str) -> dict[str, float]:
    """Service credit (% of the monthly fee) of each KPI under the terms in force in ``period``."""
    month_start = pd.Timestamp(f"{period}-01").date()
    targets = session.exec(select(Target).where(Target.contract_id == contract_id, Target.valid_from <= month_start)
                           .order_by(Target.valid_from)).all()
    return {t.measure_code: t.service_credit_pct for t in targets if t.valid_to is None or t.valid_to >= month_start}


def monthly_credits(session: Session, contract: Contract, month: str) -> list[dict]:
    """One line per KPI of the month, with the rule applied and the amount before any cap."""
    from contracts.declared import ensure_declared_measures

    ensure_declared_measures(session)  # local services' KPIs by name
    fee = contract.annual_value_gbp / 12
    lines = []
    judgements = session.exec(select(Judgement).where(Judgement.contract_id == contract.id, Judgement.period == month)
                              .order_by(Judgement.measure_code)).all()
    pcts = _credit_pcts(session, contract.id, month)
    for judged in judgements:
        pct = pcts.get(judged.measure_code, 0.0)
        due = judged.rag == "Red" and judged.verdict != "insufficient volume" and pct > 0
        if judged.rag != "Red":
            reason = f"{judged.rag}: no credit"
        elif judged.verdict == "insufficient volume":
            reason = "Red but below the minimum volume: no credit"
        elif pct <= 0:
            reason = "Red, but this KPI carries no service credit"
        else:
            reason = f"Red: {pct:g}% of the monthly fee of £{fee:,.2f}"
        lines.append({
            "month": month, "measure": judged.measure_code, "name": MEASURES_BY_CODE[judged.measure_code].name,
            "value": judged.value, "target": judged.target, "tolerance": judged.tolerance, "rag": judged.rag,
            "verdict": judged.verdict, "credit_pct": pct, "amount": round(fee * pct / 100, 2) if due else 0.0,
            "working": reason,
        })
    return lines


def _latest_finding(session: Session, contract: Contract, measure_code: str) -> Finding | None:
    findings = session.exec(select(Finding).where(Finding.contract_id == contract.id, Finding.measure_code == measure_code,
                                                  Finding.method.like("psm%"))).all()
    return max(findings, key=lambda f: f.created_at) if findings else None


def _outcome_payment(finding: Finding, matched: int, price: float, requires_significance: bool, reduction: float,
                     threshold: float, *, outcome: str, unit: str, avoided_word: str) -> tuple[float, str]:
    """The rule both outcome payments follow: a price, then significance, then the threshold, then avoided x price."""
    avoided = -finding.estimate * matched
    avoided_low, avoided_high = -finding.ci_high * matched, -finding.ci_low * matched
    if price <= 0:
        return 0.0, f"the contract has no {outcome}-outcome price: nothing payable"
    if requires_significance and not finding.ci_high < 0:
        return 0.0, "the reduction is not statistically significant (the interval reaches zero): nothing payable"
    if reduction < threshold:
        return 0.0, f"the reduction of {reduction:.1f}{unit} is below the threshold of {threshold:g}{unit}: nothing payable"
    amount = avoided * price
    return amount, (f"{avoided_word} avoided = {-finding.estimate:.4f} x {matched} = {avoided:.1f} "
                    f"(interval {avoided_low:.1f} to {avoided_high:.1f}); x £{price:,.0f} = £{amount:,.2f} "
                    f"(interval £{avoided_low * price:,.0f} to £{avoided_high * price:,.0f})")


def _binary_line(finding: Finding, terms: PaymentTerms) -> dict:
    """Reoffenders avoided x price, when the fall in the binary rate is significant and reaches the threshold."""
    matched = int(json.loads(finding.parameters).get("n_matched", 0))
    first = (f"cohorts {finding.cohort}: {matched} people served and matched; difference in 12-month reoffending "
             f"{100 * finding.estimate:+.1f} points ({100 * (1 - finding.alpha):.0f}% CI {100 * finding.ci_low:+.1f} to "
             f"{100 * finding.ci_high:+.1f})")
    price = terms.pbr_price_per_reoffender_gbp
    amount, step = _outcome_payment(finding, matched, price, terms.pbr_requires_significance, -100 * finding.estimate,
                                    terms.pbr_threshold_points, outcome="binary", unit=" points",
                                    avoided_word="reoffenders")
    return {"measure": "reo_binary_12m", "outcome": "binary", "cohorts": finding.cohort, "estimate": finding.estimate,
            "ci_low": finding.ci_low, "ci_high": finding.ci_high, "n_matched": matched,
            "threshold_points": terms.pbr_threshold_points, "price_gbp": price,
            "amount": round(amount, 2), "working": f"{first}; {step}"}


def _frequency_line(finding: Finding, terms: PaymentTerms) -> dict:
    """Reoffences avoided x price, when the fall in reoffences per person is significant and reaches the
    threshold share of the comparison group's frequency (Peterborough: 10% for a cohort, 7.5% overall)."""
    parameters = json.loads(finding.parameters)
    matched = int(parameters.get("n_matched", 0))
    comparison = float(parameters.get("comparison_rate", 0.0))
    reduction_pct = -100 * finding.estimate / comparison if comparison > 0 else 0.0
    first = (f"cohorts {finding.cohort}: {matched} people served and matched; reoffences per person "
             f"{finding.estimate:+.3f} against the comparison group's {comparison:.3f} "
             f"({100 * (1 - finding.alpha):.0f}% CI {finding.ci_low:+.3f} to {finding.ci_high:+.3f}), "
             f"a reduction of {reduction_pct:.1f}%")
    price = terms.pbr_frequency_price_gbp
    amount, step = _outcome_payment(finding, matched, price, terms.pbr_requires_significance, reduction_pct,
                                    terms.pbr_frequency_threshold_pct, outcome="frequency", unit="%",
                                    avoided_word="reoffences")
    return {"measure": "reo_frequency_12m", "outcome": "frequency", "cohorts": finding.cohort,
            "estimate": finding.estimate, "ci_low": finding.ci_low, "ci_high": finding.ci_high, "n_matched": matched,
            "comparison_frequency": comparison, "reduction_pct": round(reduction_pct, 2),
            "threshold_pct": terms.pbr_frequency_threshold_pct, "price_gbp": price,
            "amount": round(amount, 2), "working": f"{first}; {step}"}


def pbr_lines(session: Session, contract: Contract, terms: PaymentTerms) -> tuple[list[dict], float]:
    """Payment by results on the binary and the frequency outcome against the comparison group, then the cap."""
    binary = _latest_finding(session, contract, "reo_binary_12m")
    if binary is None:
        return [{"measure": "reo_binary_12m", "amount": 0.0,
                 "working": "no comparison-group result for this contract yet: nothing payable"}], 0.0
    lines = [_binary_line(binary, terms)]
    frequency = _latest_finding(session, contract, "reo_frequency_12m")
    if frequency is not None:
        lines.append(_frequency_line(frequency, terms))
    total = sum(line["amount"] for line in lines)
    if terms.pbr_cap_gbp is not None and total > terms.pbr_cap_gbp:
        lines.append({"measure": "cap", "amount": round(terms.pbr_cap_gbp - total, 2),
                      "working": f"outcome payments of £{total:,.2f} capped at £{terms.pbr_cap_gbp:,.2f}"})
        total = terms.pbr_cap_gbp
    return lines, round(total, 2)


def statements(session: Session, contract_id: str, periods: list[str], *, pbr: bool = True) -> dict[str, Statement]:
    """The statement of each of ``periods`` (see ``statement``), working out each month's credit lines once
    however many statements share its quarter. ``pbr=False`` leaves the payment-by-results lines empty."""
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise ContractsError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
    lines_of: dict[str, list[dict]] = {}
    results = {}
    for period in periods:
        terms = terms_in_force(session, contract_id, period)
        fee = contract.annual_value_gbp / 12
        result = Statement(contract_id=contract_id, period=period, monthly_fee_gbp=fee)
        cap = 3 * fee * terms.service_credit_cap_pct / 100
        applied_before = 0.0
        for month in quarter_months(period):
            if month > period:
                break
            if month not in lines_of:
                lines_of[month] = monthly_credits(session, contract, month)
            lines = lines_of[month]
            raw = sum(line["amount"] for line in lines)
            applied = max(0.0, min(raw, cap - applied_before))
            if month == period:
                result.service_credit_lines = lines
                result.service_credit_total = round(applied, 2)
                result.cap_working = {
                    "quarter": f"{quarter_months(period)[0]} to {quarter_months(period)[-1]}",
                    "cap_pct_of_quarterly_fee": terms.service_credit_cap_pct, "cap_gbp": round(cap, 2),
                    "applied_earlier_in_quarter": round(applied_before, 2), "due_this_month_before_cap": round(raw, 2),
                    "applied_this_month": round(applied, 2),
                    "working": (f"credits this month £{raw:,.2f}; earlier this quarter £{applied_before:,.2f}; cap "
                                f"{terms.service_credit_cap_pct:g}% of the quarter's fee £{3 * fee:,.2f} = £{cap:,.2f}; "
                                f"applied £{applied:,.2f}"),
                }
            applied_before += applied
        if pbr:
            result.pbr_lines, result.pbr_total = pbr_lines(session, contract, terms)
        results[period] = result
    return results


def statement(session: Session, contract_id: str, period: str) -> Statement:
    """Service credits due for ``period`` (after the quarterly cap) and the payment-by-results position."""
    return statements(session, contract_id, [period])[period]
