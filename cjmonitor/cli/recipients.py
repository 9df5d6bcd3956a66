"""``cjmonitor recipients add|list|remove``."""

from __future__ import annotations

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _echo_json, _Group, _settings


@click.group(cls=_Group)
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
