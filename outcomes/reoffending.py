"""Proven-reoffending measures for a person-level cohort, following the Ministry of Justice definitions.

A proven reoffence is an offence committed within 12 months of the cohort start (release from
custody, non-custodial sentence or caution) and proven by a conviction or caution within those
12 months or a further 6-month waiting period (MoJ, "Proven reoffending statistics: guide",
2023). The headline measures are the binary rate (share who reoffend), frequency (proven
reoffences per person and per reoffender) and days to first proven reoffence.

:func:`proven_reoffending` derives the per-person flags from cohort and offence records;
:func:`reoffending_measures` summarises them, overall or by group (e.g. served / not served).

Examples
--------
>>> import pandas as pd
>>> cohort = pd.DataFrame({"reoffended_12m": [1, 0, 1, 0], "reoffences_12m": [3, 0, 1, 0],
...                        "days_to_first": [40, None, 200, None]})
>>> m = reoffending_measures(cohort)
>>> m.table.loc[0, ["binary_rate", "frequency_per_person", "frequency_per_reoffender"]].tolist()
[0.5, 1.0, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from outcomes._groups_common import binary_indicator, check_alpha, require_columns, require_complete
from outcomes.errors import OutcomesError
from outcomes.proportions import wilson_interval

__all__ = ["ReoffendingMeasures", "proven_reoffending", "reoffending_measures"]

FOLLOW_UP_MONTHS = 12
WAITING_MONTHS = 6


def proven_reoffending(cohort: pd.DataFrame, offences: pd.DataFrame, *, person: str = "person_id",
                       cohort_date: str = "cohort_date", offence_date: str = "offence_date",
                       disposal_date: str = "disposal_date", follow_up_months: int = FOLLOW_UP_MONTHS,
                       waiting_months: int = WAITING_MONTHS) -> pd.DataFrame:
    """Per-person proven-reoffending flags by the MoJ definition.

    An offence counts if committed after the cohort date and within ``follow_up_months`` of it, and
    proven (``disposal_date``: conviction or caution) within ``follow_up_months + waiting_months`` of
    the cohort date.

    Parameters
    ----------
    cohort : pandas.DataFrame
        One row per person: ``person`` and ``cohort_date``.
    offences : pandas.DataFrame
        One row per proven offence: ``person``, ``offence_date``, ``disposal_date``.

    Returns
    -------
    pandas.DataFrame
        The cohort with ``reoffended_12m`` (0/1), ``reoffences_12m`` (count) and ``days_to_first``
        (nullable integer, blank if no proven reoffence).
    """
    require_columns(cohort, [person, cohort_date])
    require_complete(cohort, [person, cohort_date])
    require_columns(offences, [person, offence_date, disposal_date])
    require_complete(offences, [person, offence_date, disposal_date])
    if cohort[person].duplicated().any():
        raise OutcomesError(f"{int(cohort[person].duplicated().sum())} people appear twice in the cohort; "
                            f"one row per person (their first qualifying event in the period)")
    start = pd.to_datetime(cohort[cohort_date], errors="coerce")
    if start.isna().any():
        raise OutcomesError(f"{int(start.isna().sum())} cohort dates in {cohort_date!r} are not dates")
    events = offences[[person, offence_date, disposal_date]].copy()
    events["_offence"] = pd.to_datetime(events[offence_date], errors="coerce")
    events["_disposal"] = pd.to_datetime(events[disposal_date], errors="coerce")
    if events[["_offence", "_disposal"]].isna().any().any():
        raise OutcomesError(f"some offence or disposal dates ({offence_date!r}, {disposal_date!r}) are not dates")
    if (events["_disposal"] < events["_offence"]).any():
        raise OutcomesError(f"{int((events['_disposal'] < events['_offence']).sum())} offences are proven before "
                            f"they were committed; check {offence_date!r} and {disposal_date!r}")
    people = pd.DataFrame({person: cohort[person].to_numpy(), "_start": start.to_numpy()})
    joined = events.merge(people, on=person, how="inner")
    window_end = joined["_start"] + pd.DateOffset(months=follow_up_months)
    proof_end = joined["_start"] + pd.DateOffset(months=follow_up_months + waiting_months)
    counts = joined[(joined["_offence"] > joined["_start"]) & (joined["_offence"] <= window_end)
                    & (joined["_disposal"] <= proof_end)]
    per_person = counts.groupby(person).agg(n=("_offence", "size"), first=("_offence", "min"))
    out = cohort.copy()
    n = out[person].map(per_person["n"]).fillna(0).astype(int)
    first = pd.to_datetime(out[person].map(per_person["first"]))
    out["reoffended_12m"] = (n > 0).astype(int).to_numpy()
    out["reoffences_12m"] = n.to_numpy()
    out["days_to_first"] = pd.array((first - start).dt.days, dtype="Int64")
    return out


@dataclass(frozen=True, eq=False)
class ReoffendingMeasures:
    """Proven-reoffending measures, one row per group.

    Attributes
    ----------
    table : pandas.DataFrame
        ``group``, ``n`` (cohort size), ``reoffenders``, ``binary_rate`` with Wilson ``rate_ci_low`` /
        ``rate_ci_high``, ``reoffences``, ``frequency_per_person``, ``frequency_per_reoffender``,
        ``mean_days_to_first``, ``median_days_to_first`` (among reoffenders).
    alpha : float
        Level of the rate intervals.
    """

    table: pd.DataFrame = field(repr=False)
    alpha: float

    def summary(self) -> str:
        lines = [f"{'group':<16}{'n':>8}{'rate':>8}{'CI':>16}{'per person':>12}{'per reoff.':>12}{'median days':>13}"]
        for r in self.table.itertuples():
            lines.append(f"{str(r.group)[:15]:<16}{r.n:>8}{100 * r.binary_rate:>7.1f}%"
                         f"{f'{100 * r.rate_ci_low:.1f}-{100 * r.rate_ci_high:.1f}%':>16}"
                         f"{r.frequency_per_person:>12.2f}{r.frequency_per_reoffender:>12.2f}"
                         f"{r.median_days_to_first:>13.0f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        records = self.table.astype(object).where(self.table.notna(), None).to_dict(orient="records")
        return {"alpha": self.alpha, "groups": [{k: (v.item() if isinstance(v, np.generic) else v)
                                                 for k, v in r.items()} for r in records]}


def reoffending_measures(data: pd.DataFrame, *, reoffended: str = "reoffended_12m",
                         reoffences: str = "reoffences_12m", days_to_first: str | None = "days_to_first",
                         group: str | None = None, alpha: float = 0.05) -> ReoffendingMeasures:
    """Binary rate, frequency (per person, per reoffender) and days to first reoffence (MoJ measures).

    Checks the columns agree with each other: a reoffender has at least one reoffence and a day
    count between 0 and 366; a non-reoffender has no reoffences and no day count.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person in the cohort.
    reoffended, reoffences, days_to_first : str
        Column names (``days_to_first`` may be None when not recorded).
    group : str, optional
        Column to split by (e.g. ``served``).
    alpha : float
        Level of the Wilson intervals for the rate.
    """
    check_alpha(alpha)
    columns = [reoffended, reoffences] + ([group] if group else [])
    require_columns(data, columns + ([days_to_first] if days_to_first else []))
    require_complete(data, columns)
    flag = binary_indicator(data[reoffended], "reoffended")
    if not pd.api.types.is_numeric_dtype(data[reoffences]):
        raise OutcomesError(f"column {reoffences!r} must hold counts of proven reoffences")
    count = data[reoffences].to_numpy(dtype=float)
    problems = []
    if (count < 0).any() or (count != np.round(count)).any():
        problems.append(f"{reoffences!r} has negative or fractional counts")
    if (flag & (count < 1)).any():
        problems.append(f"{int((flag & (count < 1)).sum())} reoffenders have no reoffences counted")
    if (~flag & (count > 0)).any():
        problems.append(f"{int((~flag & (count > 0)).sum())} non-reoffenders have reoffences counted")
    days = None
    if days_to_first:
        days = pd.to_numeric(data[days_to_first], errors="coerce").to_numpy(dtype=float)
        if (flag & np.isnan(days)).any():
            problems.append(f"{int((flag & np.isnan(days)).sum())} reoffenders have no {days_to_first!r}")
        if (~flag & ~np.isnan(days)).any():
            problems.append(f"{int((~flag & ~np.isnan(days)).sum())} non-reoffenders have a {days_to_first!r}")
        if ((days < 0) | (days > 366)).any():
            problems.append(f"{days_to_first!r} must lie between 0 and 366 days (the 12-month follow-up)")
    if problems:
        raise OutcomesError("inconsistent reoffending columns: " + "; ".join(problems))
    frame = pd.DataFrame({"group": data[group].to_numpy() if group else "all", "flag": flag.astype(int),
                          "count": count, "days": days if days is not None else np.nan})
    grouped = frame.groupby("group", sort=True)
    table = pd.DataFrame({
        "n": grouped.size(),
        "reoffenders": grouped["flag"].sum(),
        "reoffences": grouped["count"].sum(),
        "mean_days_to_first": grouped["days"].mean(),
        "median_days_to_first": grouped["days"].median(),
    }).reset_index()
    low, high = wilson_interval(table["reoffenders"], table["n"], alpha)
    table.insert(3, "binary_rate", table["reoffenders"] / table["n"])
    table.insert(4, "rate_ci_low", low)
    table.insert(5, "rate_ci_high", high)
    table.insert(7, "frequency_per_person", table["reoffences"] / table["n"])
    with np.errstate(invalid="ignore", divide="ignore"):
        table.insert(8, "frequency_per_reoffender",
                     np.where(table["reoffenders"] > 0, table["reoffences"] / table["reoffenders"].where(table["reoffenders"] > 0), np.nan))
    return ReoffendingMeasures(table, alpha)
