"""``cjmonitor distribute``."""

from __future__ import annotations

import sys

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _echo_json, _settings, require_judged_month
from cjmonitor.period import PERIOD


@click.command()
@HOME_OPTION
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@click.option("--dry-run", is_flag=True, help="Show who would get what; send nothing.")
@click.option("--resend", is_flag=True, help="Send again even to recipients who already had this period.")
@JSON_OPTION
def distribute(home, period, dry_run, resend, as_json) -> None:
    """Email each recipient their documents for a period (within their scopes only).

    Exit status 1 when any delivery failed or was refused.
    """
    from cjmonitor.distribute import distribute as run_distribute
    from cjmonitor.migrate import ensure_schema

    settings = _settings(home)
    ensure_schema(settings)
    require_judged_month(settings, period)
    result = run_distribute(settings, period, dry_run=dry_run, resend=resend)
    if as_json:
        _echo_json(result)
    else:
        for d in result["deliveries"]:
            click.echo(f"{d['status']:<16} {d['recipient']:<52} {len(d['documents'])} documents")
    if any(d["status"] in ("failed", "refused") for d in result["deliveries"]):
        sys.exit(1)
