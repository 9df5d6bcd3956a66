"""What a contract manager should do about a month's scorecard, in plain words, built only from the findings.

The rules follow the contract-management practice the judgement supports: act on misses that are
beyond sampling noise (a verdict of ``not met``, over the month or the rolling year), on special-cause
signals of concern, and on credits due; watch, rather than act, where a Red month is not yet proven.
"""

from __future__ import annotations


def format_value(value: float | None, unit: str | None = None, digits: int = 1) -> str:
    """A KPI value in its unit: a proportion as '72.3%', a median as '7.0 days', a volume as '118'."""
    if value is None or value != value:
        return "no data"
    if unit and not str(unit).startswith("percent"):
        return f"{value:,.{digits}f} days" if unit == "days" else f"{value:,.{digits if value % 1 else 0}f}"
    return f"{100 * value:.{digits}f}%"


def recommended_actions(measures: list[dict], credits_due: float, pbr_payable: float,
                        evidence: list[dict] | None = None) -> list[str]:
    """Actions for one contract and month.

    ``measures`` are the scorecard rows (name, rag, verdict, value, target, spc_variation, spc_signals and
    ``rolling`` with ``year``); ``evidence`` are outcome findings (measure_code, verdict, sentence).
    """
    actions = []
    for m in measures:
        year = (m.get("rolling") or {}).get("year") or {}
        if year.get("verdict") == "not met":
            actions.append(
                f"{m['name']}: {format_value(year['value'], m.get('unit'))} over the 12 months to {year['to']} against "
                f"a target of {format_value(year['target'], m.get('unit'), 0)}, a shortfall beyond sampling noise. "
                "Issue a performance notice and "
                "ask for a remedial plan with dated milestones.")
        elif m.get("verdict") == "not met":
            actions.append(
                f"{m['name']}: this month missed target beyond sampling noise ({format_value(m['value'], m.get('unit'))} "
                f"against {format_value(m['target'], m.get('unit'), 0)}) but the rolling year does not; raise it at the "
                "next contract meeting.")
        elif m.get("rag") == "Red":
            actions.append(f"{m['name']}: Red this month but not proven beyond noise ({m['verdict']}); watch next month.")
        if m.get("spc_variation") == "special cause concerning":
            actions.append(f"{m['name']}: special-cause variation of concern ({'; '.join(m.get('spc_signals') or [])}); "
                           "ask the provider what changed.")
    if credits_due > 0:
        actions.append(f"Deduct service credits of £{credits_due:,.2f} from the next invoice "
                       "(`cjmonitor credits` shows the working).")
    if pbr_payable > 0:
        actions.append(f"Payment by results of £{pbr_payable:,.2f} is due on the reoffending outcome.")
    for finding in evidence or []:
        # Reoffending is lower-is-better: an increase against the comparison group is harm.
        if str(finding.get("measure_code", "")).startswith("reo_") and finding.get("verdict") == "increase":
            actions.append(f"Reoffending against a matched comparison group: {finding['sentence']} "
                           "Review the service model with the provider.")
    if not actions:
        actions.append("No action needed: every KPI is on target or not distinguishable from it, and no credits are due.")
    return actions
