"""Judge KPI values against the targets in force: the RAG word and a statistical verdict.

RAG compares the observed rate with the target and its tolerance band. The verdict
asks whether the target is met beyond sampling noise: the Wilson interval of the
rate at ``1 - alpha`` lies wholly on the right side of the target (``met``), wholly
on the wrong side (``not met``), or straddles it (``inconclusive``); below the
contract's minimum volume the verdict is ``insufficient volume``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import Judgement, Target
from outcomes.errors import OutcomesError
from outcomes.proportions import wilson_interval
from outcomes.spc import MIN_BASELINE, Rebase, spc

RAG_WORDS = ("Green", "Amber", "Red", "No data")


@dataclass(frozen=True)
class TargetTerms:
    value: float
    tolerance: float
    min_volume: int
    direction: str  # higher / lower


def rag(value: float | None, terms: TargetTerms) -> str:
    if value is None or np.isnan(value):
        return "No data"
    gap = value - terms.value if terms.direction == "higher" else terms.value - value
    if gap >= -1e-12:
        return "Green"
    if gap >= -terms.tolerance - 1e-12:
        return "Amber"
    return "Red"


def judge_frame(values: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add ``value, rag, ci_low, ci_high, verdict`` to a frame of numerator, denominator and target terms.

    ``values`` needs columns numerator, denominator, target, tolerance, min_volume, direction.
    """
    frame = values.copy()
    den = frame["denominator"].to_numpy(dtype=float)
    num = frame["numerator"].to_numpy(dtype=float)
    kind = frame["kind"].fillna("proportion").to_numpy() if "kind" in frame else np.full(len(frame), "proportion")
    proportion = kind == "proportion"
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0, num / den, np.nan)
    low, high = wilson_interval(np.where(proportion, num, 0), np.where(proportion, den, 0), alpha)
    if proportion.all():
        frame["value"], frame["ci_low"], frame["ci_high"] = ratio, low, high
    else:
        # Measures beyond proportions (declared services): a count per month against a contracted volume
        # (value = rows counted per month, exact Poisson interval, pooled over months in rolling windows), and
        # a median in days (value and its order-statistics interval as derived; ``numerator`` = its n).
        from contracts.declared_kpis import poisson_interval

        count = kind == "count"
        p_low, p_high = poisson_interval(np.where(count, num, 0), np.where(count, den, 1), alpha)
        stored = {name: (frame[name].to_numpy(dtype=float) if name in frame else np.full(len(frame), np.nan))
                  for name in ("value", "ci_low", "ci_high")}
        frame["value"] = np.where(proportion | count, ratio, stored["value"])
        frame["ci_low"] = np.where(proportion, low, np.where(count, p_low, stored["ci_low"]))
        frame["ci_high"] = np.where(proportion, high, np.where(count, p_high, stored["ci_high"]))
    frame["rag"] = [
        rag(v, TargetTerms(t, tol, int(mv), d))
        for v, t, tol, mv, d in zip(frame["value"], frame["target"], frame["tolerance"], frame["min_volume"], frame["direction"], strict=True)
    ]
    higher = frame["direction"] == "higher"
    met = np.where(higher, frame["ci_low"] >= frame["target"], frame["ci_high"] <= frame["target"])
    not_met = np.where(higher, frame["ci_high"] < frame["target"], frame["ci_low"] > frame["target"])
    verdict = np.where(met, "met", np.where(not_met, "not met", "inconclusive"))
    # A count is its own volume; a median's volume is the rows with both dates (its numerator).
    volume = np.where(kind == "median", num, den)
    verdict = np.where((volume < frame["min_volume"].to_numpy()) & (kind != "count"), "insufficient volume", verdict)
    frame["verdict"] = verdict
    frame["alpha"] = alpha
    return frame


def _kind(series: pd.DataFrame) -> str:
    """``proportion`` (built-in KPIs), or a declared KPI's ``count`` (volume) or ``median`` (days)."""
    if "kind" in series.columns and len(series) and isinstance(series["kind"].iloc[0], str):
        return series["kind"].iloc[0]
    return "proportion"


