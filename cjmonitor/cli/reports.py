"""`cjmonitor pack`: the renegotiation evidence pack of one contract."""

from __future__ import annotations

import json

import click

from cjmonitor.cli.common import require_judged_month
from cjmonitor.period import PERIOD


@click.command("pack")
@click.option("--home", type=click.Path(file_okay=False), default=None, help="cjmonitor home (var/ and out/).")
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--as-of", "as_of", default=None, type=PERIOD,
              help="Last month of evidence, YYYY-MM (default: the latest judged).")
@click.option("--json", "as_json", is_flag=True)
def pack(home, contract_id, as_of, as_json):
    """Write the renegotiation evidence pack of a contract: HTML, PDF and an XLSX annex."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    settings = get_settings(home)
    if as_of is not None:
        require_judged_month(settings, as_of, "--as-of", contract_id=contract_id)
    result = pipeline.evidence_pack(settings, contract_id, as_of)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"evidence pack for {contract_id} as of {result['as_of']}: {result['pdf']} (HTML {result['html']}, annex {result['xlsx']})")


@click.group("report")
def report():
    """Reports for commissioners."""


@report.command("monthly")
@click.option("--home", type=click.Path(file_okay=False), default=None, help="cjmonitor home (var/ and out/).")
@click.option("--area", "area_code", required=True, help="ONS code of the area, e.g. E23000005.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@click.option("--json", "as_json", is_flag=True)
def monthly(home, area_code, period, as_json):
    """Write an area's monthly commissioner report: HTML, PDF and XLSX."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    settings = get_settings(home)
    require_judged_month(settings, period, "--period", area_code=area_code)
    result = pipeline.monthly_report(settings, area_code, period)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"monthly report for {area_code}, {period}: {result['pdf']} (HTML {result['html']}, XLSX {result['xlsx']})")


@click.command("bundle")
@click.option("--home", type=click.Path(file_okay=False), default=None, help="cjmonitor home (var/ and out/).")
@click.option("--provider", "provider_id", required=True, help="Provider id, e.g. gateway-resettlement.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@click.option("--json", "as_json", is_flag=True)
def bundle(home, provider_id, period, as_json):
    """Zip a provider's own scorecards for a month (nothing about any other provider), to send or download."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    settings = get_settings(home)
    require_judged_month(settings, period)
    result = pipeline.provider_bundle(settings, provider_id, period)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{len(result['documents'])} scorecards for {provider_id}, {period}: {result['zip']}")
