"""`cjmonitor pack`: the renegotiation evidence pack of one contract."""

from __future__ import annotations

import json
import re

import click


@click.command("pack")
@click.option("--home", type=click.Path(file_okay=False), default=None, help="cjmonitor home (var/ and out/).")
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--as-of", "as_of", default=None, help="Last month of evidence, YYYY-MM (default: the latest judged).")
@click.option("--json", "as_json", is_flag=True)
def pack(home, contract_id, as_of, as_json):
    """Write the renegotiation evidence pack of a contract: HTML, PDF and an XLSX annex."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    if as_of is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", as_of):
        raise click.BadParameter(f"{as_of!r} is not a month written YYYY-MM", param_hint="--as-of")
    result = pipeline.evidence_pack(get_settings(home), contract_id, as_of)
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
@click.option("--period", required=True, help="Month, YYYY-MM.")
@click.option("--json", "as_json", is_flag=True)
def monthly(home, area_code, period, as_json):
    """Write an area's monthly commissioner report: HTML, PDF and XLSX."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period")
    result = pipeline.monthly_report(get_settings(home), area_code, period)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"monthly report for {area_code}, {period}: {result['pdf']} (HTML {result['html']}, XLSX {result['xlsx']})")


@click.command("bundle")
@click.option("--home", type=click.Path(file_okay=False), default=None, help="cjmonitor home (var/ and out/).")
@click.option("--provider", "provider_id", required=True, help="Provider id, e.g. gateway-resettlement.")
@click.option("--period", required=True, help="Month, YYYY-MM.")
@click.option("--json", "as_json", is_flag=True)
def bundle(home, provider_id, period, as_json):
    """Zip a provider's own scorecards for a month (nothing about any other provider), to send or download."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period")
    result = pipeline.provider_bundle(get_settings(home), provider_id, period)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{len(result['documents'])} scorecards for {provider_id}, {period}: {result['zip']}")


COMMANDS = [pack, report, bundle]
