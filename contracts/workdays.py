"""Working days in England and Wales: Monday to Friday, not a bank holiday.

Bank holidays come from the ``holidays`` package (``holidays.country_holidays("GB", subdiv="ENG")``;
England and Wales share one list, including the one-off days such as the 2022 state funeral and the
2023 coronation). Counts follow ``numpy.busday_count``: the working days in ``[start, end)``, so a
Friday to the next Friday is 5, and a date to itself is 0; an end before the start counts negative.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd


@cache
def bank_holidays(first_year: int, last_year: int) -> np.ndarray:
    """England and Wales bank holidays of the years ``first_year..last_year`` as ``datetime64[D]``."""
    import holidays

    days = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    return np.array(sorted(days), dtype="datetime64[D]")


@cache
def _calendar(first_year: int, last_year: int) -> np.busdaycalendar:
    return np.busdaycalendar(weekmask="1111100", holidays=bank_holidays(first_year, last_year))


def working_days(start: pd.Series, end: pd.Series) -> pd.Series:
    """Working days from ``start`` to ``end`` per row (nullable Int64; missing where either date is)."""
    start = pd.to_datetime(pd.Series(start))
    end = pd.to_datetime(pd.Series(end, index=start.index))
    both = (start.notna() & end.notna()).to_numpy()
    result = pd.Series(pd.NA, index=start.index, dtype="Int64")
    if both.any():
        first, last = start[both].to_numpy().astype("datetime64[D]"), end[both].to_numpy().astype("datetime64[D]")
        years = np.concatenate([first, last]).astype("datetime64[Y]").astype(int) + 1970
        # whole decades, so that one cached calendar serves many returns
        calendar = _calendar(int(years.min()) // 10 * 10, int(years.max()) // 10 * 10 + 9)
        result[both] = np.busday_count(first, last, busdaycal=calendar)
    return result


def calendar_days(start: pd.Series, end: pd.Series) -> pd.Series:
    start = pd.to_datetime(pd.Series(start))
    end = pd.to_datetime(pd.Series(end, index=start.index))
    return (end - start).dt.days.astype("Int64")
