"""Whole-system commands (issue #19): `system load`, `pathway`, `links` and `report lcjb`.

``system load`` stores cjs_system_measures returns (or published tables through a mapping file);
``pathway`` prints an area's funnel from the stored measures, with disclosure control; ``links``
prints the interdependencies that concern an area.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _settings, require_judged_month
from cjmonitor.period import PERIOD


def _labels() -> dict[tuple[str, str], str]:
    from contracts.system import load_catalogue

    return {item.key: item.name for item in load_catalogue().measures}


def _csv_files(paths: tuple[Path, ...]) -> list[Path]:
    from cjmonitor.errors import InputFileError

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        else:
            files.append(path)
    if not files:
        raise InputFileError(f"no CSV files in {', '.join(map(str, paths))}")
    return files


@click.group("system")
def system_group() -> None:
    """Criminal-justice system measures: police, CPS, courts, prisons, probation, youth justice."""


@system_group.command("load")
@HOME_OPTION
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--mapping", default=None,
              help="A mapping file (or a name in contracts/adapters/, e.g. cjs_delivery_dashboard) for published tables; "
                   "without it each file must be a cjs_system_measures return.")
@JSON_OPTION
def load_command(home, paths, mapping, as_json):
    """Store cjs_system_measures returns (files or folders of CSV), each file all or nothing."""
    from sqlalchemy.exc import IntegrityError

    from cjmonitor.db import session_scope
    from cjmonitor.errors import InputFileError
    from cjmonitor.pipeline import ensure_schema
    from contracts.ingest import ReadProblem, read_return
    from contracts.system import SystemReturnError, store_system_measures
    from contracts.system_adapter import adapt_csv

    settings = _settings(home)
    ensure_schema(settings)
    results, failed = [], 0
    for path in _csv_files(paths):
        try:
            if mapping:
                adapted = adapt_csv(path, mapping)
                if adapted.errors:
                    raise SystemReturnError(f"{path.name}: " + "; ".join(
                        f"row {i.row}, column {i.column}: {i.message}" for i in adapted.errors[:10]))
                frame = adapted.frame.drop(columns=["source_row"])
            else:
                try:
                    frame, _notes = read_return(path)
                except ReadProblem as problem:
                    raise InputFileError(f"{path.name}: {problem.message}") from None
            with session_scope(settings) as session:
                outcome = store_system_measures(session, frame, source=path.name)
            results.append({"file": path.name, "status": "stored", "rows": outcome.rows, "replaced": outcome.replaced})
        except IntegrityError:
            failed += 1
            results.append({"file": path.name, "status": "rejected", "error": (
                "an area in the file is not in the database: apply the register (or run `cjmonitor demo`) first")})
        except (SystemReturnError, InputFileError) as exc:
            failed += 1
            results.append({"file": path.name, "status": "rejected", "error": str(exc)})
    if as_json:
        click.echo(json.dumps({"files": results, "rejected": failed}, indent=2))
    else:
        for row in results:
            if row["status"] == "stored":
                click.echo(f"{row['file']}: stored {row['rows']} figures ({row['replaced']} replaced)")
            else:
                click.echo(f"{row['file']}: rejected, nothing stored: {row['error']}", err=True)
    if failed:
        raise SystemExit(2)


def _read(settings, area_code: str | None = None, breakdowns: bool = False):
    from cjmonitor.db import session_scope
    from cjmonitor.errors import NotFoundError
    from cjmonitor.pipeline import ensure_schema
    from contracts.system import read_system_measures

    ensure_schema(settings)
    with session_scope(settings) as session:
        frame = read_system_measures(session, area_code=area_code, breakdowns=breakdowns)
    if frame.empty:
        raise NotFoundError("no system measures are stored: load them with `cjmonitor system load FILES`")
    return frame


def _fmt(value, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{100 * value:.1f}%" if percent else f"{value:,.0f}"


@click.command("pathway")
@HOME_OPTION
@click.option("--area", "area_code", required=True, help="ONS code of the area, e.g. E23000039.")
@click.option("--period", required=True, type=PERIOD, help="Last month of the window, YYYY-MM.")
@click.option("--months", default=3, show_default=True, type=click.IntRange(1, 24), help="Months in the window.")
@JSON_OPTION
def pathway_command(home, area_code, period, months, as_json):
    """An area's criminal-justice pathway: each stage's volume, attrition, timeliness and trend, against the
    national figure and the most similar areas (counts below the disclosure threshold suppressed)."""
    from contracts.pathway import build_pathway
    from reports.pathway import published_pathway

    settings = _settings(home)
    frame = _read(settings, breakdowns=True)
    view = build_pathway(frame, area_code, period, months=months)
    data = published_pathway(view, threshold=settings.suppression_threshold)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"{area_code}: pathway for the {months} months to {period} (similar areas: "
               f"{', '.join(s['area_code'] for s in data['similar_areas'])})")
    for stage in data["stages"]:
        timeliness = "; ".join(f"{k} {v:.0f} days" for k, v in stage["timeliness"].items())
        click.echo(f"  {stage['label']:<34} {_fmt(stage['volume']):>9}  conversion {_fmt(stage['conversion'], True):>7}"
                   f" (national {_fmt(stage['national']['conversion'], True)}, similar "
                   f"{_fmt(stage['similar']['conversion'], True)})  trend {_fmt(stage['trend'], True)}"
                   + (f"  {timeliness}" if timeliness else "") + (f"  [{stage['note']}]" if stage["note"] else ""))
    click.echo(data["caveat"])


@click.command("links")
@HOME_OPTION
@click.option("--area", "area_code", required=True, help="ONS code of the area.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="False discovery rate.")
@JSON_OPTION
def links_command(home, area_code, alpha, as_json):
    """Interdependencies between agencies' measures that concern an area: associations, not causes."""
    from cjmonitor.errors import NotFoundError
    from outcomes.interdependence import analyse_interdependencies

    settings = _settings(home)
    frame = _read(settings)
    if area_code not in set(frame["area_code"]):
        raise NotFoundError(f"no system measures are stored for area {area_code}")
    monthly = frame[frame["period_type"] == "month"]
    result = analyse_interdependencies(monthly, alpha=alpha, labels=_labels())
    keys = ("cause", "effect", "lag_months", "estimate", "ci_low", "ci_high", "q_value", "scope", "headline")
    links = [{k: link[k] for k in keys} for link in result.links_for_area(area_code)]
    if as_json:
        click.echo(json.dumps(links, indent=2))
        return
    click.echo(result.headline)
    if not links:
        click.echo(f"No link concerning {area_code} at a false discovery rate of {alpha:.0%}.")
    for link in links:
        click.echo(f"- {link['headline']}")


@click.command("lcjb")
@HOME_OPTION
@click.option("--area", "area_code", required=True, help="ONS code of the area, e.g. E23000005.")
@click.option("--period", required=True, type=PERIOD, help="The quarter's last month, YYYY-MM (03, 06, 09 or 12).")
@JSON_OPTION
def lcjb_command(home, area_code, period, as_json):
    """Write an area's quarterly LCJB pack (whole-system view): HTML, PDF and XLSX."""
    from cjmonitor import pipeline

    settings = _settings(home)
    require_judged_month(settings, period, area_code=area_code)
    result = pipeline.lcjb_pack(settings, area_code, period)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"LCJB pack for {area_code}, quarter to {period}: {result['pdf']} (HTML {result['html']}, "
                   f"XLSX {result['xlsx']})")
