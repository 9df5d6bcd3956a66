"""Shared pieces of the ``cjmonitor`` command line: the group class, options and output helpers."""

from __future__ import annotations

import json

import click

from cjmonitor.errors import USER_ERRORS


class _Group(click.Group):
    """A click group that turns user errors into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


def _quiet_callback(_ctx, _param, quiet: bool) -> bool:
    if quiet:
        from cjmonitor import progress

        progress.configure(enabled=False)
    return quiet


def _json_callback(_ctx, _param, as_json: bool) -> bool:
    if as_json:  # progress goes to stderr, and only to a terminal: the JSON on stdout stays clean
        from cjmonitor import progress

        progress.configure(json_output=True)
    return as_json


def _settings(home: str | None):
    from cjmonitor.settings import get_settings

    return get_settings(home)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


HOME_OPTION = click.option("--home", type=click.Path(file_okay=False), default=None,
                           help="cjmonitor home (holds var/ and out/); default $CJMONITOR_HOME or the current directory.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, callback=_json_callback,
                           help="Print the result as JSON.")
# Commands that show progress (demo, generate, ingest, run, render) also take --quiet after their name.
QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet_callback,
                            help="No progress bars or progress lines.")

def _count(n: int, noun: str) -> str:
    """'1 error', '2 errors'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def require_judged_month(settings, period: str, option: str = "--period", **scope) -> None:
    """The month must have judged KPIs (for the contract or area): the same check for every command.

    A contract or area that does not exist is refused first; see :func:`cjmonitor.period.require_judged`.
    """
    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.migrate import ensure_schema
    from cjmonitor.period import require_judged
    from contracts.models import Area, Contract

    ensure_schema(settings)
    with session_scope(settings) as session:
        if scope.get("contract_id") and session.get(Contract, scope["contract_id"]) is None:
            raise NotFoundError(f"no contract '{scope['contract_id']}': `cjmonitor contracts` lists them")
        if scope.get("area_code") and session.get(Area, scope["area_code"]) is None:
            raise NotFoundError(f"no area '{scope['area_code']}': `cjmonitor contracts` lists the areas")
        require_judged(session, period, option=option, **scope)
