"""The office's front door: `cjmonitor init`, `cjmonitor register check|apply|export|schema`, `cjmonitor frameworks`.

Heavy imports (pydantic models, openpyxl) stay inside the commands so `cjmonitor --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cjmonitor.cli.common import HOME_OPTION, JSON_OPTION, _Group, _settings
from cjmonitor.period import PERIOD

REGISTER_TEMPLATE = """\
# cjmonitor register: everything your office maintains, in one file.
#   cjmonitor register check register.yaml      checks it and writes nothing
#   cjmonitor register apply register.yaml      loads it (all or nothing) and prints what changed
#   cjmonitor register export > register.yaml   writes what the database holds back as a register
# Every key is described in the README ("Set up your own office") and in `cjmonitor register schema`.
# Dates are YYYY-MM-DD; targets and tolerances are proportions (0.85 for 85%).

office:                        # your office and the areas it covers (ONS police force area codes, `cjmonitor areas`)
  name: "Office of the Police and Crime Commissioner for Dorset"
  areas: [E23000039]

providers:                     # who sends returns; id starts every return file name: <id>_<return type>_<YYYY-MM>.csv
  - {id: harbour-womens-centre, name: "Harbour Women's Centre CIC", return_mode: person}   # or aggregate

services:                      # local services, declared as data (built-in ones: crc, ttg, em, health)
  - id: womens_centre
    name: "Women's centre"
    return:
      type: womens_referrals    # files are <provider>_womens_referrals_<YYYY-MM>[_v<n>].csv|xlsx
      period_column: referral_date
      unique: [person_id, referral_date]
      columns:
        - {name: contract_id, type: text, required: true}
        - {name: person_id, type: person_key, required: true}    # pseudonymised at load
        - {name: referral_date, type: date, required: true}
        - {name: first_seen_date, type: date, not_before: referral_date}
        - {name: outcome, type: text, allowed: [completed, disengaged, ongoing]}
    kpis:
      - code: wc_seen_5wd
        name: "Seen within 5 working days of referral"
        direction: higher
        denominator: {all: true}
        numerator: {within_working_days: {from: referral_date, to: first_seen_date, days: 5}}
      - code: wc_completed
        name: "Referrals closed as completed"
        direction: higher
        denominator: {column_in: {column: outcome, values: [completed, disengaged]}}
        numerator: {column_in: {column: outcome, values: [completed]}}

contracts:
  - id: DOR-WC-2025
    name: "Women's centre: Dorset"
    area: E23000039
    provider: harbour-womens-centre
    service: womens_centre       # or crc | ttg | em | health, with KPIs from a framework (`cjmonitor frameworks`)
    start: 2025-04-01
    end: 2028-03-31
    annual_value_gbp: 420000
    return_due_day: 10           # returns are due by this day of the following month
    kpis:                        # terms at the start; later changes go in variations (or edit and re-apply)
      - {code: wc_seen_5wd, target: 0.85, tolerance: 0.05, min_volume: 20, service_credit_pct: 1.0}
      - {code: wc_completed, target: 0.60, tolerance: 0.05, min_volume: 20}
    payment: {service_credit_cap_pct: 10}
    variations: []               # {date, kind, description, kpi, kpis: [{code, target, ...}], payment: {...}}

recipients:                    # who gets which documents: scopes area:<code>, contract:<id>, provider:<id>
  - {email: commissioning@dorset-pcc.example.org, name: "Commissioning team", scopes: ["area:E23000039"]}
"""

README_TEMPLATE = """\
cjmonitor home: {home}

This folder is empty of data. Next:

  1. Edit register.yaml (your office, providers, services, contracts and recipients), then check it:
       cjmonitor register check {home}/register.yaml
  2. Create the database and load the register (all or nothing; prints what changed):
       cjmonitor db upgrade --home {home} && cjmonitor register apply {home}/register.yaml --home {home}
  3. Drop this month's returns (<provider id>_<return type>_<YYYY-MM>.csv) in {home}/var/drop
     (sources.toml can name other folders or SFTP servers; as written it reads var/drop) and run:
       cjmonitor run --home {home}

`cjmonitor frameworks` lists the built-in KPI frameworks; `cjmonitor register schema` the register's keys.
"""

SOURCES_TEMPLATE = """\
# Where providers' returns arrive. Empty: cjmonitor reads the drop folder var/drop under this home.
# Examples (see the README, "Sources"):
# [[source]]
# name = "drop"
# kind = "drop_folder"
# path = "var/drop"
"""


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite register.yaml, sources.toml and README.txt if they exist.")
def init_command(directory: Path | None, force: bool) -> None:
    """Make a fresh cjmonitor home with no demo data: a register template, an empty sources.toml, a README.txt."""
    from cjmonitor.errors import ConfigError

    home = (directory or Path.cwd()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    files = {"register.yaml": REGISTER_TEMPLATE, "sources.toml": SOURCES_TEMPLATE,
             "README.txt": README_TEMPLATE.format(home=home)}
    existing = [name for name in files if (home / name).exists()]
    if existing and not force:
        raise ConfigError(f"{home} already holds {', '.join(existing)}: use another folder, or --force to overwrite")
    for name, text in files.items():
        (home / name).write_text(text)
    (home / "var" / "drop").mkdir(parents=True, exist_ok=True)
    click.echo(f"made a cjmonitor home in {home}")
    click.echo((home / "README.txt").read_text())


@click.group("register", cls=_Group)
def register_group() -> None:
    """The office's register: check, apply, export it, or print its JSON Schema."""


