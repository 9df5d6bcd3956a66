"""`cjmonitor analyse its`: an interrupted time series on any CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cjmonitor.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: cannot be read as CSV ({type(exc).__name__}: {exc})") from None


@click.command("its")
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--time", "time_column", required=True, help="Column of months (YYYY-MM or dates) or whole time steps.")
@click.option("--outcome", required=True, help="The series (a count or numerator for poisson/binomial).")
@click.option("--intervention", "interventions", required=True, multiple=True, help="YYYY-MM[-DD]; repeatable.")
@click.option("--family", type=click.Choice(["gaussian", "poisson", "binomial"]), default="gaussian", show_default=True)
@click.option("--offset", default=None, help="Poisson exposure column (population, caseload).")
@click.option("--denominator", default=None, help="Binomial denominator column.")
@click.option("--seasonality", default="none", show_default=True, help="none, month or fourier:K.")
@click.option("--scale", type=click.Choice(["model", "pearson"]), default="model", show_default=True,
              help="pearson = quasi-Poisson / quasi-binomial errors for overdispersed data.")
@click.option("--errors", type=click.Choice(["auto", "ols", "hac", "ar1"]), default="auto", show_default=True,
              help="Gaussian error model.")
@click.option("--level-only", is_flag=True, help="Level changes only (no slope-change terms).")
@click.option("--control-csv", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A comparison series with the same columns: the difference (outcome minus control) is analysed.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def its_command(csv_path, time_column, outcome, interventions, family, offset, denominator, seasonality, scale, errors,
                level_only, control_csv, alpha, as_json):
    """Interrupted time series (segmented regression) on a CSV: level and slope change at each intervention."""
    from outcomes.its import fit_its

    data = _read(csv_path)
    if control_csv is not None:
        if family != "gaussian":
            raise click.BadParameter("a controlled ITS here analyses the difference series: use --family gaussian",
                                     param_hint="--control-csv")
        control = _read(control_csv)
        for frame, name in ((data, csv_path), (control, control_csv)):
            for column in (time_column, outcome):
                if column not in frame.columns:
                    raise InputFileError(f"{name}: no column '{column}'")
        merged = data[[time_column, outcome]].merge(control[[time_column, outcome]], on=time_column,
                                                    suffixes=("", "_control"), how="inner", validate="one_to_one")
        if len(merged) != len(data):
            raise InputFileError(f"{control_csv}: the comparison series does not cover every period of {csv_path}")
        merged[outcome] = merged[outcome] - merged[f"{outcome}_control"]
        data = merged
    result = fit_its(data, time_column, outcome, list(interventions), family=family, offset=offset,
                     denominator=denominator, seasonality=seasonality, slope_change=not level_only, scale=scale,
                     errors=errors, alpha=alpha)
    if as_json:
        out = result.to_dict()
        out["controlled"] = control_csv is not None
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(result.summary())
