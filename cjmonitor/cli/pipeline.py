"""``cjmonitor run`` and ``cjmonitor render``."""

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
    kpis = derive(settings)
    judged = judge(settings)
    findings = analyse(settings)
    rendered = render(settings, period, list(contracts) or None)
    result = {"ingest": {k: getattr(summary, k) for k in ("accepted", "rejected", "duplicate", "unrecognised")},
              "kpi_values": kpis, "judgements": judged, "findings": findings, **rendered}
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"loaded {summary.accepted} returns ({summary.rejected} rejected); {kpis} KPI values; "
                   f"{len(rendered['scorecards'])} scorecards for {rendered['period']}; index {rendered['index']}")


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
