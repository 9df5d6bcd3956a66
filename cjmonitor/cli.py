"""The ``cjmonitor`` command line.

User errors (``CjmonitorError``, ``OutcomesError``) are printed as one clear
message on stderr with exit code 2; anything else is a bug and keeps its traceback.

Start-up: lazy imports (read this before adding a command or a ``cli_*.py`` module)
----------------------------------------------------------------------------------
Every ``cjmonitor`` process imports this module and every ``cli_*.py`` module it registers, so
``cjmonitor --help`` costs whatever they import at the top. At module level import only the
standard library, ``click``, ``cjmonitor.errors`` and ``cjmonitor.settings`` (and, in a ``cli_*.py``
module, the option helpers of this module). Everything else (pandas, numpy, scipy, statsmodels,
matplotlib, jinja2, sqlmodel/sqlalchemy, ``contracts.*``, ``outcomes.*``, ``reports.*``,
``cjmonitor.pipeline``/``db``/``demo``) is imported inside the command function that uses it::

    @cli.command()
    def mycommand(home):
        from cjmonitor.pipeline import something   # here, not at the top

For type hints of such types write ``from __future__ import annotations`` and import them under
``if TYPE_CHECKING:``. A light command that only checks the schema imports ``ensure_schema`` from
``cjmonitor.migrate`` (not from ``cjmonitor.pipeline``, which imports pandas).
``tests/test_startup.py`` fails if ``import cjmonitor.cli`` pulls in pandas, numpy, scipy,
statsmodels, matplotlib, jinja2 or sqlmodel, or if ``cjmonitor --help`` becomes slow.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path

import click

from cjmonitor.errors import USER_ERRORS


class _Group(click.Group):
    """A click group that turns user errors into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


def _quiet_callback(_ctx, _param, quiet: bool) -> bool:
    if quiet:
        from cjmonitor import progress

        progress.configure(enabled=False)
    return quiet


def _json_callback(_ctx, _param, as_json: bool) -> bool:
    if as_json:  # progress goes to stderr, and only to a terminal: the JSON on stdout stays clean
        from cjmonitor import progress

        progress.configure(json_output=True)
    return as_json


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.option("-q", "--quiet", is_flag=True, callback=_quiet_callback,
              help="No progress bars or progress lines (CJMONITOR_PROGRESS=off does the same).")
@click.version_option(package_name="cjmonitor")
def cli(verbose: bool, quiet: bool) -> None:
    """cjmonitor: commissioning outcomes and contract performance for criminal-justice commissioners.

    Pulls providers' monthly returns, validates and stores them, derives KPIs, judges them
    against contract targets with proper statistics, and writes scorecards and reports.
    """
    from cjmonitor import progress

    progress.configure(enabled=not quiet, json_output=False)  # each command starts from the defaults
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.group(cls=_Group)
def analyse() -> None:
    """Run an outcomes method on any CSV (interrupted time series, matching, DiD, ...)."""


def _settings(home: str | None):
    from cjmonitor.settings import get_settings

    return get_settings(home)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


HOME_OPTION = click.option("--home", type=click.Path(file_okay=False), default=None,
                           help="cjmonitor home (holds var/ and out/); default $CJMONITOR_HOME or the current directory.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, callback=_json_callback,
                           help="Print the result as JSON.")
# Commands that show progress (demo, generate, ingest, run, render) also take --quiet after their name.
QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet_callback,
                            help="No progress bars or progress lines.")
PERIOD_TYPE = click.STRING
from cjmonitor.period import PERIOD, require_judged  # noqa: E402  (one Period type; checked against the data)


