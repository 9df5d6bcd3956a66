"""Pipeline steps: the same functions run from the CLI and from the Airflow DAGs.

Each step takes settings and IDs (provider, contract, period), never data, opens
its own transaction(s) through ``session_scope``, and is idempotent: running it
twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from cjmonitor import progress
from cjmonitor.db import in_transaction, session_scope
from cjmonitor.errors import ConfigError, NotFoundError
from cjmonitor.settings import Settings
from cjmonitor.state import (  # noqa: F401  (steps and DAGs call these as pipeline.<name>)
    REPO_ROOT,
    area_codes,
    code_version,
    contract_ids,
    ensure_schema,
    keep_creation_times,
    latest_period,
    provider_ids,
    recipient_ids,
)
from contracts.incremental import StepCounts
from contracts.ingest import IngestOutcome, ingest_file
from contracts.models import (
    Area,
    Artifact,
    Contract,
    Finding,
    Judgement,
    Provider,
    Submission,
)
from contracts.returns import parse_file_name

log = logging.getLogger(__name__)



# ------------------------------------------------------------------ database


def upgrade_db(settings: Settings) -> None:
    """Bring the database schema to the latest Alembic revision."""
    from alembic import command

    from cjmonitor.migrate import alembic_config

    settings.ensure_dirs()
    command.upgrade(alembic_config(settings), "head")


# ------------------------------------------------------------------ reference data: the register


def apply_register_file(settings: Settings, path: Path, *, effective=None, dry_run: bool = False) -> dict:
    """Check a register file and apply it in one transaction (all or nothing); returns the diff."""
    from contracts.register import apply_register, check_file

    ensure_schema(settings)
    checked = check_file(path)
    if dry_run:
        return _dry_run(settings, checked, effective).to_dict()
    with session_scope(settings) as session:
        result = apply_register(session, checked, effective=effective)
    return result.to_dict()


def _dry_run(settings: Settings, checked, effective):
    """Apply in a transaction that is always rolled back: what would change, with nothing written."""
    from cjmonitor.db import get_engine
    from contracts.register import apply_register

    session = Session(get_engine(settings), expire_on_commit=False)
    try:
        return apply_register(session, checked, effective=effective, dry_run=True)
    finally:
        session.rollback()
        session.close()


def check_register_file(settings: Settings, path: Path, *, effective=None) -> dict:
    """Validate a register; when the database exists, also try it against what is stored (rolled back)."""
    from contracts.register import check_file

    checked = check_file(path)
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {"file": str(path), "valid": True, "against_database": False, "notes": checked.notes}  # nothing created
    try:
        ensure_schema(settings)
    except ConfigError:
        return {"file": str(path), "valid": True, "against_database": False, "notes": checked.notes}
    result = _dry_run(settings, checked, effective)
    return {"file": str(path), "valid": True, "against_database": True, "would_change": result.counts(),
            "notes": checked.notes}


def export_register_data(settings: Settings) -> dict:
    from contracts.register import export_register

    ensure_schema(settings)
    with session_scope(settings) as session:
        return export_register(session)


# ------------------------------------------------------------------ ingest


@dataclass
class IngestSummary:
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    unrecognised: int = 0
    refused: int = 0
    outcomes: list[dict] = field(default_factory=list)
    error_reports: list[str] = field(default_factory=list)

    def add(self, outcome: IngestOutcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        self.outcomes.append({
            "file": outcome.file_name, "status": outcome.status, "submission_id": outcome.submission_id,
            "provider_id": outcome.provider_id, "return_type": outcome.return_type, "period": outcome.period,
            "version": outcome.version, "rows": outcome.rows, "errors": outcome.errors, "message": outcome.message,
            # the first few errors of a rejected file, for the terminal; every one is in its error report
            "problems": [{"row": i.row, "column": i.column, "message": i.message}
                         for i in outcome.issues if i.severity == "error"][:5] if outcome.status == "rejected" else [],
        })

    def to_dict(self) -> dict:
        return asdict(self)


def configured_sources(settings: Settings):
    from contracts.sources import load_sources

    return load_sources(settings.sources_path, settings.home, settings.drop_dir)


def _candidates(settings: Settings, source_name: str | None, paths: list[Path] | None, summary: IngestSummary):
    """(path, source name, source or None) for every file to consider, oldest first within each source."""
    from contracts.sources import fetch_sftp, list_drop_folder

    if paths:
        for path in paths:
            if not path.is_file():
                raise NotFoundError(f"{path} is not a file")
            yield path, "cli", None
        return
    sources = configured_sources(settings)
    if source_name is not None:
        sources = [s for s in sources if s.name == source_name]
        if not sources:
            raise NotFoundError(f"no source named {source_name!r} in {settings.sources_path or 'the default configuration'}")
    for source in sources:
        if source.kind == "drop_folder":
            files = list_drop_folder(source)
        else:
            fetched, refused = fetch_sftp(source, settings.inbox_dir / source.name)
            files = [f.path for f in fetched]
            for item in refused:
                summary.add(IngestOutcome(repr(item.remote_name)[1:-1], "refused", message=item.reason))
        for path in files:
            yield path, source.name, source


def ingest(settings: Settings, provider_id: str | None = None, *, source_name: str | None = None,
           paths: list[Path] | None = None) -> IngestSummary:
    """Land, validate and load every new file from the configured sources (or the given paths), each in its own transaction."""
    from reports.errors import write_error_report

    ensure_schema(settings)
    settings.ensure_dirs()
    key = settings.pseudonymisation_key()
    summary = IngestSummary()
    from contracts.declared import return_types

    with session_scope(settings) as session:
        types = return_types(session)
    candidates = list(_candidates(settings, source_name, paths, summary))
    for path, source_label, source in progress.track(candidates, "Ingesting returns"):
        parsed = parse_file_name(path.name, types)
        if provider_id is not None and (parsed is None or parsed.provider_id != provider_id):
            continue
        if source is not None and parsed is not None and not source.accepts(parsed.provider_id):
            summary.add(IngestOutcome(path.name, "refused", provider_id=parsed.provider_id, message=(
                f"source {source.name!r} is not configured for provider {parsed.provider_id!r}; "
                "add the provider to the source or send through its own source")))
            continue
        def load(session, path=path, source_label=source_label):
            outcome = ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=key,
                                  source=f"{source_label}:{path.name}", max_bytes=settings.max_file_bytes)
            if outcome.status == "rejected":
                submission = session.get(Submission, outcome.submission_id)
                provider = session.get(Provider, outcome.provider_id)
                _csv, html = write_error_report(
                    settings.out_dir, file_name=outcome.file_name, provider_name=provider.name,
                    return_type=outcome.return_type, period=outcome.period, submission_id=submission.id,
                    sha256=submission.sha256, received_at=submission.received_at.strftime("%Y-%m-%d %H:%M"),
                    issues=outcome.issues, proposed_mapping=outcome.proposed_mapping)
                outcome.error_report = str(html)
            return outcome

        # Concurrent ingests (mapped tasks, the same file dropped twice at once) may collide: retried whole.
        outcome = in_transaction(settings, load, what=f"ingest of {path.name}")
        if getattr(outcome, "error_report", None):
            summary.error_reports.append(outcome.error_report)
        if outcome.status in ("unrecognised", "refused"):
            log.warning("%s not loaded: %s", outcome.file_name, outcome.message)
        summary.add(outcome)
    return summary


def overdue_returns(settings: Settings, period: str, now: datetime | None = None) -> list[dict]:
    """Expected returns for ``period`` that are late (accepted after the due day) or still missing / quarantined past it."""
    from contracts.status import return_status

    ensure_schema(settings)
    with session_scope(settings) as session:
        rows = return_status(session, period, now)
    return [r for r in rows if r["late"] or r["status"] == "missing"]


def month_before(moment: datetime) -> str:
    """The reporting month that a run on ``moment`` is about: the previous calendar month."""
    stamp = pd.Timestamp(moment).tz_localize(None) if pd.Timestamp(moment).tzinfo else pd.Timestamp(moment)
    return (stamp.to_period("M") - 1).strftime("%Y-%m")


# ------------------------------------------------------------------ derive and judge


def derive(settings: Settings, first_period: str | None = None, last_period: str | None = None, *,
           force: bool = False) -> StepCounts:
    """Derive the KPI values of the months (in range) whose inputs changed since they were derived.

    No range: every month with returns. ``force``: recompute the months even where the inputs are unchanged.
    Returns the counts (months computed and skipped, values written); see ``contracts.incremental``.
    """
    from contracts.incremental import derive_changed

    ensure_schema(settings)
    first, last = _range(first_period, last_period)
    with progress.stage("Deriving KPIs"), session_scope(settings) as session:
        counts = derive_changed(session, first, last, home=settings.home, alpha=settings.alpha, force=force)
    return counts


def judge(settings: Settings, first_period: str | None = None, last_period: str | None = None, *,
          force: bool = False) -> StepCounts:
    """Judge every KPI value against the target in force for its month, for the contract x measure series
    (touching the range) whose values, targets or variations changed since they were judged."""
    from contracts.incremental import judge_changed

    ensure_schema(settings)
    first, last = _range(first_period, last_period)
    with progress.stage("Judging KPIs against targets"), session_scope(settings) as session:
        counts = judge_changed(session, settings.alpha, first, last, force=force)
    if counts.rows_written or counts.rows_deleted or not settings.threshold_cache_path.exists():
        calibrate_shortfall_rule(settings)  # thresholds for the series as judged now (unchanged: already stored)
    return counts


def calibrate_shortfall_rule(settings: Settings, period: str | None = None) -> int:
    """Simulate the shortfall rule's CUSUM thresholds (contracts.fairness) for every contract as of ``period``
    (default: the latest judged month) into the home's threshold cache; returns how many were new.

    Each threshold is a 10,000-year simulation (about 15 ms) and the default world needs about 400. Done once
    here, the documents, each rendered in its own process under Airflow, read them rather than each simulating
    its own again (about 0.15 CPU-s a scorecard). The figures are the same either way: the cache only saves time.
    """
    from contracts.fairness import contract_signals, save_threshold_store, use_threshold_store
    from contracts.judge import judged_months

    with session_scope(settings) as session:
        if session.exec(select(Judgement.period).limit(1)).first() is None:
            return 0
    period = period or latest_period(settings)
    use_threshold_store(settings.threshold_cache_path)
    with progress.stage("Calibrating the shortfall rule") as tick, session_scope(settings) as session:
        monthly = judged_months(session, list(session.exec(select(Contract.id)).all()))
        groups = list(monthly.groupby("contract_id", sort=True)) if not monthly.empty else []
        tick(0, total=len(groups))
        for _contract_id, mine in groups:
            contract_signals(mine, period)
            tick()
    return save_threshold_store()


def _range(first_period: str | None, last_period: str | None) -> tuple[str, str]:
    from contracts.incremental import FIRST, LAST

    first, last = first_period or FIRST, last_period or LAST
    if first > last:
        raise ConfigError(f"the range {first}..{last} is empty: --from must not be after --to")
    return first, last


# ------------------------------------------------------------------ analyse


def analyse(settings: Settings) -> dict:
    """Outcome methods on stored data: comparison groups for reoffending cohorts, synthetic control for
    service redesigns, interrupted time series for contract variations, staggered DiD for roll-outs. Each result
    is a Finding."""
    from contracts.analysis import its_findings, rollout_findings, synth_findings
    from contracts.incremental import cohort_changed

    ensure_schema(settings)
    with (progress.stage("Outcome methods (matching, synthetic control, ITS)") as tick,
          session_scope(settings) as session, keep_creation_times(session, Finding)):
        tick(0, total=4)
        # Comparison groups only for the contracts whose reoffending cohorts changed (contracts.incremental).
        cohorts, cohort_counts = cohort_changed(session, settings.alpha)
        tick()
        synths = synth_findings(session, settings.alpha)
        tick()
        its = its_findings(session, settings.alpha)
        tick()
        rollouts = rollout_findings(session, settings.alpha)  # staggered roll-outs across areas (#17)
        tick()
        return {"comparison_group": len(cohorts), "comparison_group_contracts_skipped": cohort_counts.skipped,
                "synthetic_control": len(synths), "its": len(its), "staggered_did": len(rollouts)}


# ------------------------------------------------------------------ render


def render(settings: Settings, period: str | None = None, only: list[str] | None = None,
           workers: int | None = None) -> dict:
    """Scorecards (HTML, PDF, XLSX) for every (or the named) contract for ``period`` (default: the latest judged
    month), rendered across ``workers`` processes (default: every core), and the index."""
    from cjmonitor.documents import render_documents

    period = period or latest_period(settings)
    with session_scope(settings) as session:
        ids = only or list(session.exec(select(Contract.id).order_by(Contract.id)).all())
        for contract_id in ids:
            if session.get(Contract, contract_id) is None:
                raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
    result = render_documents(settings, period, kinds=("scorecard",), contracts=ids, areas=[], workers=workers)
    html = [p for p in result.documents["scorecard"] if p.endswith(".html")]
    return {"period": period, "scorecards": html, "index": result.index, "seconds": round(result.wall_seconds, 1)}


def evidence_pack(settings: Settings, contract_id: str, as_of: str | None = None) -> dict:
    """Write a contract's renegotiation evidence pack (HTML, PDF, XLSX); returns the paths."""
    from reports.evidence import render_pack

    ensure_schema(settings)
    as_of = as_of or latest_period(settings)
    with session_scope(settings) as session, keep_creation_times(session, Artifact):
        if session.get(Contract, contract_id) is None:
            raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
        paths = render_pack(session, settings.out_dir, contract_id, as_of, alpha=settings.alpha,
                            code_version=code_version())
    return {"contract_id": contract_id, "as_of": as_of, **{k: str(v) for k, v in paths.items()}}


