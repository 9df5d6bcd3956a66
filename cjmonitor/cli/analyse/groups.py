"""``cjmonitor analyse match|ipw|did [--staggered]|synth|mde``: the comparison-group methods on any CSV.

Registered under ``cjmonitor analyse`` by ``cjmonitor.cli``. Unreadable files and missing columns
raise ``InputFileError``; bad data raises ``OutcomesError``; the CLI group prints either as
"error: ..." and exits 2.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cjmonitor.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

CSV_OPTION = click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False),
                          help="Input CSV, one row per person (or per unit and period).")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
ALPHA_OPTION = click.option("--alpha", type=float, default=0.05, show_default=True,
                            help="Significance level; intervals are at 1 - alpha.")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _read_csv(path: str, columns: list[str], text_columns: list[str] = ()) -> pd.DataFrame:
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        frame = pd.read_csv(file, dtype={c: str for c in text_columns} or None)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise InputFileError(f"{path}: cannot be read as CSV ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path}: column(s) {', '.join(repr(c) for c in missing)} not found; the file has "
                             f"{', '.join(map(str, frame.columns[:30]))}")
    return frame


def _emit(result, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(result.summary())


def _quietly(function, *args, **kwargs):
    """Run a method with its warnings kept on the result (and shown in its summary), not on stderr twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


GROUP_OPTIONS = [
    CSV_OPTION,
    click.option("--treatment", required=True, help="0/1 column: 1 = served by the service."),
    click.option("--outcome", required=True, help="Outcome column (0/1 such as reoffended_12m, or a count)."),
    click.option("--covariates", required=True, help="Comma-separated covariate columns for the propensity score."),
    click.option("--penalty", type=float, default=0.0, show_default=True,
                 help="Ridge penalty for the propensity model (0 = plain logistic)."),
    ALPHA_OPTION,
    JSON_OPTION,
]


def _group_options(function):
    for option in reversed(GROUP_OPTIONS):
        function = option(function)
    return function


@click.command("match")
@_group_options
@click.option("--exact", default=None, help="Comma-separated columns to match on exactly (e.g. sex,sentence_type).")
@click.option("--caliper", type=float, default=0.2, show_default=True,
              help="Caliper in standard deviations of the logit propensity score (0 = none).")
@click.option("--ratio", type=click.IntRange(min=1), default=1, show_default=True, help="Comparison people per treated person.")
@click.option("--replace", is_flag=True, help="Match with replacement (a comparison person may be reused).")
def match_command(csv_path, treatment, outcome, covariates, penalty, alpha, as_json, exact, caliper, ratio, replace):
    """Propensity-score matching: ATT with an Abadie-Imbens interval and a balance table."""
    from outcomes.matching import match

    covs, exact_cols = _split(covariates), _split(exact)
    frame = _read_csv(csv_path, [treatment, outcome, *covs, *exact_cols])
    result = _quietly(match, frame, treatment, outcome, covs, exact=exact_cols or None,
                      caliper=None if caliper == 0 else caliper, ratio=ratio, replace=replace, alpha=alpha,
                      penalty=penalty)
    _emit(result, as_json)


@click.command("ipw")
@_group_options
@click.option("--max-weight-quantile", type=float, default=None,
              help="Winsorise comparison weights at this quantile (e.g. 0.99).")
@click.option("--no-common-support", is_flag=True, help="Keep people outside the other group's score range.")
def ipw_command(csv_path, treatment, outcome, covariates, penalty, alpha, as_json, max_weight_quantile,
                no_common_support):
    """Inverse-probability weighting (ATT weights) with weight diagnostics and a balance table."""
    from outcomes.weighting import ipw

    covs = _split(covariates)
    frame = _read_csv(csv_path, [treatment, outcome, *covs])
    result = _quietly(ipw, frame, treatment, outcome, covs, alpha=alpha, penalty=penalty,
                      common_support=not no_common_support, max_weight_quantile=max_weight_quantile)
    _emit(result, as_json)