def _count(n: int, noun: str) -> str:
    """'1 error', '2 errors'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_period(period: str | None) -> str | None:
    if period is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period")
    return period


@cli.group(cls=_Group)
def db() -> None:
    """Manage the application database."""


@db.command("upgrade")
@HOME_OPTION
def db_upgrade(home: str | None) -> None:
    """Create or migrate the database schema to the latest revision (Alembic)."""
    from cjmonitor.pipeline import upgrade_db

    settings = _settings(home)
    upgrade_db(settings)
    click.echo(f"database at {settings.database_url} is up to date")


WORLD_OPTIONS = [
    click.option("--areas", type=click.IntRange(1, 42), default=42, show_default=True, help="Number of areas (at least 5)."),
    click.option("--months", type=int, default=36, show_default=True, help="Months of returns (24-120)."),
    click.option("--seed", type=int, default=20231, show_default=True, help="Random seed: same seed, same bytes."),
    click.option("--scale", type=float, default=1.0, show_default=True, help="Multiplies caseloads (for benchmarks)."),
    click.option("--start", default="2023-01", show_default=True, help="First month, YYYY-MM."),
]


def _world_options(function):
    for option in reversed(WORLD_OPTIONS):
        function = option(function)
    return function


@cli.command()
@HOME_OPTION
@_world_options
@JSON_OPTION
@QUIET_OPTION
def generate(home, areas, months, seed, scale, start, as_json) -> None:
    """Write a synthetic world's returns into the drop folder and its truth.json (no loading)."""
    from cjmonitor.demo import generate_world

    settings = _settings(home)
    settings.ensure_dirs()
    world = generate_world(settings.drop_dir, settings.truth_path, seed=seed, areas=areas, months=months,
                           start=start, scale=scale)
    result = {"files": len(world.files), "drop_dir": str(settings.drop_dir), "truth": str(settings.truth_path)}
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"wrote {result['files']} return files into {result['drop_dir']}; manifest {result['truth']}")