def monthly_report(settings: Settings, area_code: str, period: str) -> dict:
    """Write an area's monthly commissioner report (HTML, PDF, XLSX); returns the paths."""
    from reports.monthly_report import render_monthly_report

    ensure_schema(settings)
    with session_scope(settings) as session, keep_creation_times(session, Artifact):
        if session.get(Area, area_code) is None:
            raise NotFoundError(f"no area '{area_code}': use an ONS code such as E23000005")
        if not session.exec(select(Judgement.id).where(Judgement.period == period)).first():
            raise NotFoundError(f"no judged KPIs for {period}: run `cjmonitor run --period {period}` first")
        paths = render_monthly_report(session, settings.out_dir, area_code, period, alpha=settings.alpha,
                                      code_version=code_version(), threshold=settings.suppression_threshold,
                                      unit_cost_gbp=settings.reoffence_unit_cost_gbp)
    return {"area_code": area_code, "period": period, **{k: str(v) for k, v in paths.items()}}


def lcjb_pack(settings: Settings, area_code: str, period: str) -> dict:
    """Write an area's quarterly LCJB pack (HTML, PDF, XLSX) for a quarter-end month; returns the paths."""
    from reports.lcjb import LcjbError, is_quarter_end, render_lcjb_pack

    ensure_schema(settings)
    if not is_quarter_end(period):
        raise ConfigError(f"the LCJB pack is quarterly: {period} is not a quarter's last month (03, 06, 09 or 12)")
    with session_scope(settings) as session, keep_creation_times(session, Artifact):
        if session.get(Area, area_code) is None:
            raise NotFoundError(f"no area '{area_code}': use an ONS code such as E23000005")
        try:
            paths = render_lcjb_pack(session, settings.out_dir, area_code, period, code_version=code_version(),
                                     threshold=settings.suppression_threshold)
        except LcjbError as exc:
            raise NotFoundError(str(exc)) from None
    return {"area_code": area_code, "period": period, **{k: str(v) for k, v in paths.items()}}


