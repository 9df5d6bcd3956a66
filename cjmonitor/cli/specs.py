"""``cjmonitor specs``: the declared return specs."""

from __future__ import annotations

from pathlib import Path

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _echo_json, _settings


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


@click.command()
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