@cli.command()
@HOME_OPTION
@_world_options
@JSON_OPTION
@QUIET_OPTION
def demo(home, areas, months, seed, scale, start, as_json) -> None:
    """Generate the synthetic world and run the whole job end to end: ingest, derive, judge, render."""
    from cjmonitor import progress

    started = time.perf_counter()
    first_stage = len(progress.timings())
    with progress.stage("Starting (loading the statistics stack)"):  # progress from the first second
        from cjmonitor.demo import generate_world, load_world
        from cjmonitor.pipeline import run_all, upgrade_db

    settings = _settings(home)
    if settings.drop_dir.exists() and any(settings.drop_dir.iterdir()):
        click.echo(f"note: {settings.drop_dir} already holds files; regenerating the world over them", err=True)
    with progress.stage("Preparing the database"):
        upgrade_db(settings)
    world = generate_world(settings.drop_dir, settings.truth_path, seed=seed, areas=areas, months=months,
                           start=start, scale=scale)
    with progress.stage("Loading the register: contracts, targets and recipients"):
        load_world(settings, world)  # the world's register, applied through the same front door as an office's
    result = run_all(settings)
    from reports.specs import write_spec_documents

    with progress.stage("Writing return specs and templates"):
        write_spec_documents(settings.out_dir / "specs", _declared_services(str(settings.home)))
    from cjmonitor.documents import render_documents
    from reports.lcjb import latest_quarter_end

    # Each area's LCJB pack for the latest quarter-end month (issue #19), before the latest index links it.
    lcjb_period = latest_quarter_end(result["period"])
    lcjb = render_documents(settings, lcjb_period, kinds=("lcjb_pack",)) if lcjb_period != result["period"] else None
    # Every evidence pack and monthly report for the latest period, across every core; the index last.
    rendered = render_documents(settings, result["period"], kinds=("evidence_pack", "monthly_report")
                                + (("lcjb_pack",) if lcjb is None else ()))
    lcjb_packs = [p for p in (lcjb or rendered).documents["lcjb_pack"] if p.endswith(".pdf")]
    packs = [p for p in rendered.documents["evidence_pack"] if p.endswith(".pdf")]
    reports = [p for p in rendered.documents["monthly_report"] if p.endswith(".pdf")]
    first_pack = str(settings.out_dir / "packs" / world.truth["its_effects"][0]["contract_id"] / result["period"] / "pack.pdf")
    area_of = {c.id: c.area.code for c in world.contracts}
    first_report = str(settings.out_dir / "reports" / area_of[world.truth["its_effects"][0]["contract_id"]]
                       / result["period"] / "monthly.pdf")
    ingest = result["ingest"]
    summary = {
        "areas": len(world.areas),
        "contracts": len(world.contracts),
        "files_written": len(world.files),
        "submissions_loaded": ingest["accepted"],
        "submissions_rejected": ingest["rejected"],
        "duplicates_skipped": ingest["duplicate"],
        "unrecognised_files": ingest["unrecognised"],
        "kpi_values": result["kpi_values"],
        "period": result["period"],
        "scorecards": len(result["scorecards"]),
        "index": result["index"],
        "error_reports": ingest["error_reports"],
        "evidence_packs": packs,
        "monthly_reports": reports,
        "lcjb_packs": lcjb_packs,
        "render_seconds": {"scorecards": result.get("seconds"), "packs_and_reports": round(rendered.wall_seconds, 1),
                           "lcjb_packs": round(lcjb.wall_seconds, 1) if lcjb is not None else None},
        "truth": str(settings.truth_path),
        "database": settings.database_url,
        "seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": {t.name: t.seconds for t in progress.timings()[first_stage:]},
    }
    if as_json:
        _echo_json(summary)
        return
    click.echo(f"cjmonitor demo: {summary['areas']} areas, {summary['contracts']} contracts, {summary['files_written']} return files")
    click.echo(f"  returns loaded: {summary['submissions_loaded']}, rejected: {summary['submissions_rejected']}"
               f" (error reports in {settings.out_dir / 'data-quality'})")
    click.echo(f"  KPI values derived: {summary['kpi_values']}; latest period {summary['period']}")
    click.echo(f"  scorecards (HTML, PDF, XLSX): {summary['scorecards']} under {settings.out_dir / 'scorecards' / summary['period']}"
               f" in {result.get('seconds')} s")
    click.echo(f"  open: {summary['index']}")
    click.echo(f"  return specs and templates for providers: {settings.out_dir / 'specs' / 'index.html'}")
    click.echo(f"  evidence packs and monthly reports (HTML, PDF, XLSX): {rendered.files()} files in "
               f"{rendered.wall_seconds:.0f} s on {rendered.workers} processes")
    click.echo(f"  evidence packs: {len(packs)}, e.g. {first_pack if first_pack in packs else packs[0] if packs else 'none'}")
    click.echo(f"  monthly commissioner reports: {len(reports)}, e.g. "
               f"{first_report if first_report in reports else reports[0] if reports else 'none'}")
    click.echo(f"  LCJB packs (whole system, quarter to {lcjb_period}): {len(lcjb_packs)}, e.g. "
               f"{lcjb_packs[0] if lcjb_packs else 'none'}")
    click.echo(f"  injected effects to recover: {summary['truth']}")
    click.echo(f"  database: {summary['database']}  ({summary['seconds']} s)")
    click.echo("  time by stage: " + "; ".join(f"{name} {progress.format_seconds(seconds)}"
                                               for name, seconds in summary["stage_seconds"].items()))
    home_flag = f" --home {settings.home}" if Path.cwd().resolve() != settings.home else ""
    failing = world.truth["failing_contracts"][0]
    click.echo(f"  try: cjmonitor scorecard{home_flag} --contract {failing} --period {summary['period']}   "
               "(is this provider meeting its contract, and what to do)")


PROBLEMS_SHOWN = 5  # `cjmonitor ingest` prints this many problems of each rejected file; the rest are in its error report


@cli.command()
@HOME_OPTION
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_name", default=None, help="Only this configured source (see sources.toml).")
@click.option("--provider", default=None, help="Only this provider's files.")
@JSON_OPTION
@QUIET_OPTION
def ingest(home, paths, source_name, provider, as_json) -> None:
    """Land, validate and load new returns: the given files, or every configured source.

    Exit status: 0 when everything received was accepted (or had been already),
    1 when any file was quarantined, refused or not recognised, 2 on a usage or system error.
    """
    from cjmonitor.pipeline import ingest as run_ingest

    summary = run_ingest(_settings(home), provider, source_name=source_name, paths=list(paths) or None)
    if as_json:
        _echo_json(summary.to_dict())
    else:
        for outcome in summary.outcomes:
            if outcome["status"] != "accepted":
                click.echo(f"{outcome['status']:>12}  {outcome['file']}: {outcome['message']}")
            problems = outcome.get("problems") or []
            for problem in problems[:PROBLEMS_SHOWN]:
                where = f"row {problem['row']}" if problem["row"] is not None else "file"
                column = f", column {problem['column']}" if problem["column"] else ""
                click.echo(f"{'':>14}{where}{column}: {problem['message']}")
            if outcome.get("errors", 0) > PROBLEMS_SHOWN and outcome["status"] == "rejected":
                click.echo(f"{'':>14}and {outcome['errors'] - PROBLEMS_SHOWN} more in the error report")
        click.echo(f"accepted {summary.accepted}, quarantined {summary.rejected}, already received {summary.duplicate}, "
                   f"refused {summary.refused}, unrecognised {summary.unrecognised}")
        for report in summary.error_reports:
            click.echo(f"error report: {report}")
    if summary.rejected or summary.refused or summary.unrecognised:
        sys.exit(1)


