"""Reading a ``sql`` source's rows into Arrow batches, the fastest exact way each database offers.

PostgreSQL: ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` inside the source's read-only snapshot,
parsed by pyarrow's streaming CSV reader straight into the declared types (no Python object per
value). NULL and the empty string stay apart (NULL is unquoted, '' quoted).

Other databases: the driver's own cursor (an unbuffered one on MySQL / MariaDB), ``fetchmany`` of
``batch_size`` rows, one Arrow array per column; exact numbers and temporals arrive as text where
the driver allows it and are parsed by Arrow in C++.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.sources.sql_columns import SqlColumn

Problem = Callable[[SqlColumn, Any, str], Exception]
"""Builds the error for ``(column, value, reason)``: the source names the dataset and what to do."""


class _CopyStream(io.RawIOBase):
    """The data of a psycopg ``COPY … TO STDOUT`` as a readable byte stream for pyarrow."""

    def __init__(self, copy: Any) -> None:
        self._rows = iter(copy)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = len(b)
        parts, have = [self._pending], len(self._pending)
        while have < want:
            data = next(self._rows, None)
            if data is None:
                break
            parts.append(bytes(data))
            have += len(data)
        buf = b"".join(parts)
        n = min(want, len(buf))
        b[:n] = buf[:n]
        self._pending = buf[n:]
        return n


def pg_copy_batches(
    raw: Any, sql: str, params: Any, columns: list[SqlColumn], batch_size: int, problem: Problem
) -> Iterator[pa.RecordBatch]:
    """Stream ``sql`` (a SELECT) through COPY on a psycopg connection as batches of the columns' types."""
    schema = pa.schema([c.field for c in columns])
    as_text = {c.name for c in columns if c.kind == "hex" or isinstance(c.type, pa.Decimal256Type)}
    parse_types = {c.name: (pa.string() if c.name in as_text else c.type) for c in columns}
    names = [c.name for c in columns]
    read = pacsv.ReadOptions(column_names=names, block_size=16 << 20, use_threads=True)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=parse_types,
        null_values=[""],
        true_values=["t"],
        false_values=["f"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params or None) as copy:
        stream = io.BufferedReader(_CopyStream(copy), 1 << 20)
        if not stream.peek(1):  # no rows: pyarrow refuses an empty CSV
            return
        try:
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                arrays = [
                    _finish(batch.column(i), c, problem) if c.name in as_text else batch.column(i)
                    for i, c in enumerate(columns)
                ]
                yield from pa.Table.from_arrays(arrays, schema=schema).to_batches(max_chunksize=batch_size)
        except pa.ArrowInvalid as exc:
            raise _csv_problem(exc, columns, problem) from None


_CSV_ERROR = re.compile(
    r"In CSV column #(\d+): .*?(?:invalid value|The string) '(.*?)'(?: is not a valid (.*))?$", re.S
)


def _csv_problem(exc: Exception, columns: list[SqlColumn], problem: Problem) -> Exception:
    m = _CSV_ERROR.search(str(exc))
    if not m or int(m[1]) >= len(columns):
        return problem(columns[0], None, f"cannot be read: {exc}")
    col = columns[int(m[1])]
    return problem(col, m[2], f"does not fit {col.type}")


def _finish(arr: pa.Array, col: SqlColumn, problem: Problem) -> pa.Array:
    """Columns pyarrow's CSV reader cannot convert itself: bytea hex text, decimal256."""
    if col.kind == "hex":
        return _hex_to_binary(arr)
    try:
        return arr.cast(col.type)
    except pa.ArrowInvalid:
        for value in arr.to_pylist():
            try:
                pa.array([value]).cast(col.type)
            except pa.ArrowInvalid:
                raise problem(col, value, f"does not fit {col.type}") from None
        raise


def _hex_to_binary(arr: pa.Array) -> pa.Array:
    """PostgreSQL's bytea text (``\\x0a0b``) to binary."""
    return pa.array([None if v is None else bytes.fromhex(v[2:]) for v in arr.to_pylist()], pa.binary())


# -- the DB-API path -----------------------------------------------------------------------------


@contextlib.contextmanager
def dbapi_cursor(raw: Any) -> Iterator[Any]:
    """A cursor that streams (unbuffered on MySQL) with exact numbers and temporals as text where possible."""
    module = type(raw).__module__.split(".")[0]
    if module == "MySQLdb":
        from MySQLdb.constants import FIELD_TYPE as F
        from MySQLdb.cursors import SSCursor

        saved = raw.converter
        text = (F.NEWDECIMAL, F.DECIMAL, F.DATETIME, F.TIMESTAMP, F.DATE, F.TIME)
        raw.converter = {**saved, **dict.fromkeys(text, str)}
        cur = raw.cursor(SSCursor)
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.close()
            raw.converter = saved
        return
    if module == "pymysql":
        from pymysql.constants import FIELD_TYPE as P
        from pymysql.cursors import SSCursor as PySSCursor

        decoders = raw.decoders
        as_text = (P.NEWDECIMAL, P.DECIMAL, P.DATETIME, P.TIMESTAMP, P.DATE, P.NEWDATE, P.TIME)
        raw.decoders = {**decoders, **dict.fromkeys(as_text, str)}
        cur = raw.cursor(PySSCursor)
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.close()
            raw.decoders = decoders
        return
    cur = raw.cursor()
    try:
        yield cur
    finally:
        with contextlib.suppress(Exception):
            cur.close()


