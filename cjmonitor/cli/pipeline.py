"""``cjmonitor run``, ``cjmonitor derive``, ``cjmonitor judge`` and ``cjmonitor render``."""

from __future__ import annotations

import click

from cjmonitor.cli.common import (
    HOME_OPTION,
    JSON_OPTION,
    QUIET_OPTION,
    _echo_json,
    _settings,
    require_judged_month,
)
from cjmonitor.period import PERIOD


@click.command()
@HOME_OPTION
@click.option("--period", default=None, type=PERIOD, help="Month to render, YYYY-MM (default: the latest judged month).")
@click.option("--contract", "contracts", multiple=True, help="Only this contract (repeatable).")
@JSON_OPTION
@QUIET_OPTION
def run(home, period, contracts, as_json) -> None:
    """Ingest, derive KPIs, judge them, run the outcome methods and render scorecards (no scheduler needed)."""
    from cjmonitor.pipeline import analyse, derive, judge, render
    from cjmonitor.pipeline import ingest as run_ingest

    settings = _settings(home)
    summary = run_ingest(settings)
    derived = derive(settings)
    judged = judge(settings)
    findings = analyse(settings)
    rendered = render(settings, period, list(contracts) or None)
    result = {"ingest": {k: getattr(summary, k) for k in ("accepted", "rejected", "duplicate", "unrecognised")},
              "kpi_values": derived.stored, "judgements": judged.stored, "derive": derived.summary(),
              "judge": judged.summary(), "findings": findings, **rendered}
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"loaded {summary.accepted} returns ({summary.rejected} rejected); {derived.stored} KPI values; "
                   f"{len(rendered['scorecards'])} scorecards for {rendered['period']}; index {rendered['index']}")
        click.echo(derived.summary())
        click.echo(judged.summary())


def _period_range(period, first, last) -> tuple[str | None, str | None]:
    if period is not None and (first is not None or last is not None):
        raise click.UsageError("give --period, or --from and --to, not both")
    return (period, period) if period is not None else (first, last)


def _scoped(verb: str, unit: str):
    """The options of a period-scoped step: --period or --from/--to, --force, --json, --quiet."""
    def decorate(command):
        for option in reversed([
            HOME_OPTION,
            click.option("--period", default=None, type=PERIOD, help="Only this month, YYYY-MM."),
            click.option("--from", "first", default=None, type=PERIOD, help="From this month, YYYY-MM (inclusive)."),
            click.option("--to", "last", default=None, type=PERIOD, help="To this month, YYYY-MM (inclusive)."),
            click.option("--force", is_flag=True,
                         help=f"{verb} every {unit} in range, even those whose inputs are unchanged."),
            JSON_OPTION,
            QUIET_OPTION,
        ]):
            command = option(command)
        return command
    return decorate


def _report(counts, as_json) -> None:
    if as_json:
        _echo_json(counts.to_dict())
    else:
        click.echo(counts.summary())


@click.command()
@_scoped("Derive", "month")
def derive(home, period, first, last, force, as_json) -> None:
    """Derive KPI values from the loaded returns, for the months whose returns changed since they were derived.

    Each month's values record what they were derived from (the month's current accepted returns and the
    KPI definitions); a month whose inputs are unchanged is skipped. Prints "computed N months, skipped M".
    """
    from cjmonitor.pipeline import derive as run_derive

    first, last = _period_range(period, first, last)
    _report(run_derive(_settings(home), first, last, force=force), as_json)


@click.command()
@_scoped("Judge", "series")
def judge(home, period, first, last, force, as_json) -> None:
    """Judge KPI values against their targets, for the contract x measure series whose inputs changed.

    A series is judged whole (its SPC limits use every month of it); with a period or range, the series with a
    value in it are considered. A series whose values, targets and variations are unchanged is skipped.
    """
    from cjmonitor.pipeline import judge as run_judge

    first, last = _period_range(period, first, last)
    _report(run_judge(_settings(home), first, last, force=force), as_json)


@click.command()
@HOME_OPTION
@click.option("--period", default=None, type=PERIOD, help="Month to render, YYYY-MM (default: the latest judged month).")
@click.option("--contract", "contracts", multiple=True, help="Only this contract (repeatable).")
@JSON_OPTION
@QUIET_OPTION
def render(home, period, contracts, as_json) -> None:
    """Render provider scorecards and the index from what is already judged."""
    from cjmonitor.pipeline import render as run_render

    settings = _settings(home)
    if period is not None:
        require_judged_month(settings, period)
    rendered = run_render(settings, period, list(contracts) or None)
    if as_json:
        _echo_json(rendered)
    else:
        click.echo(f"{len(rendered['scorecards'])} scorecards for {rendered['period']}; index {rendered['index']}")