def _chart_rows(series: pd.DataFrame) -> pd.DataFrame:
    """The months a chart is drawn from: with cases (and, for a count or median, with a value), in order."""
    series = series[series["denominator"] > 0]
    if _kind(series) in ("count", "median"):
        series = series[series["value"].notna()]
    return series.sort_values("period")


def measure_chart(series: pd.DataFrame, breaks=(), period: str | None = None, target: float | None = None):
    """The MDC chart of one contract x measure series (months with cases, to ``period``), or None if too short.

    ``series`` has period, numerator, denominator, direction; ``breaks`` are ``(period, reason)`` pairs (or bare
    periods) where the limits are recalculated: contract variations are rebases. A rebase leaving fewer than
    ``MIN_BASELINE`` months on either side is not applied (its limits would rest on too few points). The chart is a
    p-chart, or Laney's p' when the typical denominator is large (over 500), as :func:`outcomes.spc.spc` chooses.
    """
    series = _chart_rows(series)
    if period is not None:
        series = series[series["period"] <= period]
    return _chart_of(series, breaks, target)


def _chart_of(series: pd.DataFrame, breaks, target: float | None):
    """:func:`measure_chart` of a series' chart rows (``_chart_rows``, already filtered and in order)."""
    if len(series) < MIN_BASELINE:
        return None
    periods = list(series["period"])
    rebases = []
    for item in breaks or ():
        at, reason = item if isinstance(item, tuple) else (item, "")
        if at in periods and MIN_BASELINE <= periods.index(at) <= len(periods) - MIN_BASELINE:
            rebases.append(Rebase(at, reason or "contract variation"))
    try:
        if _kind(series) in ("count", "median"):  # measures, not proportions: an individuals (XmR) chart of the values
            return spc(series["value"].astype(float), None, periods, chart="xmr",
                       improvement=series["direction"].iloc[0], rebases=rebases, target=target)
        return spc(series["numerator"], series["denominator"], periods, improvement=series["direction"].iloc[0],
                   rebases=rebases, target=target)
    except OutcomesError:
        return None  # e.g. every case met the measure: no process width, nothing to signal


def spc_columns(judged: pd.DataFrame, breaks: dict[tuple[str, str], list] | None = None) -> pd.DataFrame:
    """Add ``spc_signals``, ``spc_variation`` and ``spc_variation_icon`` per row from each series' chart.

    Limits are recalculated at each contract variation month in ``breaks[(contract, measure)]`` (see
    :func:`measure_chart`). Series shorter than the SPC baseline get no signals.
    """
    frame = judged.reset_index(drop=True)
    # Filled as arrays and set once: setting cells one at a time was most of the judging time.
    signals = np.full(len(frame), "", dtype=object)
    variation = np.full(len(frame), "", dtype=object)
    icons = np.full(len(frame), "", dtype=object)
    breaks = breaks or {}
    for (contract_id, code), series in frame.groupby(["contract_id", "measure_code"], sort=False):
        series = _chart_rows(series)
        chart = _chart_of(series, breaks.get((contract_id, code), []), None)
        if chart is None:
            continue
        words = [[] for _ in range(len(series))]
        kinds = [set() for _ in range(len(series))]
        for signal in chart.signals:
            for i in signal.flagged:
                words[i].append(f"{signal.rule} ({signal.meaning})")
                kinds[i].add(signal)
        for position, index in enumerate(series.index):
            signals[index] = "; ".join(dict.fromkeys(words[position]))
            icon = point_icon(kinds[position], chart.improvement)
            icons[index] = icon
            variation[index] = ICON_VARIATION_WORDS[icon.split("_")[0]]
    frame["spc_signals"] = signals
    frame["spc_variation"] = variation
    frame["spc_variation_icon"] = icons
    return frame


ICON_VARIATION_WORDS = {"common": "common cause", "improvement": "special cause improving",
                        "concern": "special cause concerning", "neither": "special cause neither"}


