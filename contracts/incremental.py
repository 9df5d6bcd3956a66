"""Incremental derive and judge: recompute only what changed since it was computed, and say so.

Each stored result records what it was computed from, in ``input_checksum`` (one row per step x scope):

* ``derive``, one row per month. A month's KPI values are a function of the month's current accepted
  submissions (each derivation in ``sql/`` and ``contracts.declared_kpis`` reads only the records of
  submissions whose period is the month, and writes values for that month; a reoffending cohort is the period of
  its quarter's return, so a new or resubmitted cohort return changes its own month) and of the definitions: the
  source of the derivations (``DERIVE_CODE``), the framework KPIs the targets ask for, the declared services
  with the contracts they cover and their analysts' SQL files, and ``alpha``. The checksum hashes the
  submissions' ids, return types, file and mapping sha256 with the definitions' hash. A month whose checksum is
  unchanged is skipped; a change of definitions changes every month's checksum.
* ``judge``, one row per contract x measure series. A month's judgement has a statistical process control part
  (limits and signals) computed from the whole series, so a new month or a changed month can change the SPC
  columns of every month of its series: the series is the unit. Its checksum hashes every KPI value of the series
  (both sources), its target rows, its variation months (the rebases), its direction, ``alpha`` and the source
  of the judging code (``JUDGE_CODE``). A changed series is judged whole; only the judgement rows whose content
  changed are rewritten.

Rolling quarter and year judgements are not stored (the documents pool the stored months when they are drawn),
so they follow the monthly judgements with nothing to track. A forced run (``force``) recomputes every scope in
range and rewrites the checksums; the result is the same as the full recomputation of ``derive_kpis`` over all
months and ``judge_all``, which tests/test_incremental.py checks table against table.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd
from sqlalchemy import bindparam, delete, func, insert, update
from sqlalchemy import select as select_rows
from sqlmodel import Session, select

from contracts.models import InputChecksum, Judgement, KpiValue, Submission

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# The source files whose content defines a derived value or a judgement: any edit recomputes every scope.
DERIVE_CODE = ("contracts/kpis.py", "contracts/declared_kpis.py", "contracts/declared.py", "contracts/catalogue.py",
               "contracts/records.py", "contracts/workdays.py", "contracts/sqlfiles.py", "sql/*.sql",
               "contracts/frameworks/*.yaml")
JUDGE_CODE = ("contracts/judge.py", "contracts/declared_kpis.py", "contracts/catalogue.py", "outcomes/spc.py",
              "outcomes/proportions.py", "outcomes/errors.py", "outcomes/results.py")
FIRST, LAST = "0000-00", "9999-99"


@dataclass
class StepCounts:
    """What an incremental step did: scopes computed and skipped, result rows written and deleted."""

    step: str
    unit: str  # months (derive) or series (judge)
    computed: int = 0
    skipped: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    stored: int = 0  # result rows the table holds afterwards
    first_period: str = FIRST
    last_period: str = LAST
    computed_scopes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        scope = "" if (self.first_period, self.last_period) == (FIRST, LAST) else (
            f" in {self.first_period}" if self.first_period == self.last_period
            else f" in {self.first_period}..{self.last_period}")
        return (f"{self.step}{scope}: computed {self.computed} {self.unit}, skipped {self.skipped} (inputs unchanged); "
                f"{self.rows_written} rows written, {self.rows_deleted} deleted, {self.stored} stored")

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def code_hash(patterns: tuple[str, ...]) -> str:
    """sha256 over the named source files (path and bytes), in a stable order."""
    digest = hashlib.sha256()
    for pattern in patterns:
        paths = sorted(ROOT.glob(pattern))
        if not paths:
            raise FileNotFoundError(f"no source file matches {pattern!r} under {ROOT}: the checksum would miss it")
        for path in paths:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _sha(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _stored(session: Session, step: str) -> dict[str, str]:
    return dict(session.exec(select(InputChecksum.scope, InputChecksum.checksum).where(InputChecksum.step == step)).all())


def _record(session: Session, step: str, rows: list[dict]) -> None:
    """Write the checksums of the computed scopes: update those that exist (their ids stay), insert the others."""
    if not rows:
        return
    existing = set(session.exec(select(InputChecksum.scope).where(InputChecksum.step == step)).all())
    table = InputChecksum.__table__
    old = [{"b_scope": r["scope"], "b_checksum": r["checksum"], "b_rows": r["rows"], "b_detail": r["detail"]}
           for r in rows if r["scope"] in existing]
    new = [{"step": step, **r} for r in rows if r["scope"] not in existing]
    if old:
        session.execute(update(table).where(table.c.step == step, table.c.scope == bindparam("b_scope"))
                        .values(checksum=bindparam("b_checksum"), rows=bindparam("b_rows"),
                                detail=bindparam("b_detail")), old)
    if new:
        session.execute(insert(table), new)


def _in(frame: pd.DataFrame, first: str, last: str) -> pd.Series:
    return (frame["period"] >= first) & (frame["period"] <= last)


# ------------------------------------------------------------------ derive


def derive_definitions(session: Session, home: Path | None, alpha: float) -> tuple[str, dict]:
    """The hash of everything besides the month's submissions that a derived value depends on, and what it covers."""
    from contracts.catalogue import FRAMEWORK_MEASURES, MEASURES
    from contracts.declared import load_services
    from contracts.models import Contract, DeclaredService, Target

    builtin = {m.code for m in MEASURES}
    framework = sorted({(c, m) for c, m in session.exec(select(Target.contract_id, Target.measure_code).distinct()).all()
                        if m in FRAMEWORK_MEASURES and m not in builtin})
    services = load_services(session)
    declared_rows = sorted(tuple(r) for r in session.connection().execute(select_rows(DeclaredService.__table__)).all())
    covered = sorted((c.id, c.service_type) for c in session.exec(select(Contract)).all() if c.service_type in services)
    analyst_sql = []
    for spec in services.values():
        for kpi in spec.kpis:
            if kpi.kind == "sql":
                path = (Path(home) / kpi.sql) if home is not None else None
                content = path.read_bytes() if path is not None and path.is_file() else b"<missing>"
                analyst_sql.append((spec.id, kpi.code, kpi.sql, hashlib.sha256(content).hexdigest()))
    detail = {"code": code_hash(DERIVE_CODE), "alpha": repr(float(alpha)), "framework_kpis": framework,
              "declared_services": [list(map(str, r)) for r in declared_rows], "declared_contracts": covered,
              "analyst_sql": sorted(analyst_sql)}
    return _sha(json.dumps(detail, sort_keys=True, default=str)), detail