@cli.group(cls=_Group)
def returns() -> None:
    """Inspect received returns: list them, show one, or the status of a period."""


@returns.command("list")
@HOME_OPTION
@click.option("--period", default=None, help="Only this month, YYYY-MM.")
@click.option("--provider", default=None, help="Only this provider.")
@click.option("--status", "status", type=click.Choice(["accepted", "rejected"]), default=None)
@JSON_OPTION
def returns_list(home, period, provider, status, as_json) -> None:
    """List submissions, newest period first."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.models import Submission

    _check_period(period)
    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        query = select(Submission).order_by(Submission.period.desc(), Submission.provider_id, Submission.return_type, Submission.version)
        if period:
            query = query.where(Submission.period == period)
        if provider:
            query = query.where(Submission.provider_id == provider)
        if status:
            query = query.where(Submission.status == status)
        rows = [s.model_dump(mode="json") for s in session.exec(query).all()]
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'id':>6}  {'period':<7}  {'provider':<28} {'return type':<20} {'v':>2}  {'status':<9} {'current':<7} {'late':<4} {'rows':>7} {'errors':>6}")
    for r in rows:
        click.echo(f"{r['id']:>6}  {r['period']:<7}  {r['provider_id']:<28} {r['return_type']:<20} {r['version']:>2}  "
                   f"{r['status']:<9} {'yes' if r['is_current'] else '':<7} {'late' if r['is_late'] else '':<4} {r['rows']:>7} {r['errors']:>6}")


@returns.command("show")
@HOME_OPTION
@click.argument("submission_id", type=int)
@JSON_OPTION
def returns_show(home, submission_id, as_json) -> None:
    """Show one submission and every problem found in it."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.migrate import ensure_schema
    from contracts.models import Submission, ValidationIssue

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise NotFoundError(f"no submission {submission_id}: `cjmonitor returns list` shows the ids")
        issues = [i.model_dump(mode="json") for i in session.exec(
            select(ValidationIssue).where(ValidationIssue.submission_id == submission_id).order_by(ValidationIssue.id)).all()]
        data = {**submission.model_dump(mode="json"), "issues": issues}
    if as_json:
        _echo_json(data)
        return
    click.echo(f"submission {data['id']}: {data['file_name']} ({data['provider_id']}, {data['return_type']}, {data['period']}, version {data['version']})")
    click.echo(f"  status {data['status']}{' (current)' if data['is_current'] else ''}; received {data['received_at']}"
               f"{' LATE' if data['is_late'] else ''}; {data['rows']} rows; {_count(data['errors'], 'error')}, {_count(data['warnings'], 'warning')}")
    click.echo(f"  source {data['source']}; sha256 {data['sha256']}")
    if data.get("mapping_json"):
        click.echo(f"  read through the provider's mapping {data['mapping_sha256']}: {data['mapping_json']}")
    else:
        click.echo("  read as the template (no provider mapping)")
    for i in issues:
        where = f"row {i['row']}" if i["row"] is not None else "file"
        click.echo(f"  {i['severity']:<7} {where:<9} {i['column'] or '':<26} {i['code']:<18} {i['message']}")


