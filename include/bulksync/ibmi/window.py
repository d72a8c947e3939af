"""Run windows as IBM i values: local timestamps, and numeric date (+ ``HHMMSS``) codes.

A row whose change date and time are the integers ``D`` and ``T`` changed at the local second
``D T``; it belongs to the window ``[start, end)`` when ``ceil(start) <= D T < ceil(end)`` (to the
second). A date without a time counts at midnight of its date. The window is first moved into the
IBM i's time zone, so a window crossing midnight, a month or a century needs no special case:
the codes of whole days between the two edge days are listed as ranges, split where a format's
codes stop being in date order (``YYMMDD`` jumps from ``991231`` back to ``000101``).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bulksync.ibmi.sqlgen import NumericWindow

_ONE_DAY = dt.timedelta(days=1)


def date_range(fmt: str, pivot: int = 40) -> tuple[dt.date, dt.date]:
    """First and last date a format can hold."""
    if fmt in ("CYYMMDD", "CYYDDD"):
        return dt.date(1900, 1, 1), dt.date(2899, 12, 31)
    if fmt == "YYYYMMDD":
        return dt.date(1, 1, 1), dt.date(9999, 12, 31)
    if fmt == "YYMMDD":
        return dt.date(1900 + pivot, 1, 1), dt.date(2000 + pivot - 1, 12, 31) if pivot else dt.date(1999, 12, 31)
    raise ValueError(f"unknown date format {fmt!r}")


def encode_date(day: dt.date, fmt: str, pivot: int = 40) -> int:
    """The numeric code of a date: 2026-01-05 is 1260105 in CYYMMDD, 126005 in CYYDDD.

    Raises:
        ValueError: the format cannot hold the date.
    """
    lo, hi = date_range(fmt, pivot)
    if not lo <= day <= hi:
        raise ValueError(f"{day} cannot be written as {fmt} (range {lo} to {hi})")
    if fmt == "CYYMMDD":
        return (day.year - 1900) * 10_000 + day.month * 100 + day.day
    if fmt == "YYYYMMDD":
        return day.year * 10_000 + day.month * 100 + day.day
    if fmt == "YYMMDD":
        return (day.year % 100) * 10_000 + day.month * 100 + day.day
    return (day.year - 1900) * 1_000 + day.timetuple().tm_yday  # CYYDDD


def encode_time(moment: dt.datetime | dt.time) -> int:
    """``HHMMSS`` of a time (13:45:01 → 134501)."""
    return moment.hour * 10_000 + moment.minute * 100 + moment.second


def day_ranges(first: dt.date, last: dt.date, fmt: str, pivot: int = 40) -> list[tuple[int, int]]:
    """Inclusive code ranges of the days ``first`` to ``last``, clipped to the format's range."""
    lo, hi = date_range(fmt, pivot)
    first, last = max(first, lo), min(last, hi)
    if first > last:
        return []
    if fmt == "YYMMDD" and first.year < 2000 <= last.year:
        return [
            (encode_date(first, fmt, pivot), encode_date(dt.date(1999, 12, 31), fmt, pivot)),
            (encode_date(dt.date(2000, 1, 1), fmt, pivot), encode_date(last, fmt, pivot)),
        ]
    return [(encode_date(first, fmt, pivot), encode_date(last, fmt, pivot))]


def to_local(moment: dt.datetime | None, timezone: str) -> dt.datetime | None:
    """An aware instant as the IBM i's naive local wall-clock time."""
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def _ceil_second(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0) + dt.timedelta(seconds=1) if moment.microsecond else moment


def numeric_window(
    start: dt.datetime | None,
    end: dt.datetime | None,
    fmt: str,
    *,
    with_time: bool,
    timezone: str = "UTC",
    pivot: int = 40,
) -> NumericWindow:
    """The window ``[start, end)`` as numeric date (and time) bounds in the IBM i's local time.

    Args:
        start: window start (aware), ``None`` for open.
        end: window end (aware, exclusive), ``None`` for open.
        fmt: the date column's format.
        with_time: True when a ``HHMMSS`` time column accompanies the date.
        timezone: the IBM i's time zone.
        pivot: ``YYMMDD`` century pivot.
    """
    lo_date, hi_date = date_range(fmt, pivot)
    s, e = to_local(start, timezone), to_local(end, timezone)
    if not with_time:
        # a date counts at its midnight: days from ceil_day(start) to ceil_day(end) - 1
        first_day = lo_date if s is None else s.date() + (_ONE_DAY if s.time() != dt.time(0) else dt.timedelta(0))
        last_day = hi_date if e is None else (e.date() if e.time() != dt.time(0) else e.date() - _ONE_DAY)
        return NumericWindow(None, day_ranges(first_day, last_day, fmt, pivot), None)
    first = last = None
    full_from, full_to = lo_date, hi_date
    if s is not None:
        s = _ceil_second(s)
        if s.time() == dt.time(0):
            full_from = s.date()
        else:
            first = (encode_date(s.date(), fmt, pivot), encode_time(s))
            full_from = s.date() + _ONE_DAY
    if e is not None:
        e = _ceil_second(e)
        if e.time() == dt.time(0):
            full_to = e.date() - _ONE_DAY
        else:
            last = (encode_date(e.date(), fmt, pivot), encode_time(e))
            full_to = e.date() - _ONE_DAY
    if s is not None and e is not None and s >= e:
        return NumericWindow(None, [], None)
    return NumericWindow(first, day_ranges(full_from, full_to, fmt, pivot), last)
