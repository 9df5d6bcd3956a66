"""What a contract manager should do about a month's scorecard, in plain words, built only from the findings.

The performance notice has stated operating characteristics (``contracts.fairness``): it follows a signal
of the KPI's shortfall CUSUM, whose threshold makes a provider exactly on target draw one on any of its
KPIs in at most 5% of contract-years; a 5-point shortfall on every KPI is signalled within 6 months with
a probability of 80% or more at 80 cases a month (the README and docs/methods-spc.md give the figures).
The monthly and rolling-year Wilson verdicts are descriptive figures, looked at every month on every KPI:
they lead to a conversation, never to a notice. Special-cause signals of concern and credits due are
acted on; a Red month not yet proven is watched.
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
        cusum = m.get("cusum") or {}
        if cusum.get("signal"):
            actions.append(
                f"{m['name']}: the shortfall rule signalled this month (CUSUM {cusum['statistic']:.1f} over its "
                f"threshold {cusum['threshold']:.1f}, from {cusum['from']}; a provider on target draws this on any KPI in "
                "at most 5% of contract-years). Issue a performance notice and ask for a remedial plan with dated "
                "milestones.")
        elif cusum.get("in_last_12"):
            actions.append(f"{m['name']}: the shortfall rule signalled in {cusum['last_signal']}; check the remedial "
                           "plan's milestones.")
        if cusum.get("signal") or cusum.get("in_last_12"):
            pass  # the notice (or the plan it asked for) covers this month's and the year's figures
        elif year.get("verdict") == "not met":
            actions.append(
                f"{m['name']}: {format_value(year['value'], m.get('unit'))} over the 12 months to {year['to']} against a "
                f"target of {format_value(year['target'], m.get('unit'), 0)} (a descriptive figure: the rolling year is "
                "looked at every month, so it is not grounds for a notice on its own); raise it at the next contract meeting.")
        elif m.get("verdict") == "not met":
            actions.append(
                f"{m['name']}: this month is below target beyond its own sampling noise "
                f"({format_value(m['value'], m.get('unit'))} against {format_value(m['target'], m.get('unit'), 0)}, a "
                "descriptive monthly figure) but the rolling year is not; raise it at the "
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