@returns.command("mapping")
@HOME_OPTION
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "return_type", default=None, help="Return type (default: from the file name).")
@click.option("--provider", default=None, help="Provider id (default: from the file name).")
@JSON_OPTION
def returns_mapping(home, path, return_type, provider, as_json) -> None:
    """How a provider's file would be read: through the provider's mapping in the register if it has one,
    else what it looks like and the mapping to add (YAML). Reads the file only; stores nothing."""
    from cjmonitor.errors import InputFileError
    from contracts.mapping import MappingReadError, apply_mapping, load_mappings, propose_mapping
    from contracts.returns import SPECS, parse_file_name

    named = parse_file_name(path.name)
    return_type = return_type or (named.return_type if named else None)
    provider = provider or (named.provider_id if named else None)
    if return_type not in SPECS:
        raise InputFileError(f"{path.name}: say which return it is with --type (one of {', '.join(SPECS)})")
    spec = SPECS[return_type]
    mapping = None
    if provider:
        from cjmonitor.db import session_scope
        from cjmonitor.errors import ConfigError
        from cjmonitor.pipeline import ensure_schema

        settings = _settings(home)
        try:
            ensure_schema(settings)
        except ConfigError:
            settings = None  # no database in this home yet: nothing stored to read through, so propose
        if settings is not None:
            with session_scope(settings) as session:
                mapping = load_mappings(session, provider, {return_type: spec}, return_type).get(return_type)
    try:
        if mapping is not None:
            frame = apply_mapping(path, mapping, spec)
            data = {"file": path.name, "return_type": return_type, "provider": provider, "mapping_sha256": mapping.sha256,
                    "sheet": frame.attrs["sheet"], "header_row": frame.attrs["header_row"], "records": len(frame),
                    "columns": list(frame.columns), "notes": [m for _, m in frame.attrs["notes"]]}
        else:
            proposal = propose_mapping(path, spec, provider)
            data = {"file": path.name, "return_type": return_type, "provider": provider, "mapping_sha256": None,
                    "sheet": proposal.sheet, "header_row": proposal.header_row, "looks_like_the_return": proposal.plausible,
                    "guesses": [{"header": g.header, "column_letter": g.letter, "column": g.column, "score": g.score}
                                for g in proposal.guesses],
                    "missing_required": list(proposal.missing_required), "proposal": proposal.lines(), "yaml": proposal.yaml}
    except MappingReadError as problem:
        raise InputFileError(f"{path.name}: {problem.message}") from None
    if as_json:
        _echo_json(data)
        return
    if mapping is not None:
        where = f"sheet '{data['sheet']}', " if data["sheet"] is not None else ""
        click.echo(f"{path.name}: read through {provider}'s mapping {mapping.sha256[:12]}: {where}header on row "
                   f"{data['header_row']}; {data['records']} records; columns {', '.join(data['columns'])}")
        for note in data["notes"]:
            click.echo(f"  note: {note}")
        return
    for line in data["proposal"]:
        click.echo(line)
    click.echo("")
    click.echo(data["yaml"], nl=False)


