"""The one Jinja2 environment for every document, with named filters."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"


def pct(value, digits: int = 1, unit: str | None = None) -> str:
    """0.7234 -> '72.3%'; missing -> '[x]' (GSS shorthand for not available).

    ``unit``: the measure's unit, for KPIs that are not proportions (declared services): ``days`` gives
    '8.5 days', ``count`` '118'; any unit starting "percent" (or none) is a proportion.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "[x]"
    if unit and not str(unit).startswith("percent"):
        return f"{value:,.{digits}f} days" if unit == "days" else f"{value:,.{digits if value % 1 else 0}f}"
    return f"{100 * value:.{digits}f}%"


def count(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "[x]"
    return f"{int(round(value)):,}"


def money(value) -> str:
    return f"£{value:,.0f}"


def month_name(period: str) -> str:
    import calendar

    year, month = period.split("-")
    return f"{calendar.month_name[int(month)]} {year}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, count=count, money=money, month_name=month_name)
    from reports.icons import assurance_icon, variation_icon

    env.globals.update(variation_icon=variation_icon, assurance_icon=assurance_icon)
    return env
