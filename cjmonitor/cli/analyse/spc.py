"""`cjmonitor analyse spc`: a Making Data Count SPC chart on any CSV."""

from __future__ import annotations

import json
from pathlib import Path

import click

CHART_CHOICES = ("xmr", "p", "pp", "u", "up", "c", "run")


@click.command("spc")
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--time", "time_column", required=True, help="Column of periods (YYYY-MM, dates or labels), in order.")
@click.option("--value", "value_column", required=True, help="The measure, or the numerator with --denominator.")
@click.option("--denominator", default=None, help="Cases (a proportion) or exposure (a rate) column.")
@click.option("--chart", type=click.Choice(CHART_CHOICES), default=None,
              help="Default: run below 12 points, XmR without a denominator, p/p' or u/u' with one.")
@click.option("--improvement", type=click.Choice(["higher", "lower", "neutral"]), default="higher", show_default=True)
@click.option("--target", type=float, default=None, help="For the assurance icon.")
@click.option("--rebase", "rebases", multiple=True,
              help="YYYY-MM (or a time label) where the limits are recalculated; repeatable. "
                   "Add a reason after '=': --rebase '2024-04=new referral route'.")
@click.option("--fix-after", type=int, default=None, help="Freeze each segment's limits at those of its first N points.")
@click.option("--two-of-three", type=click.Choice(["2023", "pre-2023"]), default="2023", show_default=True)
@click.option("--screen-outliers", is_flag=True, help="XmR: leave out moving ranges >= 3.267 x their mean.")
@click.option("--json", "as_json", is_flag=True)
def spc_command(csv_path, time_column, value_column, denominator, chart, improvement, target, rebases, fix_after,
                two_of_three, screen_outliers, as_json):
    """SPC chart (MDC rules and icons) of one series in a CSV: limits, signals, variation and assurance icons."""
    import pandas as pd

    from cjmonitor.errors import InputFileError
    from outcomes.spc import Rebase, spc

    try:
        data = pd.read_csv(csv_path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{csv_path}: cannot be read as CSV ({type(exc).__name__}: {exc})") from None
    for column in (time_column, value_column, denominator):
        if column is not None and column not in data.columns:
            raise InputFileError(f"{csv_path}: no column '{column}' (columns: {', '.join(map(str, data.columns))})")
    for column in (value_column, denominator):
        if column is None:
            continue
        numbers = pd.to_numeric(data[column], errors="coerce")
        bad = numbers.isna()
        if bad.any():
            row = int(bad.idxmax()) + 2  # header is row 1
            raise InputFileError(f"{csv_path}, row {row}, column '{column}': {data[column].iloc[row - 2]!r} is not a "
                                 "number; fill or remove that row")
        data[column] = numbers
    times = data[time_column].astype(str)
    if times.duplicated().any():
        dup = times[times.duplicated()].iloc[0]
        raise InputFileError(f"{csv_path}, column '{time_column}': '{dup}' appears twice; one row per period")
    order = pd.to_datetime(times, errors="coerce", format="mixed")
    if order.notna().all():
        data = data.assign(_order=order).sort_values("_order")
        times = data[time_column].astype(str)
    parsed = []
    for item in rebases:
        at, _, reason = item.partition("=")
        at = at.strip()
        if at not in set(times):
            matches = [t for t in times if t.startswith(at)]
            if len(matches) != 1:
                raise click.BadParameter(f"'{at}' is not a period in column '{time_column}' (first {times.iloc[0]}, "
                                         f"last {times.iloc[-1]})", param_hint="--rebase")
            at = matches[0]
        parsed.append(Rebase(at, reason.strip() or "declared break"))
    result = spc(data[value_column].to_numpy(dtype=float),
                 None if denominator is None else data[denominator].to_numpy(dtype=float), list(times), chart=chart,
                 improvement=improvement, target=target, rebases=parsed, fix_after=fix_after,
                 two_of_three=two_of_three, screen_outliers=screen_outliers)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())
