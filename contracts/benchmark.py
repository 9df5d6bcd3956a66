"""Benchmarking and breakdowns: where a contract stands among all areas, and who its service works less well for.

* Funnel plot data (Spiegelhalter 2005): each contract's rate over a window, pooled from its monthly
  KPI values, against the national rate of the same measure with 95% and 99.8% limits by volume. A
  point outside the 99.8% limits is very unlikely to be chance; outside 95% is worth a look.
* Breakdowns by sex, age band, young adults (18-24), ethnic group and care-leaver flag from the
  person-level records, each group's rate with its Wilson interval and a disproportionality ratio
  (the group's rate over everyone else's, Katz log interval). Wording follows the measure's direction:
  a lower completion rate is worse, a lower reoffending rate is better.

Counts here are not disclosure-controlled: documents that are published apply
``reports.suppression`` before showing them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.errors import ContractsError
from contracts.models import Area, Contract, KpiValue, Provider
from contracts.sqlfiles import load_sql
from outcomes.proportions import funnel_limits, rate_ratio, wilson_interval

FUNNEL_ALPHAS = {"95": 0.05, "99_8": 0.002}

# Measures with a person-level breakdown: the named SQL that counts them by the equality fields.
BREAKDOWN_SQL = {
    "crc_orders_completed": "breakdown_crc_orders_completed",
    "crc_plan_15wd": "breakdown_crc_sentence_plan",
    "reo_binary_12m": "breakdown_reoffending_binary",
}
DIMENSIONS = {
    "sex": "Sex",
    "age_band": "Age band",
    "young_adult": "Young adults (18-24) and older",
    "ethnicity_group": "Ethnic group",
    "care_leaver": "Care leaver",
}
NOT_KNOWN = "Not known"


def _measure(code: str):
    if code not in MEASURES_BY_CODE:
        raise ContractsError(f"no measure '{code}': `cjmonitor specs` and the README list the KPI catalogue")
    return MEASURES_BY_CODE[code]


def _window(period: str, months: int) -> tuple[str, str]:
    end = pd.Period(period, "M")
    return str(end - (months - 1)), period


def funnel(session: Session, measure_code: str, period: str, *, months: int = 12) -> pd.DataFrame:
    """Every contract's pooled rate of ``measure_code`` over the ``months`` to ``period`` against the national rate.

    Derived values win over provider-reported ones for the same contract and month, as in the judgement.
    Columns: contract_id, area_code, area_name, provider_id, numerator, denominator, rate, national,
    low_95, high_95, low_99_8, high_99_8, position ("within limits", "above/below the 95% limits" ...),
    assessment ("better", "worse" than expected, or "as expected").
    """
    measure = _measure(measure_code)
    first, last = _window(period, months)
    # Plain columns, not ORM objects: this runs once per KPI in every evidence pack.
    rows = session.exec(select(KpiValue.contract_id, KpiValue.period, KpiValue.numerator, KpiValue.denominator,
                               KpiValue.source).where(KpiValue.measure_code == measure_code, KpiValue.period >= first,
                                                      KpiValue.period <= last)).all()
    frame = pd.DataFrame([tuple(r) for r in rows],
                         columns=["contract_id", "period", "numerator", "denominator", "source"])
    if frame.empty:
        return frame
    frame["rank"] = (frame["source"] != "derived").astype(int)
    frame = frame.sort_values("rank").drop_duplicates(["contract_id", "period"])
    pooled = frame.groupby("contract_id", as_index=False)[["numerator", "denominator"]].sum()
    pooled = pooled[pooled["denominator"] > 0].reset_index(drop=True)
    if pooled.empty:
        return pooled
    contracts = {c: (area, provider) for c, area, provider in session.exec(
        select(Contract.id, Contract.area_code, Contract.provider_id)
        .where(Contract.id.in_(list(pooled["contract_id"])))).all()}
    areas = dict(session.exec(select(Area.code, Area.name)).all())
    providers = dict(session.exec(select(Provider.id, Provider.name)).all())
    pooled["area_code"] = pooled["contract_id"].map(lambda c: contracts[c][0])
    pooled["area_name"] = pooled["area_code"].map(areas)
    pooled["provider_id"] = pooled["contract_id"].map(lambda c: contracts[c][1])
    pooled["provider_name"] = pooled["provider_id"].map(providers)
    pooled["rate"] = pooled["numerator"] / pooled["denominator"]
    national = float(pooled["numerator"].sum() / pooled["denominator"].sum())
    pooled["national"] = national
    for label, alpha in FUNNEL_ALPHAS.items():
        pooled[f"low_{label}"], pooled[f"high_{label}"] = funnel_limits(national, pooled["denominator"], alpha)
    above_998, below_998 = pooled["rate"] > pooled["high_99_8"], pooled["rate"] < pooled["low_99_8"]
    above_95, below_95 = pooled["rate"] > pooled["high_95"], pooled["rate"] < pooled["low_95"]
    pooled["position"] = np.select([above_998, below_998, above_95, below_95],
                                   ["above the 99.8% limits", "below the 99.8% limits", "above the 95% limits",
                                    "below the 95% limits"], "within limits")
    good = above_998 if measure.direction == "higher" else below_998
    bad = below_998 if measure.direction == "higher" else above_998
    pooled["assessment"] = np.select([good, bad], ["better than expected", "worse than expected"], "as expected")
    pooled["first_period"], pooled["last_period"] = first, last
    columns = ["contract_id", "area_code", "area_name", "provider_id", "provider_name", "first_period", "last_period",
               "numerator", "denominator", "rate", "national", "low_95", "high_95", "low_99_8", "high_99_8",
               "position", "assessment"]
    return pooled[columns].sort_values("denominator").reset_index(drop=True)


def _group_labels(frame: pd.DataFrame, dimension: str) -> pd.Series:
    if dimension == "young_adult":
        return np.where(frame["age_band"].isin(["18-20", "21-24"]), "18-24 (young adult)", "25 and over")
    if dimension == "care_leaver":
        flag = frame["care_leaver"]
        return np.where(flag.isna(), NOT_KNOWN, np.where(flag.astype("boolean").fillna(False), "Care leaver",
                                                         "Not a care leaver"))
    return frame[dimension].fillna(NOT_KNOWN).astype(str)


def breakdown_counts(session: Session, measure_code: str, first_period: str, last_period: str) -> pd.DataFrame:
    """The named SQL's counts by contract, month and equality fields."""
    if measure_code not in BREAKDOWN_SQL:
        raise ContractsError(f"measure '{measure_code}' has no person-level breakdown; these do: "
                             f"{', '.join(BREAKDOWN_SQL)}")
    result = session.connection().execute(load_sql(BREAKDOWN_SQL[measure_code]),
                                          {"first_period": first_period, "last_period": last_period})
    return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