def provider_bundle(settings: Settings, provider_id: str, period: str) -> dict:
    """A zip of one provider's scorecards for a month, checked against the provider's scope as distribution is."""
    import zipfile

    from cjmonitor.distribute import in_scope, period_documents

    ensure_schema(settings)
    with session_scope(settings) as session:
        if session.get(Provider, provider_id) is None:
            raise NotFoundError(f"no provider '{provider_id}': `cjmonitor contracts` shows the provider of each contract")
        documents = [d for d in period_documents(session, period) if in_scope(d, [("provider", provider_id)])]
    if not documents:
        raise NotFoundError(f"no scorecards of {provider_id} for {period}: render them first (`cjmonitor run --period {period}`)")
    target = settings.out_dir / "bundles" / period / f"{provider_id}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for document in documents:
            archive.write(document["path"], arcname=f"{document['contract_id']}_{document['kind']}{Path(document['path']).suffix}")
    return {"provider_id": provider_id, "period": period, "zip": str(target),
            "documents": [{"contract_id": d["contract_id"], "kind": d["kind"]} for d in documents]}


def render_area(settings: Settings, area_code: str, period: str, echo=print) -> dict:
    """Every document of one area for ``period``, one after another in this process: each contract's scorecard,
    the area's monthly report and, in a quarter's last month, its LCJB pack (the monthly DAG's one task per area).

    One task per area rather than per document: each Airflow task process pays for importing the app and
    starting a browser, which per contract was most of the cost. Each document is named through ``echo`` (the
    task's log) with its time. A document that fails does not stop the others; the area then fails, naming them.
    """
    import time

    from cjmonitor.documents import render_one
    from reports.lcjb import is_quarter_end
    from reports.system_index import system_index

    with session_scope(settings) as session:
        if session.get(Area, area_code) is None:
            raise NotFoundError(f"no area '{area_code}': use an ONS code such as E23000005")
        contracts = list(session.exec(select(Contract.id).where(Contract.area_code == area_code)
                                      .order_by(Contract.id)).all())
        lcjb = is_quarter_end(period) and area_code in system_index(session).area_set
    tasks = [("scorecard", c) for c in contracts] + [("monthly_report", area_code)]
    if lcjb:
        tasks.append(("lcjb_pack", area_code))
    elif is_quarter_end(period):
        # An office that sends no whole-system returns gets no LCJB pack, and its monthly run still succeeds.
        echo(f"lcjb_pack {area_code}: not rendered, no system measures are stored for the area "
             "(drop the cjs_system_measures returns: docs/system-measures.md)")
    started = time.perf_counter()
    written: dict[str, list[str]] = {}
    failed: list[str] = []
    for kind, key in tasks:
        try:
            _kind, paths, seconds, _cpu = render_one(settings, kind, key, period)
        except Exception as exc:  # noqa: BLE001 - named below and re-raised as the area's failure
            log.exception("%s %s for %s failed", kind, key, period)
            failed.append(f"{kind} {key}: {type(exc).__name__}: {exc}")
            continue
        written.setdefault(kind, []).extend(paths)
        echo(f"{kind} {key}: {paths[0]} ({seconds:.1f} s)")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(tasks)} documents of {area_code} for {period} failed: "
                           + "; ".join(failed))
    echo(f"{area_code} {period}: {len(tasks)} documents in {time.perf_counter() - started:.1f} s")
    return {"area_code": area_code, "period": period, "documents": written}


def render_index_only(settings: Settings, period: str) -> str:
    """The front page for ``period`` (see ``cjmonitor.documents.render_index_page``)."""
    from cjmonitor.documents import render_index_page

    return render_index_page(settings, period)


# ------------------------------------------------------------------ the whole run


def run_all(settings: Settings, period: str | None = None) -> dict:
    """ingest -> derive -> judge -> render, as the monthly DAG does."""
    summary = ingest(settings)
    derived = derive(settings)
    judged = judge(settings)
    findings = analyse(settings)
    rendered = render(settings, period)
    return {"ingest": summary.to_dict(), "kpi_values": derived.stored, "judgements": judged.stored,
            "derive": derived.summary(), "judge": judged.summary(), "findings": findings, **rendered}
