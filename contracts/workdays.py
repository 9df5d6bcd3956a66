"""Working days in England and Wales: Monday to Friday, not a bank holiday.

Bank holidays come from the ``holidays`` package (``holidays.country_holidays("GB", subdiv="ENG")``;
England and Wales share one list, including the one-off days such as the 2022 state funeral and the
2023 coronation). Counts follow ``numpy.busday_count``: the working days in ``[start, end)``, so a
Friday to the next Friday is 5, and a date to itself is 0; an end before the start counts negative, ``working_days(b, a) == -working_days(a, b)``.
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
        # Antisymmetric: an end before the start counts -working_days(end, start). numpy alone counts a reversed
        # pair over (end, start], which differs by one when either date is a weekend or a bank holiday; declared
        # returns store each date pair once and negate it for the other direction (contracts.records.days_column).
        sign = np.where(last < first, -1, 1)
        result[both] = sign * np.busday_count(np.minimum(first, last), np.maximum(first, last), busdaycal=calendar)
    return result


def calendar_days(start: pd.Series, end: pd.Series) -> pd.Series:
    start = pd.to_datetime(pd.Series(start))
    end = pd.to_datetime(pd.Series(end, index=start.index))
    return (end - start).dt.days.astype("Int64")


def _calendar_for(*dates: np.ndarray) -> np.busdaycalendar:
    years = np.concatenate([np.asarray(d, dtype="datetime64[D]").ravel() for d in dates]).astype("datetime64[Y]").astype(int) + 1970
    if not len(years):
        return _calendar(2000, 2009)
    return _calendar(int(years.min()) // 10 * 10, int(years.max()) // 10 * 10 + 9)


def working_days_after(starts: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The date ``days`` working days after each start (a start on a weekend or bank holiday rolls forward first),
    so that ``working_days(start, result) == days``: what the synthetic generator writes."""
    starts = np.asarray(starts, dtype="datetime64[D]")
    # one decade of slack past the last start for the offsets
    calendar = _calendar_for(starts, starts + np.timedelta64(3650, "D")) if len(starts) else _calendar(2000, 2009)
    return np.busday_offset(starts, days, roll="forward", busdaycal=calendar)


def working_days_array(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``working_days`` for two arrays of dates with no missing values (an integer array)."""
    start, end = np.asarray(start, dtype="datetime64[D]"), np.asarray(end, dtype="datetime64[D]")
    calendar = _calendar_for(start, end)
    sign = np.where(end < start, -1, 1)
    return sign * np.busday_count(np.minimum(start, end), np.maximum(start, end), busdaycal=calendar)