def _effective(value: str | None):
    from datetime import date

    if value is None:
        return None
    year, month = (int(x) for x in value.split("-"))
    return date(year, month, 1)


EFFECTIVE_OPTION = click.option("--effective", default=None, type=PERIOD,
                                help="First month under changed terms (default: the current month).")


@register_group.command("check")
@HOME_OPTION
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@EFFECTIVE_OPTION
@JSON_OPTION
def check_command(home, file, effective, as_json) -> None:
    """Validate a register (YAML, JSON or XLSX) and write nothing; with a database, also try it against it."""
    from cjmonitor.pipeline import check_register_file
    from contracts.register import RegisterError

    try:
        result = check_register_file(_settings(home), file, effective=_effective(effective))
    except RegisterError as exc:
        if as_json:
            click.echo(json.dumps({"file": str(file), "valid": False, "problems": [p.to_dict() for p in exc.problems]}, indent=2))
            raise SystemExit(1) from None
        raise
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{file}: valid")
    if result.get("against_database"):
        counts = result["would_change"]
        click.echo(f"  applying it would add {counts['added']}, change {counts['changed']} and close {counts['closed']}")
    for note in result["notes"]:
        click.echo(f"  note: {note}")


@register_group.command("apply")
@HOME_OPTION
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@EFFECTIVE_OPTION
@click.option("--dry-run", is_flag=True, help="Show what would change and write nothing.")
@JSON_OPTION
def apply_command(home, file, effective, dry_run, as_json) -> None:
    """Make the database match the register, all or nothing, and print what was added, changed and closed.

    A changed target or payment term becomes a dated variation from --effective (the old terms are closed,
    never overwritten); a contract removed from the register is closed and its data stay.
    """
    from cjmonitor.pipeline import apply_register_file

    result = apply_register_file(_settings(home), file, effective=_effective(effective), dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    verb = "would add" if dry_run else "added"
    click.echo(f"{file}: {verb} {result['added']}, changed {result['changed']}, closed {result['closed']}"
               f" (changes from {result['effective_date']}){' (dry run: nothing written)' if dry_run else ''}")
    sign = {"added": "+", "changed": "~", "closed": "-"}
    for change in result["changes"]:
        if change["kind"] == "measure" and change["action"] == "added":
            continue
        detail = f": {change['detail']}" if change["detail"] else ""
        click.echo(f"  {sign[change['action']]} {change['kind']} {change['id']}{detail}")
    measures = sum(1 for c in result["changes"] if c["kind"] == "measure" and c["action"] == "added")
    if measures:
        click.echo(f"  + {measures} KPI definitions from the frameworks")
    for note in result["notes"]:
        click.echo(f"  note: {note}")


@register_group.command("export")
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a workbook (one sheet per section) to this file.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write YAML/JSON to this file instead of standard output.")
def export_command(home, as_json, xlsx, output) -> None:
    """Write what the database holds as a register: applying it again changes nothing."""
    from cjmonitor.pipeline import export_register_data
    from contracts.register import to_json, to_yaml

    data = export_register_data(_settings(home))
    if xlsx is not None:
        from contracts.register_xlsx import write_register_xlsx

        write_register_xlsx(data, xlsx)
        click.echo(f"wrote {xlsx}")
        return
    text = to_json(data) if as_json else to_yaml(data, header="# cjmonitor register, exported from the database\n")
    if output is not None:
        output.write_text(text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@register_group.command("schema")
def schema_command() -> None:
    """Print the register's JSON Schema (for editors that check YAML as it is typed)."""
    from contracts.register import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@click.command("frameworks")
@JSON_OPTION
def frameworks_command(as_json) -> None:
    """The KPI frameworks a contract can name (`framework:` in the register), with official codes per version."""
    from contracts.catalogue import FRAMEWORKS

    rows = [f.to_dict() for f in FRAMEWORKS.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for framework in FRAMEWORKS.values():
        until = framework.valid_to or "now"
        click.echo(f"{framework.id}: {framework.name} ({framework.era}; {framework.valid_from} to {until})")
        for kpi in framework.kpis:
            codes = ", ".join(f"{v.official_code or '(no official code)'} {v.valid_from}..{v.valid_to or ''}"
                              f"{' [secondary]' if v.source == 'secondary' else ''}" for v in kpi.versions)
            click.echo(f"  {kpi.code:<28} {kpi.service:<7} {kpi.measure.name}  [{codes}]")
        click.echo("")


@click.command("areas")
@JSON_OPTION
def areas_command(as_json) -> None:
    """The 42 criminal-justice areas (police force areas) a register's office.areas may name, with ONS codes."""
    from dataclasses import asdict

    from contracts.geography import AREAS

    if as_json:
        click.echo(json.dumps([asdict(a) for a in AREAS], indent=2))
        return
    for area in AREAS:
        click.echo(f"{area.code}  {area.name:<30} {area.region:<26} {area.commissioner_type}")