def point_icon(signals, improvement: str) -> str:
    """The MDC variation icon of one point from the signals that flag it (improvement wins a conflict, as in MDC)."""
    if not signals:
        return "common_cause"
    meanings = {s.meaning for s in signals}
    kind = "neither" if improvement == "neutral" else "improvement" if "improvement" in meanings else "concern"
    chosen = next(s for s in sorted(signals, key=lambda s: s.start) if s.meaning == kind)
    return f"{kind}_{'high' if chosen.side in ('high', 'up') else 'low'}"


ROLLING_WINDOWS = {"quarter": 3, "year": 12}


def rolling_judgements(monthly: pd.DataFrame, period: str, alpha: float,
                       windows: dict[str, int] | None = None) -> pd.DataFrame:
    """Judge the pooled numerator and denominator of the months to ``period`` (rolling quarter and year).

    ``monthly`` holds one contract's (or many contracts') judged months: contract_id, measure_code, period,
    numerator, denominator, target, tolerance, min_volume, direction. A window pools the months from
    ``period - months + 1`` to ``period`` that have data; the target, tolerance and minimum volume are those
    in force in ``period`` (after a variation the latest terms are the ones the provider is held to). The
    verdict uses the Wilson interval of the pooled rate, so three small months that each say
    ``insufficient volume`` can together say ``not met``. Returns one row per contract x measure x window
    with ``window, months_with_data, first_period, last_period`` and the columns of :func:`judge_frame`.
    """
    windows = windows or ROLLING_WINDOWS
    columns = ["contract_id", "measure_code", "window", "months", "months_with_data", "first_period", "last_period",
               "numerator", "denominator", "target", "tolerance", "min_volume", "direction", "kind"]
    if monthly.empty:
        return pd.DataFrame(columns=[*columns, "value", "ci_low", "ci_high", "rag", "verdict", "alpha"])
    end = pd.Period(period, "M")
    keys = ["contract_id", "measure_code"]
    # Sorted once for every window (a filter keeps a stable sort's order); each window's groups are then runs of
    # equal keys, pooled with numpy (pandas' groupby and index alignment cost about 30 ms a contract here, and a
    # scorecard judges one contract's windows).
    ordered = monthly.sort_values([*keys, "period"], kind="stable")
    pooled = []
    for name, months in windows.items():
        first = str(end - (months - 1))
        inside = ordered[(ordered["period"] >= first) & (ordered["period"] <= period)]
        if inside.empty:
            continue
        contract = inside["contract_id"].to_numpy()
        measure = inside["measure_code"].to_numpy()
        starts = np.flatnonzero(np.r_[True, (contract[1:] != contract[:-1]) | (measure[1:] != measure[:-1])])
        last = np.r_[starts[1:], len(inside)] - 1  # each group's last month: the terms in force in the window
        denominator = inside["denominator"].to_numpy(dtype=float)
        if "kind" in inside.columns:
            kind = [k if isinstance(k, str) else "proportion" for k in inside["kind"].to_numpy()[last]]
        else:
            kind = ["proportion"] * len(starts)
        window = pd.DataFrame({
            "contract_id": contract[starts], "measure_code": measure[starts], "window": name, "months": months,
            "months_with_data": np.add.reduceat((denominator > 0).astype(int), starts),
            "first_period": first, "last_period": period,
            "numerator": _pooled_sum(inside["numerator"], starts), "denominator": _pooled_sum(inside["denominator"], starts),
            "target": inside["target"].to_numpy(dtype=float)[last],
            "tolerance": inside["tolerance"].to_numpy(dtype=float)[last],
            "min_volume": inside["min_volume"].to_numpy()[last].astype(int),
            "direction": inside["direction"].to_numpy()[last], "kind": kind,
        })
        # a median over months needs the records, not the monthly medians: no pooled window
        pooled.append(window[window["kind"] != "median"])
    pooled = [frame for frame in pooled if not frame.empty]
    if not pooled:
        return pd.DataFrame(columns=[*columns, "value", "ci_low", "ci_high", "rag", "verdict", "alpha"])
    frame = pd.concat(pooled, ignore_index=True)[columns]
    frame["months_with_data"] = frame["months_with_data"].astype(int)
    return judge_frame(frame, alpha)


