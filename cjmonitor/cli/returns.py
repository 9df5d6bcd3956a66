"""``cjmonitor returns list|show|mapping|status``."""

from __future__ import annotations

from pathlib import Path

import click

from cjmonitor.cli.common import (
    HOME_OPTION,
    JSON_OPTION,
    _count,
    _echo_json,
    _Group,
    _settings,
)
from cjmonitor.period import PERIOD


@click.group(cls=_Group)
def returns() -> None:
    """Inspect received returns: list them, show one, or the status of a period."""


@returns.command("list")
@HOME_OPTION
@click.option("--period", default=None, type=PERIOD, help="Only this month, YYYY-MM.")
@click.option("--provider", default=None, help="Only this provider.")
@click.option("--status", "status", type=click.Choice(["accepted", "rejected"]), default=None)
@JSON_OPTION
def returns_list(home, period, provider, status, as_json) -> None:
    """List submissions, newest period first."""
    from sqlmodel import select

    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.models import Submission

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
@click.option("--period", required=True, type=PERIOD, help="Month, YYYY-MM.")
@JSON_OPTION
def returns_status(home, period, as_json) -> None:
    """Expected returns for a month: accepted, quarantined, late, missing, per provider."""
    from cjmonitor.db import session_scope
    from cjmonitor.migrate import ensure_schema
    from contracts.status import return_status

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