@click.command("did")
@CSV_OPTION
@click.option("--unit", required=True, help="Unit column (standard errors are clustered on it).")
@click.option("--time", "time_col", required=True, help="Time column (post must be constant within each time).")
@click.option("--outcome", required=True, help="Outcome column.")
@click.option("--treated", default=None, help="0/1 column: the unit is in the treated group (2x2 design).")
@click.option("--post", default=None, help="0/1 column: the row is after the change (2x2 design).")
@click.option("--staggered", is_flag=True, help="Staggered adoption: Callaway & Sant'Anna group-time effects.")
@click.option("--first-treated", default=None, help="With --staggered: the first period each unit was treated "
                                                     "(a value of --time; 0 or blank for never treated).")
@click.option("--control", type=click.Choice(["never", "notyet"]), default="never", show_default=True,
              help="With --staggered: never-treated units only, or also units not yet treated.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --staggered: multiplier-bootstrap draws (0 = analytic standard errors).")
@ALPHA_OPTION
@JSON_OPTION
def did_command(csv_path, unit, time_col, outcome, treated, post, staggered, first_treated, control, bootstrap, alpha,
                as_json):
    """Difference-in-differences: the 2x2 design, or staggered adoption (--staggered) with cluster-robust errors."""
    if staggered:
        if not first_treated:
            raise click.UsageError("--staggered needs --first-treated COL (the first period each unit was treated)")
        from outcomes.staggered import staggered_did

        frame = _read_csv(csv_path, [unit, time_col, outcome, first_treated])
        result = _quietly(staggered_did, frame, unit, time_col, outcome, first_treated, control=control,
                          alpha=alpha, bootstrap=bootstrap)
        _emit(result, as_json)
        return
    if not (treated and post):
        raise click.UsageError("the 2x2 design needs --treated COL and --post COL (or use --staggered --first-treated COL)")
    from outcomes.did import did

    frame = _read_csv(csv_path, [unit, time_col, outcome, treated, post])
    result = _quietly(did, frame, outcome, treated, post, unit=unit, time=time_col, alpha=alpha)
    _emit(result, as_json)


@click.command("synth")
@CSV_OPTION
@click.option("--unit", required=True, help="Unit (area) column.")
@click.option("--time", "time_col", required=True, help="Time column (numbers, or text that sorts in time order such as 2024-09).")
@click.option("--outcome", required=True, help="Outcome column.")
@click.option("--treated", "treated_unit", required=True, help="The unit that changed (a value of --unit).")
@click.option("--intervention", required=True, help="First time affected (a value comparable with --time).")
@ALPHA_OPTION
@JSON_OPTION
def synth_command(csv_path, unit, time_col, outcome, treated_unit, intervention, alpha, as_json):
    """Synthetic control with placebo-in-space inference."""
    import pandas as pd

    from outcomes.errors import OutcomesError
    from outcomes.synth import synthetic_control

    frame = _read_csv(csv_path, [unit, time_col, outcome], text_columns=[unit])
    when = intervention
    if pd.api.types.is_numeric_dtype(frame[time_col]):
        try:
            when = float(intervention)
        except ValueError as exc:
            raise OutcomesError(f"--intervention {intervention!r} must be a number like the values of {time_col!r}") from exc
    else:
        frame[time_col] = frame[time_col].astype(str)
    _emit(synthetic_control(frame, unit, time_col, outcome, treated_unit, when, alpha=alpha), as_json)


@click.command("mde")
@click.option("--n-treated", type=click.IntRange(min=1), required=True, help="Treated cohort size.")
@click.option("--n-control", type=click.IntRange(min=1), required=True, help="Comparison group size.")
@click.option("--base-rate", type=float, required=True, help="Comparison reoffending rate (0-1), e.g. 0.33.")
@click.option("--power", type=float, default=0.8, show_default=True, help="Power.")
@ALPHA_OPTION
@JSON_OPTION
def mde_command(n_treated, n_control, base_rate, power, alpha, as_json):
    """Minimum detectable effect for a cohort: the smallest reduction a comparison could show."""
    from outcomes.power import mde_two_proportions

    _emit(mde_two_proportions(n_treated, n_control, base_rate, alpha=alpha, power=power), as_json)
