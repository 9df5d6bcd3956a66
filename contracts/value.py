"""The value view: reoffences avoided by each contract's service, and what they are worth, as an estimate.

Reoffences avoided = the matched comparison-group effect on 12-month reoffences per person (with its
interval) times the people served and matched. Worth = reoffences avoided x a unit cost of one proven
reoffence (``Settings.reoffence_unit_cost_gbp``, a configurable assumption). Both carry the interval of
the effect: a commissioner sees "between £a and £b", never a bare number, and a negative lower bound
means the service may have cost more reoffending than it prevented.
"""

from __future__ import annotations

import json
import math

from scipy.stats import norm
from sqlmodel import Session, select

from contracts.models import Contract, Finding

FREQUENCY_MEASURE = "reo_frequency_12m"


def format_gbp(amount: float) -> str:
    return f"-£{-amount:,.0f}" if amount < 0 else f"£{amount:,.0f}"


def value_view(session: Session, *, unit_cost_gbp: float, area_code: str | None = None,
               contract_id: str | None = None) -> dict:
    """One line per contract with a frequency comparison-group finding, and the totals.

    Returns ``{"unit_cost_gbp", "label", "lines": [...], "total": {...}}``; each line has contract_id,
    area_code, cohorts, n_matched, effect per person (estimate, ci_low, ci_high), reoffences_avoided
    (estimate, low, high), value_gbp (estimate, low, high) and a sentence.
    """
    query = select(Finding, Contract).join(Contract, Contract.id == Finding.contract_id).where(
        Finding.measure_code == FREQUENCY_MEASURE, Finding.method.like("psm%"))
    if area_code is not None:
        query = query.where(Contract.area_code == area_code)
    if contract_id is not None:
        query = query.where(Contract.id == contract_id)
    latest: dict[str, tuple[Finding, Contract]] = {}
    for finding, contract in session.exec(query).all():
        if contract.id not in latest or finding.created_at > latest[contract.id][0].created_at:
            latest[contract.id] = (finding, contract)
    lines = []
    for cid in sorted(latest):
        finding, contract = latest[cid]
        matched = int(json.loads(finding.parameters).get("n_matched", 0))
        avoided = -finding.estimate * matched
        low, high = -finding.ci_high * matched, -finding.ci_low * matched
        level = f"{100 * (1 - finding.alpha):.0f}%"
        lines.append({
            "contract_id": cid, "area_code": contract.area_code, "cohorts": finding.cohort, "n_matched": matched,
            "effect_per_person": {"estimate": finding.estimate, "ci_low": finding.ci_low, "ci_high": finding.ci_high},
            "reoffences_avoided": {"estimate": round(avoided, 1), "low": round(low, 1), "high": round(high, 1)},
            "value_gbp": {"estimate": round(avoided * unit_cost_gbp, 2), "low": round(low * unit_cost_gbp, 2),
                          "high": round(high * unit_cost_gbp, 2)},
            "alpha": finding.alpha,
            "sentence": (f"An estimated {avoided:.0f} reoffences avoided among {matched} people served ({level} interval "
                         f"{low:.0f} to {high:.0f}), worth about {format_gbp(avoided * unit_cost_gbp)} "
                         f"({format_gbp(low * unit_cost_gbp)} to {format_gbp(high * unit_cost_gbp)}) at {format_gbp(unit_cost_gbp)} a reoffence."
                         + (" The interval includes zero: the service may have avoided none." if low <= 0 <= high else "")),
        })
    # Contracts' cohorts are different people, so their estimates are independent: the total's standard
    # error is the root sum of squares of each line's (recovered from its symmetric Wald interval).
    z = float(norm.ppf(1 - (lines[0]["alpha"] if lines else 0.05) / 2))
    estimate = sum(line["reoffences_avoided"]["estimate"] for line in lines)
    se = math.sqrt(sum(((line["reoffences_avoided"]["high"] - line["reoffences_avoided"]["low"]) / (2 * z)) ** 2
                       for line in lines))
    total = {
        "reoffences_avoided": {"estimate": round(estimate, 1), "low": round(estimate - z * se, 1),
                               "high": round(estimate + z * se, 1)},
        "value_gbp": {"estimate": round(estimate * unit_cost_gbp, 2), "low": round((estimate - z * se) * unit_cost_gbp, 2),
                      "high": round((estimate + z * se) * unit_cost_gbp, 2)},
    }
    return {"unit_cost_gbp": unit_cost_gbp,
            "label": ("Estimate: reoffences avoided against a matched comparison group, times an assumed unit cost "
                      "of a reoffence. Not a cash saving."),
            "lines": lines, "total": total}
