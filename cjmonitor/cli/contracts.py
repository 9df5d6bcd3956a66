"""Contract commands: ``scorecard``, ``credits``, ``contracts``, ``vary``, ``targets``, ``funnel``, ``breakdowns``, ``value``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _echo_json, _settings, require_judged_month
from cjmonitor.period import PERIOD, require_judged

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@JSON_OPTION
def scorecard(home, contract_id, period, as_json) -> None:
    """The judged KPIs of one contract for one month: value, target, RAG, verdict, interval, SPC signals."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.migrate import ensure_schema
    from contracts.actions import format_value  # noqa: F401
    from contracts.fairness import use_threshold_store
    from contracts.models import Contract, Judgement
    from reports.scorecard import METHOD_NAMES
    from reports.views import build_scorecard_view

    settings = _settings(home)
    ensure_schema(settings)
    # The shortfall rule's thresholds the judge step and the documents stored (read only: a scorecard query leaves
    # the home as it was; a month not in the store is simulated here, as without it).
    use_threshold_store(settings.threshold_cache_path)
    try:
        with session_scope(settings) as session:
            if session.get(Contract, contract_id) is None:
                raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
            if not session.exec(select(Judgement.id).where(Judgement.contract_id == contract_id,
                                                           Judgement.period == period)).first():
                require_judged(session, period, contract_id=contract_id)
            # The same view the scorecard document is rendered from (reports.views).
            result = build_scorecard_view(session, contract_id, period, settings.alpha).to_dict()
    finally:
        use_threshold_store(None)  # this home's store is not left in use for whatever this process does next
    measures, evidence = result["measures"], result["evidence"]
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{result['name']} ({contract_id}), {period}")
    for m in measures:
        value = format_value(m["value"], m["unit"])
        interval = "" if m["ci_low"] is None else f"({format_value(m['ci_low'], m['unit'])} to {format_value(m['ci_high'], m['unit'])})"
        spc = "; ".join(m["spc_signals"]) or m["spc_variation"] or ""
        name = m["name"] + (" *" if m["source"] == "provider_reported" else "")
        click.echo(f"  {name:<58} {value:>7} {interval:<16} target {format_value(m['target'], m['unit'], 0)}  {m['rag']:<6} "
                   f"{m['verdict']:<20} {spc}")
    if any(m["source"] == "provider_reported" for m in measures):
        click.echo("  * reported by the provider as an aggregate, not derived from person-level records")
    click.echo("Rolling windows (months pooled, judged against the target in force now):")
    for m in measures:
        parts = []
        for window, pooled_row in m["rolling"].items():
            value = format_value(pooled_row["value"], m["unit"])
            parts.append(f"{window} to {period}: {value} {pooled_row['rag']}, {pooled_row['verdict']}")
        click.echo(f"  {m['name']:<58} {'; '.join(parts)}")
    missed = [m["name"] for m in measures if m["verdict"] == "not met"]
    click.echo(f"Missed beyond sampling noise: {', '.join(missed) if missed else 'none'}.")
    click.echo(f"Service credits due this month: £{result['service_credits_due']:,.2f} "
               f"(`cjmonitor credits` shows the working); payment by results payable: £{result['pbr_payable']:,.2f}.")
    if evidence:
        click.echo("Outcome evidence:")
        for item in evidence:
            method = METHOD_NAMES.get(item["method"], item["method"])
            click.echo(f"  {method}, {item['measure_code']} ({item['cohort'] or ''}): {item['sentence']}")
    click.echo("What to do:")
    for action in result["actions"]:
        click.echo(f"  - {action}")


@click.command()
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@JSON_OPTION
def credits(home, contract_id, period, as_json) -> None:
    """Service credits due for a month (after the quarterly cap) and payment by results, with the working."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.credits import statement

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        from cjmonitor.errors import NotFoundError
        from contracts.models import Contract

        if session.get(Contract, contract_id) is None:
            raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
        require_judged(session, period, contract_id=contract_id)
        result = statement(session, contract_id, period).to_dict()
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{contract_id}, {period}: monthly fee £{result['monthly_fee_gbp']:,.2f}")
    click.echo("Service credits")
    for line in result["service_credits"]["lines"]:
        click.echo(f"  {line['name']:<58} {line['rag']:<8} £{line['amount']:>10,.2f}  {line['working']}")
    click.echo(f"  {result['service_credits']['cap']['working']}")
    click.echo(f"  total due: £{result['service_credits']['total']:,.2f}")
    click.echo("Payment by results")
    for line in result["pbr"]["lines"]:
        click.echo(f"  {line['working']}")
    click.echo(f"  total payable: £{result['pbr']['total']:,.2f}")


@click.command("contracts")
@HOME_OPTION
@JSON_OPTION
def list_contracts(home, as_json) -> None:
    """List the contracts in the database."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from contracts.models import Contract

    with session_scope(_settings(home)) as session:
        rows = [c.model_dump(mode="json") for c in session.exec(select(Contract).order_by(Contract.id)).all()]
    if as_json:
        _echo_json(rows)
    else:
        for row in rows:
            click.echo(f"{row['id']:<16} {row['provider_id']:<28} {row['name']}")


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records") if not frame.empty else []