def dbapi_batches(
    cur: Any, columns: list[SqlColumn], batch_size: int, problem: Problem
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Fetch an executed cursor ``batch_size`` rows at a time; yield each batch and the rows before it."""
    schema = pa.schema([c.field for c in columns])
    offset = 0
    while True:
        with no_gc():  # a batch is millions of short-lived tuples: the cyclic GC would only rescan the heap
            rows = cur.fetchmany(batch_size)
            if not rows:
                return
            arrays = [to_arrow(v, c, offset, problem) for v, c in zip(zip(*rows, strict=True), columns, strict=True)]
            del rows
        yield pa.RecordBatch.from_arrays(arrays, schema=schema), offset
        offset += len(arrays[0]) if arrays else 0


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def to_arrow(values: Sequence[Any], col: SqlColumn, offset: int, problem: Problem) -> pa.Array:
    """One column's driver values as ``col.type``, exactly; a value that does not fit raises via ``problem``."""
    try:
        return _convert(values, col, offset, problem)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError, UnicodeDecodeError):
        i, bad = _first_bad(values, col)
        raise problem(col, bad, f"does not fit {col.type} (row {offset + i + 1} of this extract)") from None


def _convert(values: Sequence[Any], col: SqlColumn, offset: int, problem: Problem) -> pa.Array:
    typ = col.type
    if col.kind == "text":
        try:
            return pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # UUIDs, bytes, numbers …: their text
            return pa.array([_text(v) for v in values], pa.string())
    if col.kind == "json":
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values], pa.string())
    if col.kind == "bits":
        width = int(re.sub(r"\D", "", col.sql_type) or 1)
        return pa.array(
            [None if v is None else format(int.from_bytes(v, "big"), f"0{width}b") for v in values], pa.string()
        )
    if col.kind == "bool01":
        arr = pa.array(values)
        if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
            return arr.cast(pa.bool_())
        bad = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, pa.array([0, 1], arr.type))))
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            raise problem(col, values[i], f"is not 0 or 1 (row {offset + i + 1} of this extract)")
        return arr.cast(pa.bool_())
    if col.kind == "time":
        return pa.array([_time_of_day(v, col, problem) for v in values], typ)
    if col.kind in ("decimal", "temporal"):
        try:
            return pa.array(values, typ)  # Decimal / datetime objects
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # text (MySQL, SQLite) or floats (SQLite NUMERIC)
            pass
        try:
            inferred = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in one SQLite column: each as text
            inferred = pa.array([_text(v) for v in values], pa.string())
        if pa.types.is_string(inferred.type):
            return _from_text(inferred, typ)
        if pa.types.is_decimal(typ) and (pa.types.is_floating(inferred.type) or pa.types.is_integer(inferred.type)):
            return inferred.cast(typ)  # rounded to the scale, as SQLAlchemy reads SQLite's REAL numerics
        return inferred.cast(typ)
    return pa.array(values, typ)


def _text(v: Any) -> str | None:
    """A driver value as text (bytes as UTF-8)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return str(v)


def _from_text(arr: pa.Array, typ: pa.DataType) -> pa.Array:
    """Decimal / temporal text (drivers', SQLite's) to ``typ``; MySQL's zero dates are NULL, as drivers read them."""
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        arr = pc.if_else(pc.starts_with(arr, "0000-00-00"), pa.scalar(None, pa.string()), arr)
    if pa.types.is_timestamp(typ) and (
        typ.tz is not None or pc.any(pc.match_substring_regex(arr, r"(Z|[+-]\d\d:?\d\d)$")).as_py()
    ):
        # SQLite declares no time zone: an aware text ('…Z', as bulksync's SQLite target writes UTC times)
        # in a naive column is read as its UTC wall time
        from bulksync.sources.csv_files import _to_utc

        return _to_utc(arr).cast(typ)
    if pa.types.is_date(typ):
        return pc.utf8_slice_codeunits(arr, 0, 10).cast(typ)
    if pa.types.is_decimal(typ):
        wide = pa.decimal256(76, typ.scale) if isinstance(typ, pa.Decimal256Type) else pa.decimal128(38, typ.scale)
        return arr.cast(wide).cast(typ)
    return arr.cast(typ)


def _time_of_day(v: Any, col: SqlColumn, problem: Problem) -> dt.time | None:
    """MySQL TIME (text or timedelta) as a time of day; durations outside one day are refused."""
    if v is None or isinstance(v, dt.time):
        return v
    if isinstance(v, dt.timedelta):
        micros = v // dt.timedelta(microseconds=1)
    else:
        m = re.fullmatch(r"(-?)(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?", str(v))
        if not m:
            raise problem(col, v, "is not a time")
        micros = ((int(m[2]) * 60 + int(m[3])) * 60 + int(m[4])) * 1_000_000 + int((m[5] or "0").ljust(6, "0"))
        micros = -micros if m[1] else micros
    if not 0 <= micros < 86_400_000_000:
        raise problem(
            col,
            v,
            "is a duration outside one day, not a time of day: read it as text with CAST(col AS CHAR) in a query",
        )
    seconds, us = divmod(micros, 1_000_000)
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, us)


def _first_bad(values: Sequence[Any], col: SqlColumn) -> tuple[int, Any]:
    for i, v in enumerate(values):
        try:
            _convert([v], col, 0, _raise)
        except Exception:  # noqa: BLE001 - the first value that fails, whatever the reason
            return i, v
    return 0, None


def _raise(col: SqlColumn, value: Any, reason: str) -> Exception:
    return ValueError(reason)
