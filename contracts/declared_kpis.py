"""Derive the KPIs of declared local services into ``kpi_value``, like the built-in ones.

Each declared KPI is compiled to one SQL query over its return's table (``contracts.records``), with the
bind parameters of the files in ``sql/`` (``:first_period``, ``:last_period``), and grouped per contract x
month x current accepted submission, exactly as the built-in derivations are:

- a proportion counts the rows meeting the denominator (``denominator``) and, among them, those meeting the
  numerator; contract-months with no eligible row give no value (as built-in KPIs);
- ``median_days``: the median days (calendar or England and Wales working days) from one date to another
  among the population rows with both dates; ``numerator`` = rows with both dates, ``denominator`` = rows in
  the population; interval by order statistics (distribution-free; none when n is too small for it);
- ``volume``: the rows meeting the condition in the month (0 when the return has rows for the contract but
  none meet it); ``denominator`` = 1 month; exact Poisson (Garwood) interval;
- ``sql``: a SQL file in the office's home returning ``contract_id, period, submission_id, numerator,
  denominator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binom, chi2
from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from contracts.declared import Condition, DeclaredKpi, ServiceSpec, load_services
from contracts.errors import DeclaredKpiError
from contracts.records import days_column, table_name

SQL_COLUMNS = ("contract_id", "period", "submission_id", "numerator", "denominator")


class _Compiler:
    """Conditions to SQL over the return table aliased ``r``; every leaf is two-valued (never NULL)."""

    def __init__(self, quote) -> None:
        self.quote = quote
        self.params: dict[str, object] = {}

    def col(self, name: str) -> str:
        return f"r.{self.quote(name)}"

    def days(self, start: str, end: str, working: bool) -> str:
        column, sign = days_column(start, end, working)
        return self.col(column) if sign > 0 else f"(-{self.col(column)})"

    def condition(self, c: Condition) -> str:
        if c.op == "all":
            return "1 = 1"
        if c.op == "column_not_null":
            return f"{self.col(c.column)} IS NOT NULL"
        if c.op == "column_in":
            names = []
            for value in c.values:
                name = f"v{len(self.params)}"
                self.params[name] = value
                names.append(f":{name}")
            return f"({self.col(c.column)} IS NOT NULL AND {self.col(c.column)} IN ({', '.join(names)}))"
        if c.op in ("within_days", "within_working_days"):
            days = self.days(c.start, c.end, c.op == "within_working_days")
            return f"({days} IS NOT NULL AND {days} BETWEEN 0 AND {int(c.days)})"
        if c.op == "not":
            return f"NOT ({self.condition(c.parts[0])})"
        joiner = " AND " if c.op == "and" else " OR "
        return "(" + joiner.join(self.condition(part) for part in c.parts) + ")"


_FROM = """FROM {table} r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.period = s.period
  AND s.period BETWEEN :first_period AND :last_period"""


def kpi_sql(spec: ServiceSpec, kpi: DeclaredKpi, dialect) -> tuple[str, dict]:
    """The query deriving one declared KPI (not for ``sql`` KPIs), and its literal parameters."""
    compiler = _Compiler(dialect.identifier_preparer.quote)
    source = _FROM.format(table=dialect.identifier_preparer.quote(table_name(spec.return_type)))
    group = "GROUP BY r.contract_id, s.period, s.id"
    head = "SELECT r.contract_id, s.period, s.id AS submission_id"
    if kpi.kind == "proportion":
        numerator = compiler.condition(kpi.numerator)
        if kpi.denominator.op == "all":
            query = (f"{head},\n  SUM(CASE WHEN {numerator} THEN 1 ELSE 0 END) AS numerator,\n  COUNT(*) AS denominator\n"
                     f"{source}\n{group}")
        else:
            denominator = compiler.condition(kpi.denominator)
            query = (f"{head},\n  SUM(CASE WHEN {numerator} THEN 1 ELSE 0 END) AS numerator,\n  COUNT(*) AS denominator\n"
                     f"{source}\n  AND {denominator}\n{group}")
    elif kpi.kind == "volume":
        counted = compiler.condition(kpi.volume)
        query = f"{head},\n  SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS numerator,\n  1 AS denominator\n{source}\n{group}"
    elif kpi.kind == "median_days":
        population = compiler.condition(kpi.denominator) if kpi.denominator else "1 = 1"
        days = compiler.days(kpi.median_days.start, kpi.median_days.end, kpi.median_days.working_days)
        query = f"{head}, {days} AS days\n{source}\n  AND {population}"
    else:
        raise ValueError(f"{kpi.code}: a sql KPI has no compiled query")
    return query, compiler.params


def median_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Median and its distribution-free interval by order statistics: ``[x_(r), x_(n-r+1)]``.

    ``r`` is the largest rank with ``P(Binomial(n, 1/2) <= r - 1) <= alpha / 2``, so the interval covers the
    population median with probability at least ``1 - alpha`` (Conover, Practical Nonparametric Statistics,
    3rd ed., section 3.2). Where no such rank exists (n <= 5 at 95%) the bounds are NaN.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    median = float(np.median(x))
    j = int(binom.ppf(alpha / 2, n, 0.5))
    if binom.cdf(j, n, 0.5) > alpha / 2:
        j -= 1
    r = j + 1  # 1-based rank
    if r < 1:
        return median, np.nan, np.nan
    return median, float(x[r - 1]), float(x[n - r])


def poisson_interval(count, exposure=1.0, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood 1936) interval for a Poisson rate ``count / exposure`` at ``1 - alpha``."""
    k = np.asarray(count, dtype=float)
    t = np.asarray(exposure, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, chi2.ppf(alpha / 2, 2 * k) / 2, 0.0) / t
        high = chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2 / t
    return np.where(t > 0, low, np.nan), np.where(t > 0, high, np.nan)