@returns.command("status")
@HOME_OPTION
@click.option("--period", required=True, help="Month, YYYY-MM.")
@JSON_OPTION
def returns_status(home, period, as_json) -> None:
    """Expected returns for a month: accepted, quarantined, late, missing, per provider."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.status import return_status

    _check_period(period)
    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        rows = return_status(session, period)
    if as_json:
        _echo_json({"period": period, "returns": rows})
        return
    click.echo(f"Returns for {period}")
    click.echo(f"{'provider':<28} {'return type':<20} {'status':<12} {'late':<4} {'versions':>8}  due")
    for r in rows:
        click.echo(f"{r['provider_id']:<28} {r['return_type']:<20} {r['status']:<12} {'late' if r['late'] else '':<4} {r['versions']:>8}  {r['due'] or ''}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("accepted", "quarantined", "missing", "not yet due")}
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {sum(r['late'] for r in rows)} late")


@cli.command()
@HOME_OPTION
@click.option("--period", default=None, help="Month to render, YYYY-MM (default: the latest judged month).")
@click.option("--contract", "contracts", multiple=True, help="Only this contract (repeatable).")
@JSON_OPTION
@QUIET_OPTION
def run(home, period, contracts, as_json) -> None:
    """Ingest, derive KPIs, judge them, run the outcome methods and render scorecards (no scheduler needed)."""
    from cjmonitor.pipeline import analyse, derive, judge, render
    from cjmonitor.pipeline import ingest as run_ingest

    settings = _settings(home)
    _check_period(period)
    summary = run_ingest(settings)
    kpis = derive(settings)
    judged = judge(settings)
    findings = analyse(settings)
    rendered = render(settings, period, list(contracts) or None)
    result = {"ingest": {k: getattr(summary, k) for k in ("accepted", "rejected", "duplicate", "unrecognised")},
              "kpi_values": kpis, "judgements": judged, "findings": findings, **rendered}
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"loaded {summary.accepted} returns ({summary.rejected} rejected); {kpis} KPI values; "
                   f"{len(rendered['scorecards'])} scorecards for {rendered['period']}; index {rendered['index']}")


@cli.command()
@HOME_OPTION
@click.option("--period", default=None, help="Month to render, YYYY-MM (default: the latest judged month).")
@click.option("--contract", "contracts", multiple=True, help="Only this contract (repeatable).")
@JSON_OPTION
@QUIET_OPTION
def render(home, period, contracts, as_json) -> None:
    """Render provider scorecards and the index from what is already judged."""
    from cjmonitor.pipeline import render as run_render

    _check_period(period)
    rendered = run_render(_settings(home), period, list(contracts) or None)
    if as_json:
        _echo_json(rendered)
    else:
        click.echo(f"{len(rendered['scorecards'])} scorecards for {rendered['period']}; index {rendered['index']}")


@cli.command()
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@JSON_OPTION
def scorecard(home, contract_id, period, as_json) -> None:
    """The judged KPIs of one contract for one month: value, target, RAG, verdict, interval, SPC signals."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.migrate import ensure_schema
    from contracts.actions import format_value  # noqa: F401
    from contracts.models import Contract, Judgement
    from reports.scorecard import METHOD_NAMES
    from reports.views import build_scorecard_view

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        if session.get(Contract, contract_id) is None:
            raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
        if not session.exec(select(Judgement.id).where(Judgement.contract_id == contract_id,
                                                       Judgement.period == period)).first():
            require_judged(session, period, contract_id=contract_id)
        # The same view the scorecard document is rendered from (reports.views).
        result = build_scorecard_view(session, contract_id, period, settings.alpha).to_dict()
    measures, evidence = result["measures"], result["evidence"]
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{result['name']} ({contract_id}), {period}")
    for m in measures:
        value = format_value(m["value"], m["unit"])
        interval = "" if m["ci_low"] is None else f"({format_value(m['ci_low'], m['unit'])} to {format_value(m['ci_high'], m['unit'])})"
        spc = "; ".join(m["spc_signals"]) or m["spc_variation"] or ""
        name = m["name"] + (" *" if m["source"] == "provider_reported" else "")
        click.echo(f"  {name:<58} {value:>7} {interval:<16} target {format_value(m['target'], m['unit'], 0)}  {m['rag']:<6} "
                   f"{m['verdict']:<20} {spc}")
    if any(m["source"] == "provider_reported" for m in measures):
        click.echo("  * reported by the provider as an aggregate, not derived from person-level records")
    click.echo("Rolling windows (months pooled, judged against the target in force now):")
    for m in measures:
        parts = []
        for window, pooled_row in m["rolling"].items():
            value = format_value(pooled_row["value"], m["unit"])
            parts.append(f"{window} to {period}: {value} {pooled_row['rag']}, {pooled_row['verdict']}")
        click.echo(f"  {m['name']:<58} {'; '.join(parts)}")
    missed = [m["name"] for m in measures if m["verdict"] == "not met"]
    click.echo(f"Missed beyond sampling noise: {', '.join(missed) if missed else 'none'}.")
    click.echo(f"Service credits due this month: £{result['service_credits_due']:,.2f} "
               f"(`cjmonitor credits` shows the working); payment by results payable: £{result['pbr_payable']:,.2f}.")
    if evidence:
        click.echo("Outcome evidence:")
        for item in evidence:
            method = METHOD_NAMES.get(item["method"], item["method"])
            click.echo(f"  {method}, {item['measure_code']} ({item['cohort'] or ''}): {item['sentence']}")
    click.echo("What to do:")
    for action in result["actions"]:
        click.echo(f"  - {action}")


