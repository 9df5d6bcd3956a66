"""``cjmonitor ingest``: land, validate and load returns."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, QUIET_OPTION, _echo_json, _settings

PROBLEMS_SHOWN = 5  # `cjmonitor ingest` prints this many problems of each rejected file; the rest are in its error report


@click.command()
@HOME_OPTION
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_name", default=None, help="Only this configured source (see sources.toml).")
@click.option("--provider", default=None, help="Only this provider's files.")
@JSON_OPTION
@QUIET_OPTION
def ingest(home, paths, source_name, provider, as_json) -> None:
    """Land, validate and load new returns: the given files, or every configured source.

    Exit status: 0 when everything received was accepted (or had been already),
    1 when any file was quarantined, refused or not recognised, 2 on a usage or system error.
    """
    from cjmonitor.pipeline import ingest as run_ingest

    summary = run_ingest(_settings(home), provider, source_name=source_name, paths=list(paths) or None)
    if as_json:
        _echo_json(summary.to_dict())
    else:
        for outcome in summary.outcomes:
            if outcome["status"] != "accepted":
                click.echo(f"{outcome['status']:>12}  {outcome['file']}: {outcome['message']}")
            problems = outcome.get("problems") or []
            for problem in problems[:PROBLEMS_SHOWN]:
                where = f"row {problem['row']}" if problem["row"] is not None else "file"
                column = f", column {problem['column']}" if problem["column"] else ""
                click.echo(f"{'':>14}{where}{column}: {problem['message']}")
            if outcome.get("errors", 0) > PROBLEMS_SHOWN and outcome["status"] == "rejected":
                click.echo(f"{'':>14}and {outcome['errors'] - PROBLEMS_SHOWN} more in the error report")
        click.echo(f"accepted {summary.accepted}, quarantined {summary.rejected}, already received {summary.duplicate}, "
                   f"refused {summary.refused}, unrecognised {summary.unrecognised}")
        for report in summary.error_reports:
            click.echo(f"error report: {report}")
    if summary.rejected or summary.refused or summary.unrecognised:
        sys.exit(1)
