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
    rules = [f"No two rows share the same {' and '.join(spec.key)}."]
    for earlier, later in spec.order_rules:
        rules.append(f"{later} is not before {earlier}.")
    for smaller, larger in spec.le_rules:
        rules.append(f"{smaller} is not larger than {larger}.")
    if spec.period_columns:
        span = "quarter starting in the month" if spec.frequency == "quarterly" else "month"
        rules.append(f"Every row belongs to the {span} in the file name: at least one of {', '.join(spec.period_columns)} falls in it.")
    rules.append("Every contract_id is one of your contracts for this service, and area_code is that contract's area.")
    rules.append("No cell starts with =, +, - or @ in a text column (spreadsheet formulas are refused).")
    return rules


def spec_markdown(spec: ReturnSpec) -> str:
    lines = [f"# {spec.return_type}", "", spec.description, "",
             f"One row per {spec.grain}; sent {spec.frequency}. File name: `<provider>_{spec.return_type}_<YYYY-MM>[_v<n>].csv|xlsx`.",
             "", "| column | type | required | allowed values or range | meaning |", "|---|---|---|---|---|"]
    for c in spec.columns:
        lines.append(f"| `{c.name}` | {KIND_WORDS[c.kind]} | {required_word(c)} | {column_rules(c)} | {c.description} |")
    lines += ["", "Checks:", ""] + [f"- {rule}" for rule in spec_rules(spec)]
    return "\n".join(lines) + "\n"


def template_xlsx(spec: ReturnSpec) -> bytes:
    guide = pd.DataFrame([{"column": c.name, "type": KIND_WORDS[c.kind], "required": required_word(c),
                           "allowed": column_rules(c), "meaning": c.description} for c in spec.columns])
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame(columns=list(spec.column_names)).to_excel(writer, index=False, sheet_name="return")
        guide.to_excel(writer, index=False, sheet_name="guide")
    return buffer.getvalue()


def write_spec_documents(folder: Path) -> list[Path]:
    """For each return type: ``<type>.md``, ``<type>.html``, ``<type>_template.csv`` and ``.xlsx``; plus ``index.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    env = environment()
    for spec in SPECS.values():
        columns = [{"name": c.name, "type": KIND_WORDS[c.kind], "required": required_word(c), "rules": column_rules(c),
                    "description": c.description} for c in spec.columns]
        (folder / f"{spec.return_type}.md").write_text(spec_markdown(spec))
        (folder / f"{spec.return_type}.html").write_text(
            env.get_template("spec.html").render(spec=spec, columns=columns, rules=spec_rules(spec)))
        (folder / f"{spec.return_type}_template.csv").write_text(",".join(spec.column_names) + "\n")
        (folder / f"{spec.return_type}_template.xlsx").write_bytes(template_xlsx(spec))
        written += [folder / f"{spec.return_type}{suffix}" for suffix in (".md", ".html", "_template.csv", "_template.xlsx")]
    links = "".join(f'<li><a href="{s.return_type}.html">{s.return_type}</a>: {s.description}</li>' for s in SPECS.values())
    index = env.from_string('{% extends "base.html" %}{% block content %}<h1>Provider returns</h1>'
                            "<p class=\"lede\">What to send each month, and how it is checked.</p><ul>{{ links | safe }}</ul>"
                            "{% endblock %}").render(links=links)
    (folder / "index.html").write_text(index)
    return [*written, folder / "index.html"]
