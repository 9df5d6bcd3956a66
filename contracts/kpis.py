"""Derive KPI values per contract x measure x month from the current loaded returns.

Each measure's derivation is one named SQL file in ``sql/`` (``Measure.sql_name``);
provider-reported aggregates come from ``kpi_provider_reported.sql``. Deriving is
idempotent: the values for the period range are replaced in one transaction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert
from sqlmodel import Session

from contracts.catalogue import MEASURES
from contracts.errors import DeclaredKpiError
from contracts.models import KpiValue
from contracts.sqlfiles import load_sql

log = logging.getLogger(__name__)


def _collapse(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "numerator", "denominator", "submission_ids"])
    frame = frame.astype({"submission_id": int})
    grouped = frame.groupby(keys, as_index=False).agg(
        numerator=("numerator", "sum"),
        denominator=("denominator", "sum"),
        submission_ids=("submission_id", lambda ids: ",".join(str(i) for i in sorted(set(ids)))),
    )
    return grouped


def _framework_kpi_frames(session: Session, params: dict) -> list[pd.DataFrame]:
    """KPIs of the other frameworks (Probation Service 2021, CRS, ...) for the contracts whose register names them."""
    from sqlmodel import select

    from contracts.catalogue import FRAMEWORK_MEASURES
    from contracts.models import Target

    builtin = {m.code for m in MEASURES}
    wanted: dict[str, set[str]] = {}
    for contract_id, code in session.exec(select(Target.contract_id, Target.measure_code).distinct()).all():
        if code in FRAMEWORK_MEASURES and code not in builtin:
            wanted.setdefault(code, set()).add(contract_id)
    frames = []
    connection = session.connection()
    for code, contracts in sorted(wanted.items()):
        rows = connection.execute(load_sql(FRAMEWORK_MEASURES[code].sql_name), params).mappings().all()
        frame = _collapse(pd.DataFrame(rows), ["contract_id", "period"])
        frame = frame[frame["contract_id"].isin(contracts)].copy()
        frame["measure_code"] = code
        frame["source"] = "derived"
        frames.append(frame)
    return frames


def derive_kpis(session: Session, first_period: str = "0000-00", last_period: str = "9999-99", *,
                home: Path | None = None, alpha: float = 0.05) -> int:
    """Recompute every KPI value in the period range; returns the number of values written.

    Built-in KPIs come from ``sql/``; the KPIs of declared local services from
    ``contracts.declared_kpis`` (``home``: where their SQL files live; ``alpha``: their intervals).
    """
    from contracts.declared_kpis import declared_kpi_values

    params = {"first_period": first_period, "last_period": last_period}
    frames = []
    connection = session.connection()
    for measure in MEASURES:
        rows = connection.execute(load_sql(measure.sql_name), params).mappings().all()
        frame = _collapse(pd.DataFrame(rows), ["contract_id", "period"])
        frame["measure_code"] = measure.code
        frame["source"] = "derived"
        frames.append(frame)
    frames += _framework_kpi_frames(session, params)
    reported = pd.DataFrame(connection.execute(load_sql("kpi_provider_reported"), params).mappings().all())
    reported = _collapse(reported, ["contract_id", "measure_code", "period"])
    reported["source"] = "provider_reported"
    frames.append(reported)
    for frame in frames:
        frame["kind"] = "proportion"
    declared = declared_kpi_values(session, first_period, last_period, home=home, alpha=alpha)
    values = pd.concat([f for f in [*frames, declared] if not f.empty], ignore_index=True)
    if not values.empty:
        outside = values[(values["period"] < first_period) | (values["period"] > last_period)]
        if len(outside):
            row = outside.iloc[0]
            raise DeclaredKpiError(
                f"KPI {row['measure_code']!r} returned a value for {row['period']}, outside the months derived "
                f"({first_period}..{last_period}): its query must keep to s.period BETWEEN :first_period AND "
                ":last_period (each month's values are derived from that month's returns)")
    session.execute(delete(KpiValue).where(KpiValue.period >= first_period, KpiValue.period <= last_period))
    if values.empty:
        return 0
    for name in ("value", "ci_low", "ci_high"):
        if name not in values:
            values[name] = np.nan
    values["numerator"] = values["numerator"].astype(float)
    values["denominator"] = values["denominator"].astype(float)
    proportion = (values["kind"] == "proportion").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (values["numerator"] / values["denominator"]).where(values["denominator"] > 0)
    values["value"] = np.where(proportion, ratio, values["value"].astype(float))
    records = values[["contract_id", "measure_code", "period", "numerator", "denominator", "value", "source",
                      "submission_ids", "kind", "ci_low", "ci_high"]]
    records = records.astype(object).where(records.notna(), None).to_dict("records")
    session.execute(insert(KpiValue), records)
    log.info("derived %d KPI values for %s..%s", len(records), first_period, last_period)
    return len(records)
