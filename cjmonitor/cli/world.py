"""``cjmonitor generate`` and ``cjmonitor demo``: a synthetic world, and the whole job run on it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, QUIET_OPTION, _echo_json, _settings
from cjmonitor.cli.specs import _declared_services
from cjmonitor.period import PERIOD

WORLD_OPTIONS = [
    click.option("--areas", type=click.IntRange(1, 42), default=42, show_default=True, help="Number of areas (at least 5)."),
    click.option("--months", type=int, default=36, show_default=True, help="Months of returns (24-120)."),
    click.option("--seed", type=int, default=20231, show_default=True, help="Random seed: same seed, same bytes."),
    click.option("--scale", type=float, default=1.0, show_default=True, help="Multiplies caseloads (for benchmarks)."),
    click.option("--start", default="2023-01", type=PERIOD, show_default=True, help="First month, YYYY-MM."),
]


def _world_options(function):
    for option in reversed(WORLD_OPTIONS):
        function = option(function)
    return function


@click.command()
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


@click.command()
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