def breakdowns(session: Session, measure_code: str, period: str, *, alpha: float, months: int = 12,
               contract_ids: list[str] | None = None, area_code: str | None = None) -> pd.DataFrame:
    """Each group's rate and disproportionality ratio over the ``months`` to ``period``, for every dimension.

    For reoffending the window ends at the latest cohort known by ``period`` (outcomes take about 18 months).
    Columns: dimension, dimension_title, group, numerator, denominator, rate, ci_low, ci_high, rest_rate,
    ratio, ratio_low, ratio_high, difference (group minus the rest), reading (plain words), first_period,
    last_period, alpha.
    """
    measure = _measure(measure_code)
    first, last = _window(period, months)
    counts = breakdown_counts(session, measure_code, "0000-01" if measure.service_type == "reoffending" else first, last)
    if contract_ids is not None:
        counts = counts[counts["contract_id"].isin(contract_ids)]
    if area_code is not None:
        counts = counts[counts["area_code"] == area_code]
    if measure.service_type == "reoffending" and not counts.empty:
        first, last = _window(str(counts["period"].max()), months)
        counts = counts[(counts["period"] >= first) & (counts["period"] <= last)]
    if counts.empty:
        return pd.DataFrame()
    counts = counts.assign(numerator=counts["numerator"].astype(float), denominator=counts["denominator"].astype(float))
    total_num, total_den = counts["numerator"].sum(), counts["denominator"].sum()
    tables = []
    for dimension, title in DIMENSIONS.items():
        grouped = counts.assign(group=_group_labels(counts, dimension)).groupby("group", as_index=False)[
            ["numerator", "denominator"]].sum()
        grouped.insert(0, "dimension_title", title)
        grouped.insert(0, "dimension", dimension)
        tables.append(grouped)
    table = pd.concat(tables, ignore_index=True)
    table = table[table["denominator"] > 0].reset_index(drop=True)
    table["rate"] = table["numerator"] / table["denominator"]
    table["ci_low"], table["ci_high"] = wilson_interval(table["numerator"], table["denominator"], alpha)
    rest_num, rest_den = total_num - table["numerator"], total_den - table["denominator"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["rest_rate"] = np.where(rest_den > 0, rest_num / rest_den, np.nan)
    table["ratio"], table["ratio_low"], table["ratio_high"] = rate_ratio(
        table["numerator"], table["denominator"], rest_num, rest_den, alpha)
    table["difference"] = table["rate"] - table["rest_rate"]
    table["reading"] = [_reading(row, measure.direction, alpha) for row in table.itertuples()]
    table["first_period"], table["last_period"], table["alpha"] = first, last, alpha
    return table


def _reading(row, direction: str, alpha: float) -> str:
    if np.isnan(row.ratio_low):
        return "no one else to compare with"
    level = f"{100 * (1 - alpha):.0f}%"
    if row.ratio_low > 1 or row.ratio_high < 1:
        higher = row.ratio_low > 1
        better = higher == (direction == "higher")
        return (f"{'higher' if higher else 'lower'} than for everyone else ({'better' if better else 'worse'}); "
                f"the {level} interval of the ratio excludes 1")
    return f"no clear difference from everyone else (the {level} interval of the ratio includes 1)"
