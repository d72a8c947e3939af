"""IBM i data conventions as vectorised Arrow / NumPy conversions.

Every function takes a whole column of a batch and returns the converted column plus, where a
value can be invalid, a boolean mask of the invalid positions (the caller counts them, samples
one for the message, or fails in strict mode). Zero and all-nines dates are the IBM i way of
saying "no date" and become null without counting as invalid.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_DIGITS = {"CYYMMDD": 7, "YYYYMMDD": 8, "YYMMDD": 6, "CYYDDD": 6}
_EPOCH_YEAR = 1970
_US_PER_SECOND = 1_000_000

Converted = tuple[pa.Array, np.ndarray | None]
"""A converted column and the mask of invalid input values (``None``: nothing can be invalid)."""


def as_int64(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer values of a numeric or text column.

    Returns:
        ``(values, null, bad)``: the values (0 where null or bad), the SQL-null mask, and the mask of
        values that are not whole numbers (letters in a CHAR date, a fraction in a DECIMAL).
    """
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(arr)
        ok = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{1,18}$"), False)
        ok_np = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
        clean = pc.if_else(ok, text, pa.scalar("0"))
        values = pc.cast(pc.fill_null(clean, "0"), pa.int64()).to_numpy(zero_copy_only=False)
        return values.astype(np.int64), null, ~ok_np & ~null
    if pa.types.is_decimal(t):
        whole = pc.equal(pc.round(arr, 0), arr) if t.scale > 0 else None
        bad = np.zeros(len(arr), dtype=bool)
        if whole is not None:
            bad = ~np.asarray(pc.fill_null(whole, True).to_numpy(zero_copy_only=False), dtype=bool)
            arr = pc.if_else(pc.fill_null(whole, True), arr, pa.scalar(0, t))
        ints = pc.cast(pc.cast(arr, pa.decimal128(38, 0), safe=False), pa.int64())
        return pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64), null, bad
    if pa.types.is_floating(t):
        f = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False)
        bad = (f != np.floor(f)) & ~null
        return np.where(bad, 0, f).astype(np.int64), null, bad
    if pa.types.is_integer(t):
        return (
            pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64),
            null,
            (np.zeros(len(arr), dtype=bool)),
        )
    raise TypeError(f"a numeric date or time must be a number or text, not {t}")


