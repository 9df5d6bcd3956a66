"""Documentation and templates of each return type, generated from the declared specs.

The same ``contracts.returns.SPECS`` drive validation and the synthetic generator, so
what providers read here is what the loader checks.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from contracts.returns import SPECS, ColumnSpec, ReturnSpec
from reports.env import environment

KIND_WORDS = {"str": "text", "date": "date YYYY-MM-DD", "datetime": "date and time YYYY-MM-DD HH:MM",
              "int": "whole number", "float": "number", "yn": "Y or N", "bool01": "0 or 1"}


def required_word(column) -> str:
    """How a spec page says whether a column must be filled in (or may be left out of the file entirely)."""
    if column.optional:
        return "no (the column may be left out)"
    return "yes" if column.required else "no"


def column_rules(column: ColumnSpec) -> str:
    parts = []
    if column.allowed:
        parts.append("one of " + ", ".join(column.allowed))
    if column.minimum is not None and column.maximum is not None:
        parts.append(f"{column.minimum:g} to {column.maximum:g}")
    elif column.minimum is not None:
        parts.append(f"at least {column.minimum:g}")
    elif column.maximum is not None:
        parts.append(f"at most {column.maximum:g}")
    if column.pseudonymise:
        parts.append("replaced by a keyed hash when loaded")
    return "; ".join(parts)


def spec_rules(spec: ReturnSpec) -> list[str]:
    rules = [f"No two rows share the same {' and '.join(spec.key)}."] if spec.key else []
    for earlier, later in spec.order_rules:
        rules.append(f"{later} is not before {earlier}.")
    for smaller, larger in spec.le_rules:
        rules.append(f"{smaller} is not larger than {larger}.")
    if spec.period_columns:
        span = "quarter starting in the month" if spec.frequency == "quarterly" else "month"
        rules.append(f"Every row belongs to the {span} in the file name: at least one of {', '.join(spec.period_columns)} falls in it.")
    if "area_code" in spec.column_names:
        rules.append("Every contract_id is one of your contracts for this service, and area_code is that contract's area.")
    else:
        rules.append("Every contract_id is one of your contracts for this service.")
    rules.append("No cell starts with =, +, - or @ in a text column (spreadsheet formulas are refused).")
    return rules


def kpi_rows(service) -> list[dict]:
    """A declared service's KPIs in words, for its return's page."""
    rows = []
    for kpi in service.kpis:
        numerator, denominator = kpi.describe()
        measure = {"proportion": "share of rows", "median_days": "median days", "volume": "count against the contracted volume",
                   "sql": "analyst's SQL file"}[kpi.kind]
        rows.append({"code": kpi.code, "name": kpi.name, "measure": measure,
                     "better": "higher" if kpi.direction == "higher" else "lower",
                     "numerator": numerator, "denominator": denominator, "description": kpi.description})
    return rows


def spec_markdown(spec: ReturnSpec, service=None) -> str:
    lines = [f"# {spec.return_type}", "", spec.description, "",
             f"One row per {spec.grain}; sent {spec.frequency}. File name: `<provider>_{spec.return_type}_<YYYY-MM>[_v<n>].csv|xlsx`.",
             "", "| column | type | required | allowed values or range | meaning |", "|---|---|---|---|---|"]
    for c in spec.columns:
        lines.append(f"| `{c.name}` | {KIND_WORDS[c.kind]} | {required_word(c)} | {column_rules(c)} | {c.description} |")
    lines += ["", "Checks:", ""] + [f"- {rule}" for rule in spec_rules(spec)]
    if service is not None:
        lines += ["", f"KPIs of the local service {service.name!r} ({service.id}), worked out from this return:", "",
                  "| code | KPI | measure | better | counts | out of |", "|---|---|---|---|---|---|"]
        lines += [f"| `{k['code']}` | {k['name']} | {k['measure']} | {k['better']} | {k['numerator']} | {k['denominator']} |"
                  for k in kpi_rows(service)]
    return "\n".join(lines) + "\n"


def template_xlsx(spec: ReturnSpec) -> bytes:
    guide = pd.DataFrame([{"column": c.name, "type": KIND_WORDS[c.kind], "required": required_word(c),
                           "allowed": column_rules(c), "meaning": c.description} for c in spec.columns])
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame(columns=list(spec.column_names)).to_excel(writer, index=False, sheet_name="return")
        guide.to_excel(writer, index=False, sheet_name="guide")
    return buffer.getvalue()


def write_spec_documents(folder: Path, services: list | None = None) -> list[Path]:
    """For each return type: ``<type>.md``, ``<type>.html``, ``<type>_template.csv`` and ``.xlsx``; plus ``index.html``.

    ``services``: declared local services (``contracts.declared.ServiceSpec``); their returns get the same
    pages and templates as the built-in ones, with the service's KPIs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    env = environment()
    services = list(services or [])
    by_type = {service.return_type: service for service in services}
    all_specs = [*SPECS.values(), *(service.return_spec for service in services)]
    for spec in all_specs:
        service = by_type.get(spec.return_type)
        columns = [{"name": c.name, "type": KIND_WORDS[c.kind], "required": required_word(c), "rules": column_rules(c),
                    "description": c.description} for c in spec.columns]
        (folder / f"{spec.return_type}.md").write_text(spec_markdown(spec, service))
        (folder / f"{spec.return_type}.html").write_text(
            env.get_template("spec.html").render(spec=spec, columns=columns, rules=spec_rules(spec),
                                                 service=service, kpis=kpi_rows(service) if service else []))
        (folder / f"{spec.return_type}_template.csv").write_text(",".join(spec.column_names) + "\n")
        (folder / f"{spec.return_type}_template.xlsx").write_bytes(template_xlsx(spec))
        written += [folder / f"{spec.return_type}{suffix}" for suffix in (".md", ".html", "_template.csv", "_template.xlsx")]
    links = "".join(f'<li><a href="{s.return_type}.html">{s.return_type}</a>: {s.description}</li>' for s in all_specs)
    index = env.from_string('{% extends "base.html" %}{% block content %}<h1>Provider returns</h1>'
                            "<p class=\"lede\">What to send each month, and how it is checked.</p><ul>{{ links | safe }}</ul>"
                            "{% endblock %}").render(links=links)
    (folder / "index.html").write_text(index)
    return [*written, folder / "index.html"]
