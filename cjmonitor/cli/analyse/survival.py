"""``cjmonitor analyse survival``: time to first reoffence on any CSV (Kaplan-Meier, RMST, Cox).

Registered under ``cjmonitor analyse`` by ``cjmonitor.cli``; heavy imports stay inside the command.
"""

from __future__ import annotations

import click

from cjmonitor.cli.analyse.groups import (
    ALPHA_OPTION,
    CSV_OPTION,
    JSON_OPTION,
    _emit,
    _quietly,
    _read_csv,
    _split,
)


@click.command("survival")
@CSV_OPTION
@click.option("--duration", required=True, help="Time to first reoffence, or to the end of follow-up if none.")
@click.option("--event", required=True, help="0/1 column: 1 = the duration ended in a reoffence.")
@click.option("--treatment", required=True, help="0/1 column: 1 = served by the service.")
@click.option("--covariates", default=None, help="Comma-separated covariates (propensity score with --match, "
                                                  "else adjustment in the Cox model).")
@click.option("--match", "use_match", is_flag=True, help="Compare with a 1:1 propensity-matched comparison group.")
@click.option("--horizon", type=float, default=12.0, show_default=True,
              help="Restricted-mean horizon in the duration's unit (12 months, 365 days, 52 weeks).")
@click.option("--unit", "time_unit", default="months", show_default=True, help="The duration's unit, for the sentence.")
@ALPHA_OPTION
@JSON_OPTION
def survival_command(csv_path, duration, event, treatment, covariates, use_match, horizon, time_unit, alpha, as_json):
    """Time to first reoffence: Kaplan-Meier curves, restricted mean time difference, Cox hazard ratio."""
    from outcomes.survival import time_to_reoffence

    covs = _split(covariates)
    frame = _read_csv(csv_path, [duration, event, treatment, *covs])
    result = _quietly(time_to_reoffence, frame, duration, event, treatment, covariates=covs, match=use_match,
                      horizon=horizon, time_unit=time_unit, alpha=alpha)
    _emit(result, as_json)