def _pct(value) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}%"


@click.command("funnel")
@HOME_OPTION
@click.option("--measure", "measure_code", required=True, help="KPI code, e.g. ttg_settled_accommodation.")
@click.option("--period", required=True, type=PERIOD, help="Last month of the window, YYYY-MM.")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 60), help="Months pooled.")
@JSON_OPTION
def funnel_command(home, measure_code, period, months, as_json):
    """Every area's rate of a KPI against the national rate, with 95% and 99.8% funnel limits by volume."""
    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from contracts.benchmark import funnel

    settings = _settings(home)
    require_judged_month(settings, period)
    with session_scope(settings) as session:
        frame = funnel(session, measure_code, period, months=months)
    if frame.empty:
        raise NotFoundError(f"no values of {measure_code} in the {months} months to {period}: "
                            "run `cjmonitor run` (or `cjmonitor demo`) first")
    result = {"measure": measure_code, "period": period, "months": months,
              "national": float(frame["national"].iloc[0]), "areas": _records(frame)}
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(f"{measure_code}: {months} months to {period}; national rate {_pct(result['national'])}")
    for row in result["areas"]:
        click.echo(f"  {row['area_name']:<34} {row['contract_id']:<16} {int(row['denominator']):>7} cases "
                   f"{_pct(row['rate']):>7}  99.8% limits {_pct(row['low_99_8'])} to {_pct(row['high_99_8'])}  "
                   f"{row['position']} ({row['assessment']})")


@click.command("breakdowns")
@HOME_OPTION
@click.option("--measure", "measure_code", required=True,
              help="crc_orders_completed, crc_plan_15wd or reo_binary_12m.")
@click.option("--period", required=True, type=PERIOD, help="Last month of the window, YYYY-MM.")
@click.option("--area", "area_code", default=None, help="Only this area (ONS code).")
@click.option("--contract", "contract_id", default=None, help="Only this contract.")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 60), help="Months pooled.")
@JSON_OPTION
def breakdowns_command(home, measure_code, period, area_code, contract_id, months, as_json):
    """A KPI by sex, age band, young adults, ethnic group and care leavers, with disproportionality ratios.

    Counts are not disclosure-controlled here (this is the analysts' view); published reports suppress them.
    """
    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from contracts.benchmark import breakdowns

    settings = _settings(home)
    require_judged_month(settings, period, contract_id=contract_id, area_code=area_code)
    with session_scope(settings) as session:
        frame = breakdowns(session, measure_code, period, alpha=settings.alpha, months=months,
                           contract_ids=[contract_id] if contract_id else None, area_code=area_code)
    if frame.empty:
        raise NotFoundError(f"no person-level records for {measure_code} in the {months} months to {period}"
                            + (f" for {contract_id or area_code}" if contract_id or area_code else ""))
    result = {"measure": measure_code, "period": period, "first_period": frame["first_period"].iloc[0],
              "last_period": frame["last_period"].iloc[0], "alpha": settings.alpha, "groups": _records(frame)}
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(f"{measure_code}, {result['first_period']} to {result['last_period']}: each group against everyone "
               f"else ({100 * (1 - settings.alpha):.0f}% intervals)")
    current = None
    for row in result["groups"]:
        if row["dimension_title"] != current:
            current = row["dimension_title"]
            click.echo(current)
        click.echo(f"  {row['group']:<22} {int(row['numerator']):>6}/{int(row['denominator']):<7} {_pct(row['rate']):>7} "
                   f"({_pct(row['ci_low'])} to {_pct(row['ci_high'])})  ratio {row['ratio']:.2f} "
                   f"({row['ratio_low']:.2f} to {row['ratio_high']:.2f})  {row['reading']}")