def _submission_ids(ids: pd.Series) -> str:
    return ",".join(str(i) for i in sorted(set(int(i) for i in ids)))


def _collapse(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["contract_id", "period", "numerator", "denominator", "submission_ids"])
    return frame.groupby(["contract_id", "period"], as_index=False).agg(
        numerator=("numerator", "sum"), denominator=("denominator", "sum"),
        submission_ids=("submission_id", _submission_ids))


def _run_sql_file(connection, spec: ServiceSpec, kpi: DeclaredKpi, home: Path | None, params: dict) -> pd.DataFrame:
    where = f"service {spec.id!r}, KPI {kpi.code!r}"
    if home is None:
        raise DeclaredKpiError(f"{where}: its SQL file {kpi.sql} lives in the office's home, which was not given")
    path = (Path(home) / kpi.sql).resolve()
    if not path.is_file():
        raise DeclaredKpiError(f"{where}: SQL file {kpi.sql} not found in {home}: write it there or change `sql`")
    try:
        rows = connection.execute(text(path.read_text()), params).mappings().all()
    except Exception as exc:  # the analyst's SQL: say which file failed and why, keep the database error's text
        raise DeclaredKpiError(f"{where}: SQL file {path} failed: {str(exc).splitlines()[0]}") from None
    frame = pd.DataFrame(rows)
    missing = [c for c in SQL_COLUMNS if c not in frame.columns] if not frame.empty else []
    if missing:
        raise DeclaredKpiError(f"{where}: SQL file {path} must return {', '.join(SQL_COLUMNS)}; "
                               f"it lacks {', '.join(missing)}")
    return frame


def declared_kpi_values(session: Session, first_period: str = "0000-00", last_period: str = "9999-99", *,
                        home: Path | None = None, alpha: float = 0.05,
                        services: dict[str, ServiceSpec] | None = None) -> pd.DataFrame:
    """One row per contract x declared KPI x month: contract_id, measure_code, period, numerator,
    denominator, value, kind, ci_low, ci_high, source, submission_ids."""
    from contracts.models import Contract

    services = load_services(session) if services is None else services
    columns = ["contract_id", "measure_code", "period", "numerator", "denominator", "value", "kind", "ci_low",
               "ci_high", "source", "submission_ids"]
    if not services:
        return pd.DataFrame(columns=columns)
    connection = session.connection()
    dialect = connection.dialect
    params = {"first_period": first_period, "last_period": last_period}
    contracts_of = {}
    for contract in session.exec(select(Contract)).all():
        contracts_of.setdefault(contract.service_type, set()).add(contract.id)
    frames = []
    for spec in services.values():
        mine = contracts_of.get(spec.id, set())
        for kpi in spec.kpis:
            if kpi.kind == "sql":
                frame = _collapse(_run_sql_file(connection, spec, kpi, home, params))
                frame["kind"] = "proportion"
            else:
                query, literals = kpi_sql(spec, kpi, dialect)
                statement = text(query).bindparams(*[bindparam(k) for k in literals])
                rows = pd.DataFrame(connection.execute(statement, {**params, **literals}).fetchall())
                if kpi.kind == "median_days":
                    frame = _medians(rows, alpha)
                else:
                    frame = _collapse(rows)
                    frame["kind"] = "proportion" if kpi.kind == "proportion" else "count"
                    if kpi.kind == "volume":
                        frame["denominator"] = 1
            if frame.empty:
                continue
            frame = frame[frame["contract_id"].isin(mine)]
            frame["measure_code"] = kpi.code
            frame["source"] = "derived"
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=columns)
    values = pd.concat(frames, ignore_index=True)
    values["numerator"] = values["numerator"].astype(float)
    values["denominator"] = values["denominator"].astype(float)
    for name in ("value", "ci_low", "ci_high"):
        if name not in values:
            values[name] = np.nan
    proportion = values["kind"] == "proportion"
    with np.errstate(invalid="ignore", divide="ignore"):
        values.loc[proportion, "value"] = (values["numerator"] / values["denominator"]).where(values["denominator"] > 0)
    count = values["kind"] == "count"
    if count.any():
        low, high = poisson_interval(values.loc[count, "numerator"], values.loc[count, "denominator"], alpha)
        values.loc[count, "value"] = values.loc[count, "numerator"] / values.loc[count, "denominator"]
        values.loc[count, "ci_low"], values.loc[count, "ci_high"] = low, high
    return values[columns]


def _medians(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=["contract_id", "period", "numerator", "denominator", "submission_ids"])
    out = []
    for (contract_id, period), group in rows.groupby(["contract_id", "period"], sort=True):
        days = group["days"].dropna().to_numpy(dtype=float)
        median, low, high = median_interval(days, alpha)
        out.append({"contract_id": contract_id, "period": period, "numerator": len(days),
                    "denominator": len(group), "value": median, "ci_low": low, "ci_high": high, "kind": "median",
                    "submission_ids": _submission_ids(group["submission_id"])})
    return pd.DataFrame(out)