@cli.command()
@HOME_OPTION
@click.option("--contract", "contract_id", required=True, help="Contract id, e.g. TTG-E23000005.")
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@JSON_OPTION
def credits(home, contract_id, period, as_json) -> None:
    """Service credits due for a month (after the quarterly cap) and payment by results, with the working."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.credits import statement

    _check_period(period)
    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        from cjmonitor.errors import NotFoundError
        from contracts.models import Contract

        if session.get(Contract, contract_id) is None:
            raise NotFoundError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
        require_judged(session, period, contract_id=contract_id)
        result = statement(session, contract_id, period).to_dict()
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{contract_id}, {period}: monthly fee £{result['monthly_fee_gbp']:,.2f}")
    click.echo("Service credits")
    for line in result["service_credits"]["lines"]:
        click.echo(f"  {line['name']:<58} {line['rag']:<8} £{line['amount']:>10,.2f}  {line['working']}")
    click.echo(f"  {result['service_credits']['cap']['working']}")
    click.echo(f"  total due: £{result['service_credits']['total']:,.2f}")
    click.echo("Payment by results")
    for line in result["pbr"]["lines"]:
        click.echo(f"  {line['working']}")
    click.echo(f"  total payable: £{result['pbr']['total']:,.2f}")


@cli.command()
@HOME_OPTION
@click.option("--period", required=True, help="Month, YYYY-MM.")
@click.option("--dry-run", is_flag=True, help="Show who would get what; send nothing.")
@click.option("--resend", is_flag=True, help="Send again even to recipients who already had this period.")
@JSON_OPTION
def distribute(home, period, dry_run, resend, as_json) -> None:
    """Email each recipient their documents for a period (within their scopes only).

    Exit status 1 when any delivery failed or was refused.
    """
    from cjmonitor.distribute import distribute as run_distribute
    from cjmonitor.migrate import ensure_schema

    _check_period(period)
    settings = _settings(home)
    ensure_schema(settings)
    result = run_distribute(settings, period, dry_run=dry_run, resend=resend)
    if as_json:
        _echo_json(result)
    else:
        for d in result["deliveries"]:
            click.echo(f"{d['status']:<16} {d['recipient']:<52} {len(d['documents'])} documents")
    if any(d["status"] in ("failed", "refused") for d in result["deliveries"]):
        sys.exit(1)


@cli.group(cls=_Group)
def recipients() -> None:
    """Manage who receives documents, and for which areas, contracts or providers."""


@recipients.command("add")
@HOME_OPTION
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, required=True,
              help="area:CODE, contract:ID or provider:ID (repeatable).")
def recipients_add(home, email, name, scopes) -> None:
    """Add a recipient, or add scopes to an existing one."""
    from cjmonitor.db import session_scope
    from cjmonitor.distribute import add_recipient
    from cjmonitor.migrate import ensure_schema

    parsed = []
    for scope in scopes:
        kind, _, ref = scope.partition(":")
        if not ref:
            raise click.BadParameter(f"{scope!r}: write a scope as area:CODE, contract:ID or provider:ID", param_hint="--scope")
        parsed.append((kind, ref))
    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        add_recipient(session, email, name, parsed)
    click.echo(f"{email}: {', '.join(scopes)}")


@recipients.command("list")
@HOME_OPTION
@JSON_OPTION
def recipients_list(home, as_json) -> None:
    """List recipients and their scopes."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.distribute import scopes_of
    from cjmonitor.migrate import ensure_schema
    from contracts.models import Recipient

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        rows = [{"email": r.email, "name": r.name, "active": r.active,
                 "scopes": [{"kind": k, "id": ref} for k, ref in scopes_of(session, r.id)]}
                for r in session.exec(select(Recipient).order_by(Recipient.email)).all()]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        scopes = ", ".join(f"{s['kind']}:{s['id']}" for s in row["scopes"])
        click.echo(f"{row['email']:<52} {'' if row['active'] else '(inactive) '}{scopes}")