@click.command("value")
@HOME_OPTION
@click.option("--area", "area_code", default=None, help="Only this area (ONS code).")
@click.option("--contract", "contract_id", default=None, help="Only this contract.")
@JSON_OPTION
def value_command(home, area_code, contract_id, as_json):
    """Reoffences avoided (comparison-group effect x people served) and their estimated worth, with intervals."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.value import format_gbp, value_view

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        result = value_view(session, unit_cost_gbp=settings.reoffence_unit_cost_gbp, area_code=area_code,
                            contract_id=contract_id)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(result["label"])
    click.echo(f"Unit cost of a reoffence: £{result['unit_cost_gbp']:,.0f} (CJMONITOR_REOFFENCE_UNIT_COST_GBP)")
    if not result["lines"]:
        click.echo("No comparison-group result on reoffending frequency yet for this selection.")
        return
    for line in result["lines"]:
        click.echo(f"  {line['contract_id']} ({line['cohorts']}): {line['sentence']}")
    total = result["total"]
    click.echo(f"Total: {total['reoffences_avoided']['estimate']:.0f} reoffences avoided "
               f"({total['reoffences_avoided']['low']:.0f} to {total['reoffences_avoided']['high']:.0f}), "
               f"about {format_gbp(total['value_gbp']['estimate'])} ({format_gbp(total['value_gbp']['low'])} to "
               f"{format_gbp(total['value_gbp']['high'])}).")


@click.command("vary")
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. CRC-E23000005.")
@click.option("--from", "effective", required=True, type=PERIOD, help="First month under the new terms, YYYY-MM.")
@click.option("--kind", default="renegotiation", show_default=True,
              type=click.Choice(["renegotiation", "new_provider", "service_redesign", "rollout", "other"]))
@click.option("--description", required=True, help="What changed, in plain words (shown in the evidence pack).")
@click.option("--measure", "measure_code", default=None, help="The KPI the change targets (needed for new terms).")
@click.option("--target", type=float, default=None, help="New target as a proportion, e.g. 0.9 for 90% (a days or count KPI: in days or a count, e.g. 4).")
@click.option("--tolerance", type=float, default=None, help="New tolerance band, e.g. 0.05 for 5 points.")
@click.option("--min-volume", type=int, default=None, help="New minimum volume for a verdict.")
@click.option("--credit-pct", type=float, default=None, help="New service credit, % of the monthly fee per Red month.")
@JSON_OPTION
def vary_command(home, contract_id, effective, kind, description, measure_code, target, tolerance, min_volume,
                 credit_pct, as_json):
    """Record a contract variation and the KPI terms it restates (the old terms are closed, never deleted).

    Rerun `cjmonitor run` afterwards: every month is then judged against the terms in force then, and the
    variation becomes a break for ITS and SPC.
    """
    from datetime import date

    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.variations import NewTerms, record_variation

    settings = _settings(home)
    ensure_schema(settings)
    year, month = (int(x) for x in effective.split("-"))
    with session_scope(settings) as session:
        result = record_variation(session, contract_id, date(year, month, 1), kind, description,
                                  measure_code=measure_code,
                                  terms=NewTerms(target, tolerance, min_volume, credit_pct))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{contract_id}: {kind} from {result['effective_date']} recorded.")
    if result["terms"]:
        t = result["terms"]
        was = f" (was {100 * t['replaces']['value']:.0f}%)" if t["replaces"] else ""
        click.echo(f"  {t['measure_code']}: target {100 * t['value']:.0f}%{was}, tolerance {100 * t['tolerance']:.0f} points, "
                   f"minimum volume {t['min_volume']}, service credit {t['service_credit_pct']:g}% from {t['valid_from']}")
    click.echo("Run `cjmonitor run` to judge every month against the terms in force then.")


@click.command("targets")
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id.")
@JSON_OPTION
def targets_command(home, contract_id, as_json):
    """A contract's KPI terms over time and its variations: the renegotiation history."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.variations import target_history

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        result = target_history(session, contract_id)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{contract_id}: KPI terms")
    for t in result["targets"]:
        until = t["valid_to"] or "now"
        click.echo(f"  {t['measure_code']:<28} {t['valid_from']} to {until:<10} target {100 * t['target']:.0f}% "
                   f"tolerance {100 * t['tolerance']:.0f} pts, min volume {t['min_volume']}, credit {t['service_credit_pct']:g}%")
    click.echo("Variations")
    for v in result["variations"] or [{"effective_date": "-", "kind": "none", "measure_code": None, "description": ""}]:
        click.echo(f"  {v['effective_date']} {v['kind']} {v['measure_code'] or ''} {v['description']}")