def _ymd(values: np.ndarray, fmt: str, pivot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if fmt == "CYYMMDD":
        return 1900 + (values // 1_000_000) * 100 + (values // 10_000) % 100, (values // 100) % 100, values % 100
    if fmt == "YYYYMMDD":
        return values // 10_000, (values // 100) % 100, values % 100
    if fmt == "YYMMDD":
        yy = values // 10_000
        return np.where(yy < pivot, 2000, 1900) + yy, (values // 100) % 100, values % 100
    raise ValueError(f"unknown date format {fmt!r}")


def _days_from_ymd(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 and the mask of impossible dates (month 13, 31 April, 29 Feb 2025)."""
    ok = (year >= 1) & (year <= 9999) & (month >= 1) & (month <= 12) & (day >= 1)
    y = np.where(ok, year, _EPOCH_YEAR)
    m = np.where(ok, month, 1)
    start = ((y - _EPOCH_YEAR) * 12 + (m - 1)).astype("datetime64[M]")
    first = start.astype("datetime64[D]")
    length = ((start + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(np.int64)
    ok &= day <= length
    days = first.astype(np.int64) + np.where(ok, day, 1) - 1
    return days, ~ok


def _days_from_julian(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    year = 1900 + (values // 100_000) * 100 + (values // 1_000) % 100
    ddd = values % 1_000
    start = (year - _EPOCH_YEAR).astype("datetime64[Y]")
    first = start.astype("datetime64[D]")
    length = ((start + np.timedelta64(1, "Y")).astype("datetime64[D]") - first).astype(np.int64)
    ok = (ddd >= 1) & (ddd <= length)
    return first.astype(np.int64) + np.where(ok, ddd, 1) - 1, ~ok


def _empty_marker(values: np.ndarray, fmt: str) -> np.ndarray:
    """Zero and all-nines: the IBM i's "no date"."""
    return (values == 0) | (values == 10 ** _DIGITS[fmt] - 1)


def date_days(arr: pa.Array, fmt: str, pivot: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since the epoch of a numeric (or numeric-text) date column.

    Returns:
        ``(days, null, invalid)``: null covers SQL nulls, zero and all-nines; invalid covers
        impossible dates, too many digits, letters and fractions.
    """
    values, null, bad = as_int64(arr)
    empty = _empty_marker(values, fmt) & ~bad
    too_big = values >= 10 ** _DIGITS[fmt]
    negative = values < 0
    if fmt == "CYYDDD":
        days, impossible = _days_from_julian(np.clip(values, 0, 10**6 - 1))
    else:
        days, impossible = _days_from_ymd(*_ymd(np.clip(values, 0, 10 ** _DIGITS[fmt] - 1), fmt, pivot))
    invalid = (bad | impossible | too_big | negative) & ~null & ~empty
    return days, null | empty | invalid, invalid


def numeric_date(arr: pa.Array, fmt: str, pivot: int = 40) -> Converted:
    """A numeric date column (``CYYMMDD``, ``YYYYMMDD``, ``YYMMDD``, ``CYYDDD``) as ``date32``.

    Args:
        arr: the raw column (integer, decimal or text).
        fmt: the date format.
        pivot: for ``YYMMDD``, years below it are in the 2000s, others in the 1900s.
    """
    days, missing, invalid = date_days(arr, fmt, pivot)
    out = pa.array(days.astype(np.int32), type=pa.int32(), mask=missing).cast(pa.date32())
    return out, invalid


def time_seconds(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds since midnight of an ``HHMMSS`` column: ``(seconds, null, invalid)``."""
    values, null, bad = as_int64(arr)
    hh, mm, ss = values // 10_000, (values // 100) % 100, values % 100
    invalid = (bad | (values < 0) | (hh > 23) | (mm > 59) | (ss > 59)) & ~null
    return hh * 3600 + mm * 60 + ss, null | invalid, invalid


def numeric_time(arr: pa.Array) -> Converted:
    """An ``HHMMSS`` column as ``time64[us]`` (e.g. 134501 → 13:45:01)."""
    seconds, missing, invalid = time_seconds(arr)
    out = pa.array(seconds * _US_PER_SECOND, type=pa.int64(), mask=missing).cast(pa.time64("us"))
    return out, invalid


def numeric_timestamp(date: pa.Array, time: pa.Array, fmt: str, pivot: int, timezone: str) -> Converted:
    """A numeric date plus an ``HHMMSS`` time as a UTC timestamp (the pair is local time in ``timezone``).

    The row is null when the date is null, zero or all-nines, or the time is null; it is invalid
    when either part is.
    """
    days, d_missing, d_invalid = date_days(date, fmt, pivot)
    seconds, t_missing, t_invalid = time_seconds(time)
    invalid = (d_invalid | t_invalid) & ~(d_missing & ~d_invalid)
    missing = d_missing | t_missing
    micros = (days * 86_400 + seconds) * _US_PER_SECOND
    naive = pa.array(micros, type=pa.int64(), mask=missing).cast(pa.timestamp("us"))
    return localize(naive, timezone), invalid


def localize(naive: pa.Array, timezone: str) -> pa.Array:
    """Local wall-clock timestamps of the IBM i as UTC instants (DST gaps and overlaps: earliest)."""
    if timezone == "UTC":
        return naive.cast(pa.timestamp("us", tz="UTC"))
    local = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(pa.timestamp("us", tz="UTC"))


def rtrim(arr: pa.Array) -> pa.Array:
    """CHAR padding removed: trailing blanks only (leading blanks are data)."""
    return pc.utf8_rtrim(arr, characters=" ")


def code(arr: pa.Array, width: int) -> Converted:
    """A number that is really a code (zip code, account number) as zero-padded text.

    ``ZIPCOD 2134`` with width 5 becomes ``"02134"``. Negative or fractional values are invalid.
    """
    values, null, bad = as_int64(arr)
    invalid = (bad | (values < 0) | (values >= 10**width)) & ~null
    text = pc.cast(pa.array(values, type=pa.int64(), mask=null | invalid), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0"), invalid


def ebcdic(arr: pa.Array, codec: str, trim: bool = True) -> pa.Array:
    """Bytes in a single-byte EBCDIC code page decoded to text, in one pass over the whole column.

    The column's value buffer is decoded at once; as each byte is one character, new UTF-8 offsets
    follow from a cumulative sum of each character's encoded length.
    """
    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise TypeError(f"EBCDIC decoding needs a binary column, got {arr.type}")
    arr = arr.cast(pa.large_binary()) if pa.types.is_binary(arr.type) else arr
    n = len(arr)
    if n == 0:
        return pa.array([], pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    raw = arr.buffers()[2]
    data = bytes(raw)[start:end] if raw is not None else b""
    text = data.decode(codec)
    utf8 = text.encode("utf-8")
    table = np.array([len(bytes([b]).decode(codec).encode("utf-8")) for b in range(256)], dtype=np.int64)
    widths = table[np.frombuffer(data, dtype=np.uint8)]
    cum = np.concatenate([[0], np.cumsum(widths)])
    new_offsets = cum[offsets - start]
    validity = arr.buffers()[0]
    if validity is not None and arr.offset:
        validity = pa.array(arr.is_valid().to_numpy(zero_copy_only=False)).buffers()[1]
    out = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(new_offsets.astype(np.int64).tobytes()), pa.py_buffer(utf8), validity, arr.null_count
    ).cast(pa.string())
    return rtrim(out) if trim else out


def decimal(arr: pa.Array, typ: pa.DataType) -> pa.Array:
    """A numeric column as the exact ``decimal128(p, s)`` of the catalogue (text parsed by Arrow)."""
    if arr.type == typ:
        return arr
    if pa.types.is_floating(arr.type):
        # SQLite keeps NUMERIC as REAL: the shortest repr of each float is the decimal that was stored
        arr = pa.array([None if v is None else repr(v) for v in arr.to_pylist()], pa.string())
    return pc.cast(arr, typ)