def month_submissions(session: Session, first: str = FIRST, last: str = LAST) -> dict[str, list[list]]:
    """``{period: [[submission id, return type, sha256, mapping sha256], ...]}`` of the current accepted returns."""
    rows = session.exec(select(Submission.period, Submission.id, Submission.return_type, Submission.sha256,
                               Submission.mapping_sha256)
                        .where(Submission.is_current, Submission.status == "accepted",
                               Submission.period >= first, Submission.period <= last)
                        .order_by(Submission.period, Submission.id)).all()
    found: dict[str, list[list]] = {}
    for period, sid, return_type, sha, mapping in rows:
        found.setdefault(period, []).append([int(sid), return_type, sha, mapping or ""])
    return found


def derive_changed(session: Session, first_period: str = FIRST, last_period: str = LAST, *,
                   home: Path | None = None, alpha: float = 0.05, force: bool = False) -> StepCounts:
    """Derive the KPI values of the months in range whose inputs changed since they were derived (all with ``force``).

    The months considered are those with current accepted returns, stored KPI values or a stored checksum. Months
    to recompute are derived in runs of consecutive months (``derive_kpis`` over each run), so that a resubmission
    for an old month and the new month cost two small derivations, not one over everything between them.
    """
    from contracts.kpis import derive_kpis

    counts = StepCounts("derive", "months", first_period=first_period, last_period=last_period)
    definitions, _detail = derive_definitions(session, home, alpha)
    submissions = month_submissions(session, first_period, last_period)
    stored = {k: v for k, v in _stored(session, "derive").items() if first_period <= k <= last_period}
    valued = set(session.exec(select(KpiValue.period).distinct()
                              .where(KpiValue.period >= first_period, KpiValue.period <= last_period)).all())
    months = sorted(set(submissions) | valued | set(stored))
    checksums = {m: _sha(definitions, json.dumps(submissions.get(m, []))) for m in months}
    changed = [m for m in months if force or stored.get(m) != checksums[m]]
    counts.skipped = len(months) - len(changed)
    counts.computed = len(changed)
    counts.computed_scopes = changed
    position = {m: i for i, m in enumerate(months)}
    runs: list[list[str]] = []
    for month in changed:
        if runs and position[runs[-1][-1]] == position[month] - 1:
            runs[-1].append(month)
        else:
            runs.append([month])
    for run in runs:
        counts.rows_deleted += session.exec(select(func.count()).select_from(KpiValue).where(
            KpiValue.period >= run[0], KpiValue.period <= run[-1])).one()
        counts.rows_written += derive_kpis(session, run[0], run[-1], home=home, alpha=alpha)
    per_month: dict[str, int] = {}
    for period, measure_code, ids in (session.exec(select(KpiValue.period, KpiValue.measure_code, KpiValue.submission_ids)
                                                   .where(KpiValue.period.in_(changed))).all() if changed else []):
        per_month[period] = per_month.get(period, 0) + 1
        # What makes skipping safe: a month's values come from that month's current returns only.
        allowed = {s[0] for s in submissions.get(period, [])}
        foreign = sorted(int(i) for i in ids.split(",") if i and int(i) not in allowed)
        if foreign:
            from contracts.errors import DeclaredKpiError

            raise DeclaredKpiError(
                f"KPI {measure_code!r} for {period} was derived from submission(s) {foreign}, which are not current "
                f"accepted returns of {period}: a KPI must derive each month from that month's returns only")
    _record(session, "derive", [
        {"scope": m, "checksum": checksums[m], "rows": int(per_month.get(m, 0)),
         "detail": json.dumps({"submissions": [[s[0], s[1], s[2][:16]] for s in submissions.get(m, [])],
                               "definitions": definitions[:16]})}
        for m in changed])
    counts.stored = session.exec(select(func.count()).select_from(KpiValue)).one()
    log.info("%s", counts.summary())
    return counts


