"""One `Period` parameter type for every command that takes a month, and one check of it against the data.

``PERIOD`` checks the spelling (YYYY-MM, a real month) when click parses the option; ``require_judged``
checks the month against the judged data, the same way for ``scorecard``, ``report monthly``, ``pack
--as-of`` and ``credits --period``: a month after the latest judged one (``pack --as-of 2030-01``, a typo
for 2020) or with nothing judged for the contract or area is refused with the months that do have data.
"""

from __future__ import annotations

import re

import click

PATTERN = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class PeriodType(click.ParamType):
    """A month written YYYY-MM."""

    name = "YYYY-MM"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        text = str(value).strip()
        if not PATTERN.fullmatch(text):
            self.fail(f"{value!r} is not a month written YYYY-MM (for example 2025-12)", param, ctx)
        return text


PERIOD = PeriodType()


def require_judged(session, period: str, *, option: str = "--period", contract_id: str | None = None,
                   area_code: str | None = None) -> str:
    """Refuse ``period`` unless KPIs are judged for it (for the contract or area when given); returns it.

    Raises :class:`cjmonitor.errors.NotFoundError` naming the first and last judged months.
    """
    from sqlalchemy import func
    from sqlmodel import select

    from cjmonitor.errors import NotFoundError
    from contracts.models import Contract, Judgement

    query = select(func.min(Judgement.period), func.max(Judgement.period))
    here = select(func.count()).select_from(Judgement).where(Judgement.period == period)
    scope = ""
    if contract_id is not None:
        query = query.where(Judgement.contract_id == contract_id)
        here = here.where(Judgement.contract_id == contract_id)
        scope = f" for {contract_id}"
    elif area_code is not None:
        ids = select(Contract.id).where(Contract.area_code == area_code)
        query = query.where(Judgement.contract_id.in_(ids))
        here = here.where(Judgement.contract_id.in_(ids))
        scope = f" for area {area_code}"
    first, last = session.exec(query).one()
    if first is None:
        raise NotFoundError(f"{option} {period}: nothing is judged{scope} yet; run `cjmonitor run` (or `cjmonitor demo`)")
    if not session.exec(here).one():
        where = "after the latest" if period > last else "before the first" if period < first else "a month without a"
        raise NotFoundError(f"no judged KPIs for {period}{scope} ({option}: {where} judged month); judged months run "
                            f"from {first} to {last}: was the return received? "
                            f"(`cjmonitor returns status --period {period}`)")
    return period
