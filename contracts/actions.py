"""What a contract manager should do about a month's scorecard, in plain words, built only from the findings.

The rules follow the contract-management practice the judgement supports: act on misses that are
beyond sampling noise (a verdict of ``not met``, over the month or the rolling year), on special-cause
signals of concern, and on credits due; watch, rather than act, where a Red month is not yet proven.
"""

from __future__ import annotations


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
                f"{m['name']}: {100 * year['value']:.1f}% over the 12 months to {year['to']} against a target of "
                f"{100 * year['target']:.0f}%, a shortfall beyond sampling noise. Issue a performance notice and "
                "ask for a remedial plan with dated milestones.")
        elif m.get("verdict") == "not met":
            actions.append(
                f"{m['name']}: this month missed target beyond sampling noise ({100 * m['value']:.1f}% against "
                f"{100 * m['target']:.0f}%) but the rolling year does not; raise it at the next contract meeting.")
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