def _pooled_sum(values: pd.Series, starts: np.ndarray) -> np.ndarray:
    """Sums of the runs beginning at ``starts``; as groupby's sum, a missing value adds 0."""
    values = values.to_numpy(dtype=float)
    return np.add.reduceat(np.where(np.isnan(values), 0.0, values), starts)


def target_periods(session: Session, contract_ids: list[str] | None = None) -> pd.DataFrame:
    """Every target row (of these contracts) with the months it covers: ``from_period`` to ``to_period`` (YYYY-MM)."""
    query = select(Target) if contract_ids is None else select(Target).where(Target.contract_id.in_(contract_ids))
    targets = pd.DataFrame([t.model_dump() for t in session.exec(query).all()])
    if targets.empty:
        return targets
    targets["from_period"] = pd.to_datetime(targets["valid_from"]).dt.strftime("%Y-%m")
    targets["to_period"] = pd.to_datetime(targets["valid_to"]).dt.strftime("%Y-%m").fillna("9999-12")
    return targets


def judgement_rows(session: Session, *where) -> pd.DataFrame:
    """The stored judgements matching ``where`` (SQL conditions), one row each, in the table's column order (an
    empty frame when none). Plain rows, not ORM objects: building and dumping a Judgement per row cost most of a
    scorecard's reading, and the dumps' column order changed from call to call."""
    table = Judgement.__table__
    rows = session.exec(select(*table.columns).where(*where)).all()
    return pd.DataFrame.from_records(rows, columns=[c.name for c in table.columns]) if rows else pd.DataFrame()


def judged_months(session: Session, contract_ids: list[str]) -> pd.DataFrame:
    """The stored monthly judgements of these contracts with the minimum volume and direction of the terms in force."""
    frame = judgement_rows(session, Judgement.contract_id.in_(contract_ids))
    if frame.empty:
        return frame
    terms = target_periods(session, contract_ids)[["contract_id", "measure_code", "from_period", "to_period", "min_volume"]]
    merged = frame.merge(terms, on=["contract_id", "measure_code"], how="left")
    merged = merged[(merged["period"] >= merged["from_period"]) & (merged["period"] <= merged["to_period"])]
    merged = merged.sort_values("from_period").drop_duplicates(["contract_id", "measure_code", "period"], keep="last")
    from contracts.declared import ensure_declared_measures

    ensure_declared_measures(session)
    merged["direction"] = merged["measure_code"].map(lambda code: MEASURES_BY_CODE[code].direction)
    return merged.drop(columns=["from_period", "to_period"]).sort_values(["contract_id", "measure_code", "period"])


JUDGEMENT_COLUMNS = ["contract_id", "measure_code", "period", "value", "numerator", "denominator", "target",
                     "tolerance", "rag", "ci_low", "ci_high", "alpha", "verdict", "spc_signals", "spc_variation", "kind"]


def judging_terms(session: Session) -> tuple[pd.DataFrame, dict[str, str], dict[tuple[str, str], list[str]]]:
    """What judging needs besides the KPI values: every target row with its months, each measure's direction,
    and the variation months (SPC rebases) per contract x measure."""
    from contracts.catalogue import MEASURES_BY_CODE
    from contracts.declared import ensure_declared_measures
    from contracts.models import ContractVariation, Measure

    targets = target_periods(session)
    ensure_declared_measures(session)
    directions = {**dict(session.exec(select(Measure.code, Measure.direction)).all()),
                  **{code: m.direction for code, m in MEASURES_BY_CODE.items()}}
    breaks: dict[tuple[str, str], list[str]] = {}
    for variation in session.exec(select(ContractVariation)).all():
        codes = [variation.measure_code] if variation.measure_code else list(directions)
        for code in codes:
            breaks.setdefault((variation.contract_id, code), []).append(variation.effective_date.strftime("%Y-%m"))
    return targets, directions, breaks