# ------------------------------------------------------------------ judge

VALUE_COLUMNS = ["contract_id", "measure_code", "period", "source", "numerator", "denominator", "value", "kind",
                 "ci_low", "ci_high"]


def _text(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row of ``columns`` (floats as their shortest round-trip repr, missing as ``None``)."""
    parts = []
    for name in columns:
        column = frame[name]
        parts.append(column.astype(str).where(column.notna(), "None").astype(object))
    text = parts[0]
    for part in parts[1:]:
        text = text + "|" + part
    return text


def _series_text(frame: pd.DataFrame, columns: list[str], order: list[str]) -> dict[tuple[str, str], str]:
    if frame.empty:
        return {}
    frame = frame.sort_values(["contract_id", "measure_code", *order], kind="stable")
    text = _text(frame, columns)
    grouped = text.groupby([frame["contract_id"], frame["measure_code"]], sort=False).agg(";".join)
    return grouped.to_dict()


def series_checksums(values: pd.DataFrame, targets: pd.DataFrame, directions: dict[str, str],
                     breaks: dict[tuple[str, str], list[str]], alpha: float,
                     series: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The judge checksum of each contract x measure series: its values, targets, rebases, direction, alpha, code."""
    code = code_hash(JUDGE_CODE)
    value_text = _series_text(values, VALUE_COLUMNS[2:], ["period", "source"])
    target_text = {} if targets.empty else _series_text(
        targets.assign(valid_from=targets["valid_from"].astype(str), valid_to=targets["valid_to"].astype(str)),
        ["valid_from", "valid_to", "value", "tolerance", "min_volume"], ["valid_from"])
    return {key: _sha(code, repr(float(alpha)), str(directions.get(key[1])), json.dumps(sorted(breaks.get(key, []))),
                      target_text.get(key, ""), value_text.get(key, ""))
            for key in series}


FLOAT_COLUMNS = ["value", "numerator", "denominator", "target", "tolerance", "ci_low", "ci_high", "alpha"]
KEY_COLUMNS = ["contract_id", "measure_code", "period"]


def _same_rows(new: pd.DataFrame, old: pd.DataFrame, columns: list[str]) -> tuple[pd.Series, pd.Series]:
    """Which new rows are already stored with the same content, and which stored rows are not (by key)."""
    merged = new[columns].reset_index(drop=True).reset_index(names="new_row").merge(
        old[["id", *columns]], on=KEY_COLUMNS, how="outer", suffixes=("", "_old"))
    same = merged["new_row"].notna() & merged["id"].notna()
    for name in columns:
        if name in KEY_COLUMNS:
            continue
        a, b = merged[name], merged[f"{name}_old"]
        if name in FLOAT_COLUMNS:
            a, b = pd.to_numeric(a, errors="coerce").astype(float), pd.to_numeric(b, errors="coerce").astype(float)
            equal = (a == b) | (a.isna() & b.isna())
        else:
            a, b = a.astype(object), b.astype(object)
            a_na, b_na = a.isna(), b.isna()
            equal = (a_na & b_na) | (~a_na & ~b_na & (a.where(~a_na, "") == b.where(~b_na, "")))
        same &= equal
    kept_new = set(merged.loc[same, "new_row"].astype(int))
    kept_old = set(merged.loc[same, "id"].astype(int))
    unchanged_new = pd.Series([i in kept_new for i in range(len(new))], dtype=bool)
    stale_old = old["id"][~old["id"].astype(int).isin(kept_old)]
    return unchanged_new, stale_old


def judge_changed(session: Session, alpha: float, first_period: str = FIRST, last_period: str = LAST, *,
                  force: bool = False) -> StepCounts:
    """Judge the contract x measure series whose inputs changed since they were judged (all with ``force``).

    With a period range, the series considered are those with a KPI value or a judgement in the range; each is
    still judged whole (its SPC limits and signals depend on every month of it).
    """
    from contracts.judge import JUDGEMENT_COLUMNS, judge_values, judgement_records, judging_terms

    counts = StepCounts("judge", "series", first_period=first_period, last_period=last_period)
    connection = session.connection()
    kpi = KpiValue.__table__
    values = pd.DataFrame(connection.execute(select_rows(*[kpi.c[c] for c in VALUE_COLUMNS])).mappings().all(),
                          columns=VALUE_COLUMNS)
    table = Judgement.__table__
    stored_rows = pd.DataFrame(connection.execute(select_rows(table.c.id, *[table.c[c] for c in JUDGEMENT_COLUMNS]))
                               .all(), columns=["id", *JUDGEMENT_COLUMNS])
    targets, directions, breaks = judging_terms(session)
    stored = _stored(session, "judge")
    whole = (first_period, last_period) == (FIRST, LAST)

    def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
        if not whole:
            frame = frame[_in(frame, first_period, last_period)]
        return set(zip(frame["contract_id"], frame["measure_code"], strict=True))

    series = pairs(values) | pairs(stored_rows)
    if whole:
        series |= {tuple(scope.split("|", 1)) for scope in stored}
    series = sorted(series)
    checksums = series_checksums(values, targets, directions, breaks, alpha, series)
    changed = [key for key in series if force or stored.get("|".join(key)) != checksums[key]]
    counts.computed, counts.skipped = len(changed), len(series) - len(changed)
    counts.computed_scopes = ["|".join(key) for key in changed]
    if changed:
        wanted = pd.MultiIndex.from_tuples(changed, names=["contract_id", "measure_code"])
        mine = values.set_index(["contract_id", "measure_code"]).index.isin(wanted)
        judged = judge_values(values[mine].reset_index(drop=True), alpha, targets, directions, breaks).reset_index(drop=True)
        old = stored_rows[stored_rows.set_index(["contract_id", "measure_code"]).index.isin(wanted)]
        unchanged, stale_ids = _same_rows(judged, old, JUDGEMENT_COLUMNS)
        stale = [int(i) for i in stale_ids]
        for start in range(0, len(stale), 500):
            session.execute(delete(table).where(table.c.id.in_(stale[start:start + 500])))
        inserts = judgement_records(judged[~unchanged.to_numpy()])
        if inserts:
            session.execute(insert(Judgement), inserts)
        fresh = list(zip(judged["contract_id"], judged["measure_code"], judged["period"], strict=True))
        counts.rows_deleted, counts.rows_written = len(stale), len(inserts)
        per_series: dict[tuple[str, str], int] = {}
        for contract_id, code, _period in fresh:
            per_series[(contract_id, code)] = per_series.get((contract_id, code), 0) + 1
        n_values = values.groupby(["contract_id", "measure_code"]).size().to_dict() if len(values) else {}
        _record(session, "judge", [
            {"scope": "|".join(key), "checksum": checksums[key], "rows": per_series.get(key, 0),
             "detail": json.dumps({"kpi_values": int(n_values.get(key, 0)), "rebases": sorted(breaks.get(key, []))})}
            for key in changed])
    counts.stored = session.exec(select(func.count()).select_from(Judgement)).one()
    log.info("%s", counts.summary())
    return counts


# ------------------------------------------------------------------ analyse: comparison groups of reoffending cohorts

COHORT_CODE = ("contracts/analysis.py", "outcomes/*.py")


def cohort_changed(session: Session, alpha: float, *, force: bool = False) -> tuple[list, StepCounts]:
    """The comparison-group findings (``contracts.analysis.cohort_findings``) of the contracts whose reoffending
    cohorts changed since they were analysed: a contract's findings use every current cohort return of it, so the
    contract is the unit; its checksum hashes those returns' sha256, ``alpha`` and the analysis code. The other
    methods (ITS, synthetic control, staggered roll-outs) fit whole monthly series, which every new month changes:
    they run in full."""
    from contracts.analysis import cohort_findings
    from contracts.models import ReoffendingRecord

    counts = StepCounts("analyse comparison groups", "contracts")
    rows = session.exec(select(ReoffendingRecord.contract_id, Submission.sha256).distinct()
                        .join(Submission, Submission.id == ReoffendingRecord.submission_id)
                        .where(Submission.is_current, Submission.status == "accepted")).all()
    inputs: dict[str, set[str]] = {}
    for contract_id, sha in rows:
        inputs.setdefault(contract_id, set()).add(sha)
    code = code_hash(COHORT_CODE)
    checksums = {c: _sha(code, repr(float(alpha)), *sorted(shas)) for c, shas in inputs.items()}
    stored = _stored(session, "analyse_cohort")
    changed = sorted(c for c in checksums if force or stored.get(c) != checksums[c])
    counts.computed, counts.skipped = len(changed), len(checksums) - len(changed)
    counts.computed_scopes = changed
    findings = cohort_findings(session, alpha, contract_ids=changed) if changed else []
    per_contract: dict[str, int] = {}
    for finding in findings:
        per_contract[finding.contract_id] = per_contract.get(finding.contract_id, 0) + 1
    counts.rows_written = len(findings)
    _record(session, "analyse_cohort", [
        {"scope": c, "checksum": checksums[c], "rows": per_contract.get(c, 0),
         "detail": json.dumps({"cohort_returns": sorted(s[:16] for s in inputs[c])})} for c in changed])
    log.info("%s", counts.summary())
    return findings, counts