@recipients.command("remove")
@HOME_OPTION
@click.option("--email", required=True)
def recipients_remove(home, email) -> None:
    """Stop sending to a recipient (kept, marked inactive, so the delivery log stays complete)."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.migrate import ensure_schema
    from contracts.models import Recipient

    settings = _settings(home)
    ensure_schema(settings)
    with session_scope(settings) as session:
        recipient = session.exec(select(Recipient).where(Recipient.email == email)).first()
        if recipient is None:
            raise NotFoundError(f"no recipient {email!r}: `cjmonitor recipients list` shows them")
        recipient.active = False
    click.echo(f"{email}: inactive")


@cli.command("contracts")
@HOME_OPTION
@JSON_OPTION
def list_contracts(home, as_json) -> None:
    """List the contracts in the database."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from contracts.models import Contract

    with session_scope(_settings(home)) as session:
        rows = [c.model_dump(mode="json") for c in session.exec(select(Contract).order_by(Contract.id)).all()]
    if as_json:
        _echo_json(rows)
    else:
        for row in rows:
            click.echo(f"{row['id']:<16} {row['provider_id']:<28} {row['name']}")


def _declared_services(home: str | None) -> list:
    """The local services declared in the home's database; none when the home has no database yet."""
    from sqlalchemy import inspect

    from cjmonitor.db import get_engine, session_scope
    from contracts.declared import load_services

    settings = _settings(home)
    if settings.database_url.startswith("sqlite:///") and not Path(settings.database_url[len("sqlite:///"):]).exists():
        return []
    if not inspect(get_engine(settings)).has_table("declared_service"):
        return []
    with session_scope(settings) as session:
        return list(load_services(session).values())


@cli.command()
@click.argument("return_type", required=False)
@click.option("--write", "write_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a Markdown and HTML page and CSV/XLSX templates per return type into this folder.")
@HOME_OPTION
@JSON_OPTION
def specs(return_type, write_dir, home, as_json) -> None:
    """Print the declared spec of each return type (columns, types, rules), or of one.

    Local services declared in the home's register are included, with their KPIs.
    """
    from dataclasses import asdict

    from contracts.returns import SPECS

    services = _declared_services(home)
    if write_dir is not None:
        from reports.specs import write_spec_documents

        written = write_spec_documents(write_dir, services)
        click.echo(f"wrote {len(written)} files into {write_dir}; providers start at {write_dir / 'index.html'}")
        return

    every = {**SPECS, **{service.return_type: service.return_spec for service in services}}
    kpis = {service.return_type: [kpi.to_dict() for kpi in service.kpis] for service in services}
    if return_type is not None and return_type not in every:
        raise click.BadParameter(f"unknown return type {return_type!r}; choose from {', '.join(every)}")
    chosen = [every[return_type]] if return_type else list(every.values())
    if as_json:
        _echo_json([{**asdict(spec), **({"kpis": kpis[spec.return_type]} if spec.return_type in kpis else {})}
                    for spec in chosen])
        return
    for spec in chosen:
        click.echo(f"{spec.return_type} ({spec.grain}, {spec.frequency}): {spec.description}")
        click.echo(f"  file name: <provider>_{spec.return_type}_<YYYY-MM>[_v<n>].csv|xlsx; key: {', '.join(spec.key)}")
        for column in spec.columns:
            rules = []
            if column.allowed:
                rules.append("one of " + "/".join(column.allowed))
            if column.minimum is not None:
                rules.append(f">= {column.minimum:g}")
            if column.maximum is not None:
                rules.append(f"<= {column.maximum:g}")
            flag = "required" if column.required else "optional"
            click.echo(f"  {column.name:<30} {column.kind:<9} {flag:<9} {'; '.join(rules)}  {column.description}")
        for kpi in kpis.get(spec.return_type, []):
            click.echo(f"  KPI {kpi['code']}: {kpi['name']} ({kpi['direction']} is better)")
        click.echo("")


def _register_analyse_commands() -> None:
    """Attach the analysts' commands that exist in this build."""
    import importlib

    for module_name in ("cjmonitor.cli_its", "cjmonitor.cli_groups", "cjmonitor.cli_survival", "cjmonitor.cli_spc"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        for command in getattr(module, "COMMANDS", []):
            analyse.add_command(command)


_register_analyse_commands()


def _register_top_level_commands() -> None:
    """Attach command modules that add top-level commands (reports, packs) when present in this build."""
    import importlib

    for module_name in ("cjmonitor.cli_reports", "cjmonitor.cli_contracts", "cjmonitor.cli_register",
                        "cjmonitor.cli_system"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register_top_level_commands()


def main() -> None:
    cli(prog_name="cjmonitor")


if __name__ == "__main__":
    main()