def judge_values(values: pd.DataFrame, alpha: float, targets: pd.DataFrame, directions: dict[str, str],
                 breaks: dict[tuple[str, str], list[str]]) -> pd.DataFrame:
    """The judgement rows (``JUDGEMENT_COLUMNS``) of whole contract x measure series of KPI values.

    Each series is judged on its own (RAG and verdict per month, SPC over the series), so judging a subset of
    series gives exactly the rows that judging everything gives for them.
    """
    if values.empty or targets.empty:
        return pd.DataFrame(columns=JUDGEMENT_COLUMNS)
    # Derived from records wins over provider-reported for the same contract x measure x month.
    values = values.assign(rank=(values["source"] != "derived").astype(int))
    values = values.sort_values(["rank"], kind="stable").drop_duplicates(["contract_id", "measure_code", "period"])
    merged = values.merge(targets[["contract_id", "measure_code", "valid_from", "from_period", "to_period", "value",
                                   "tolerance", "min_volume"]].rename(columns={"value": "target"}),
                          on=["contract_id", "measure_code"], how="inner")
    merged = merged[(merged["period"] >= merged["from_period"]) & (merged["period"] <= merged["to_period"])]
    # The latest target starting on or before the month wins (by month, then by day within the month).
    merged = merged.sort_values(["from_period", "valid_from"], kind="stable").drop_duplicates(
        ["contract_id", "measure_code", "period"], keep="last")
    if merged.empty:
        return pd.DataFrame(columns=JUDGEMENT_COLUMNS)
    merged = merged.sort_values(["contract_id", "measure_code", "period"], kind="stable")
    merged["direction"] = merged["measure_code"].map(directions)
    judged = spc_columns(judge_frame(merged, alpha), breaks)
    return judged[JUDGEMENT_COLUMNS]


def judgement_records(judged: pd.DataFrame) -> list[dict]:
    return judged.astype(object).where(judged.notna(), None).to_dict("records")


def judge_all(session: Session, alpha: float) -> int:
    """Judge every KPI value against the target in force for its month; replaces earlier judgements."""
    from sqlalchemy import delete, insert

    from contracts.models import KpiValue

    values = pd.DataFrame([v.model_dump() for v in session.exec(select(KpiValue)).all()])
    session.execute(delete(Judgement))
    if values.empty:
        return 0
    records = judgement_records(judge_values(values, alpha, *judging_terms(session)))
    if records:
        session.execute(insert(Judgement), records)
    return len(records)


def variation_breaks(session: Session, contract_ids: list[str] | None = None) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Rebases from contract variations: ``{(contract, measure): [(YYYY-MM, reason), ...]}``.

    A variation naming a measure rebases that measure; one naming none rebases every measure of the contract.
    """
    from contracts.catalogue import MEASURES
    from contracts.models import ContractVariation

    query = select(ContractVariation)
    if contract_ids is not None:
        query = query.where(ContractVariation.contract_id.in_(contract_ids))
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for v in session.exec(query.order_by(ContractVariation.effective_date)).all():
        reason = f"contract variation ({v.kind.replace('_', ' ')}): {v.description}".rstrip(": ")
        for code in ([v.measure_code] if v.measure_code else [m.code for m in MEASURES]):
            found.setdefault((v.contract_id, code), []).append((v.effective_date.strftime("%Y-%m"), reason))
    return found


def kpi_charts(history: pd.DataFrame, breaks: dict[tuple[str, str], list] | None, period: str) -> dict:
    """One contract's MDC chart per measure from its judged months to ``period``: ``{measure_code: SPCResult}``.

    ``history`` holds judged months (contract_id, measure_code, period, numerator, denominator, target); the
    direction comes from the catalogue and the assurance target is the one in force in the latest month.
    """
    charts = {}
    if history.empty:
        return charts
    breaks = breaks or {}
    for (contract_id, code), series in history[history["period"] <= period].groupby(["contract_id", "measure_code"]):
        series = series.assign(direction=MEASURES_BY_CODE[code].direction)
        ok = series[series["denominator"] > 0].sort_values("period")
        target = float(ok["target"].iloc[-1]) if len(ok) else None
        chart = measure_chart(series, breaks.get((contract_id, code), []), target=target)
        if chart is not None:
            charts[code] = chart
    return charts
