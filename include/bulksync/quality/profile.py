"""A starting GX suite profiled from committed staging partitions (``bulksync quality init``).

Profiling several nights (the last N committed partitions, default 7) rather than one keeps the
suite from failing on the next night: ranges and value sets span all of them, the row count is
bounded loosely (an incremental interval may bring nothing), and columns that only grow — the
incremental cursor, timestamps and dates, an integer key, any column whose maximum rose from night
to night — never get an upper bound (the cursor gets no range at all: each window has new values).

Statistics are gathered with ``pyarrow.compute`` in one streaming pass over the partition's record
batches, so memory stays bounded whatever the partition's size: per column the null and NaN
counts, the minimum and maximum, and for string columns the distinct values up to
``max_distinct + 1``. Great Expectations is not imported; the suite is plain JSON in the shape
``ExpectationSuite.to_json_dict()`` writes.

Every value written is one GX compares correctly against the same data read into a pandas frame
with Arrow-backed dtypes (``table.to_pandas(types_mapper=pd.ArrowDtype)``): dates and timestamps
as ISO strings, and range bounds that GX turns into floats (integers beyond 2**53, decimals)
rounded outwards so the observed extremes stay inside.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bulksync.errors import DataError
from bulksync.quality.model import Severity
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition
from bulksync.staging.reader import iter_batches

log = logging.getLogger(__name__)

ROW_COUNT_FACTOR = 10
"""The row-count expectation allows a tenth of the smallest to ten times the largest profiled partition."""


def gx_type_name(arrow_type: pa.DataType) -> str | None:
    """The ``type_`` GX's ``expect_column_values_to_be_of_type`` accepts for an Arrow-backed column.

    GX compares it with the column's ``pd.ArrowDtype(arrow_type).type`` (a Python type). ``None``
    for types bulksync does not check (nested, dictionary, null, durations).
    """
    t = arrow_type
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "Timestamp" if t.unit == "ns" else "datetime"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_decimal(t):
        return "Decimal"
    return None


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _has_range(t: pa.DataType) -> bool:
    """Types whose observed min/max become a ``expect_column_values_to_be_between``."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
    )


@dataclass
class ColumnStats:
    """What one streaming pass learns about a column."""

    name: str
    type: pa.DataType
    rows: int = 0
    nulls: int = 0
    nans: int = 0
    min: Any = None
    max: Any = None
    distinct: set[str] | None = field(default_factory=set)
    """Distinct non-null values of a string column; ``None`` once there are too many (or not a string)."""

    def update(self, array: pa.Array | pa.ChunkedArray, max_distinct: int) -> None:
        """Fold one batch's column into the statistics."""
        self.rows += len(array)
        self.nulls += array.null_count
        if pa.types.is_floating(self.type):
            self.nans += int(pc.sum(pc.is_nan(array)).as_py() or 0)
        if _has_range(self.type):
            mm = pc.min_max(array)
            lo, hi = mm["min"], mm["max"]
            if pa.types.is_timestamp(self.type) and self.type.unit == "ns":
                # pydantic (inside GX) reads at most microseconds: widen to whole microseconds
                us = pa.timestamp("us", tz=self.type.tz)
                lo = pc.floor_temporal(lo, unit="microsecond").cast(us) if lo.is_valid else lo
                hi = pc.ceil_temporal(hi, unit="microsecond").cast(us) if hi.is_valid else hi
            lo_v, hi_v = lo.as_py(), hi.as_py()
            if lo_v is not None and (self.min is None or lo_v < self.min):
                self.min = lo_v
            if hi_v is not None and (self.max is None or hi_v > self.max):
                self.max = hi_v
        if self.distinct is not None and _is_string(self.type):
            for value in pc.unique(array.drop_null()).to_pylist():
                self.distinct.add(value)
                if len(self.distinct) > max_distinct:
                    self.distinct = None
                    break
        elif not _is_string(self.type):
            self.distinct = None

    @property
    def non_null(self) -> int:
        """Rows with a value."""
        return self.rows - self.nulls

    def merge(self, other: ColumnStats, max_distinct: int) -> None:
        """Fold the statistics of the same column in another partition into these."""
        self.rows += other.rows
        self.nulls += other.nulls
        self.nans += other.nans
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        if self.distinct is None or other.distinct is None:
            self.distinct = None
        else:
            self.distinct |= other.distinct
            if len(self.distinct) > max_distinct:
                self.distinct = None


def collect_stats(
    partition: Partition, manifest: Manifest, *, max_distinct: int = 20, batch_size: int = 64 * 1024
) -> tuple[int, list[ColumnStats]]:
    """Stream a committed stage once and return its row count and per-column statistics."""
    schema = manifest.read_schema()
    stats = [ColumnStats(f.name, f.type) for f in schema]
    rows = 0
    for batch in iter_batches(partition, manifest, batch_size=batch_size):
        rows += batch.num_rows
        for i, st in enumerate(stats):
            st.update(batch.column(i), max_distinct)
    return rows, stats


def _float_floor(value: int | decimal.Decimal) -> int | float:
    """The largest number GX (reading it as a float) keeps at or below ``value``."""
    f = float(value)
    if f > value:
        f = math.nextafter(f, -math.inf)
    return int(f) if isinstance(value, int) and f.is_integer() else f


def _float_ceil(value: int | decimal.Decimal) -> int | float:
    """The smallest number GX (reading it as a float) keeps at or above ``value``."""
    f = float(value)
    if f < value:
        f = math.nextafter(f, math.inf)
    return int(f) if isinstance(value, int) and f.is_integer() else f


def _bound(value: Any, *, upper: bool) -> Any:
    """A JSON-safe range bound that the quality gate compares correctly with the column's values.

    The gate compares numeric ranges on a float64 copy of the column, so a decimal that a float
    holds to its last digit (``16.48``) is written as it is; wider ones, and integers beyond 2**53,
    are rounded outwards to the next float so the observed extreme stays inside.
    """
    if isinstance(value, dt.datetime | dt.date):  # datetime first: it is a date too
        return value.isoformat()
    if isinstance(value, decimal.Decimal) and value.is_finite() and decimal.Decimal(repr(float(value))) == value:
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(value, int | decimal.Decimal):
        return _float_ceil(value) if upper else _float_floor(value)
    return value


def _exp(exp_type: str, severity: Severity, interval: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": exp_type, "kwargs": kwargs, "meta": {"severity": severity, "profiled_from": interval}}


def _row_range(rows: Sequence[int], *, incremental: bool = False) -> dict[str, int]:
    """Loose bounds: an incremental interval may bring no rows at all; a snapshot not a tenth of the fewest."""
    if not rows or max(rows) == 0:
        return {"min_value": 0}
    low = 0 if incremental else min(rows) // ROW_COUNT_FACTOR
    return {"min_value": low, "max_value": max(rows) * ROW_COUNT_FACTOR}


def _grows(t: pa.DataType) -> bool:
    """Dates and timestamps move forward with time: a past maximum is no bound for tomorrow."""
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


def _column_expectations(
    st: ColumnStats, interval: str, *, single_key: bool, cursor: bool = False, growing: bool = False
) -> list[dict[str, Any]]:
    c = st.name
    out = [_exp("expect_column_to_exist", "error", interval, column=c)]
    type_name = gx_type_name(st.type)
    if type_name:
        out.append(_exp("expect_column_values_to_be_of_type", "error", interval, column=c, type_=type_name))
    # NaN counts as missing once pandas holds the values in numpy floats: no not-null claim then
    if st.rows and st.nulls == 0 and st.nans == 0:
        out.append(_exp("expect_column_values_to_not_be_null", "error", interval, column=c))
    if single_key:
        out.append(_exp("expect_column_values_to_be_unique", "error", interval, column=c))
    elif st.distinct and len(st.distinct) < st.non_null:  # a few values, repeated: looks like a code
        out.append(_exp("expect_column_values_to_be_in_set", "warn", interval, column=c, value_set=sorted(st.distinct)))
    finite = not isinstance(st.min, float) or (math.isfinite(st.min) and math.isfinite(st.max))
    if st.min is not None and st.nans == 0 and finite and not cursor:
        upper = {} if growing else {"max_value": _bound(st.max, upper=True)}
        out.append(
            _exp(
                "expect_column_values_to_be_between",
                "warn",
                interval,
                column=c,
                min_value=_bound(st.min, upper=False),
                **upper,
            )
        )
    return out


def build_suite(
    name: str,
    manifest: Manifest,
    rows: int | Sequence[int],
    stats: Sequence[ColumnStats],
    primary_key: Sequence[str],
    *,
    intervals: Sequence[str] | None = None,
    cursor_field: str | None = None,
    incremental: bool = False,
    growing: Sequence[str] = (),
) -> dict[str, Any]:
    """Turn collected statistics into a suite dict (see :func:`profile_partitions`).

    Args:
        name: the suite name.
        manifest: the newest profiled manifest (names the dataset).
        rows: the rows of each profiled partition (or their total, for one partition).
        stats: per-column statistics over all profiled partitions.
        primary_key: the dataset's key columns.
        intervals: the profiled intervals (default: the manifest's).
        cursor_field: the incremental cursor column: no range.
        incremental: the dataset extracts windows: the row count may be 0.
        growing: further columns seen growing from partition to partition: no upper bound.
    """
    names = [s.name for s in stats]
    missing = [k for k in primary_key if k not in names]
    if missing:
        raise DataError(
            f"primary key column(s) {', '.join(missing)} are not in the staged data of {manifest.dataset} "
            f"{manifest.interval} (its columns: {', '.join(names)}); fix primary_key in the spec"
        )
    per_partition = [rows] if isinstance(rows, int) else list(rows)
    profiled = list(intervals or [manifest.interval])
    interval = profiled[-1] if len(profiled) == 1 else f"{profiled[0]} .. {profiled[-1]} ({len(profiled)} partitions)"
    expectations = [
        _exp(
            "expect_table_row_count_to_be_between",
            "warn",
            interval,
            **_row_range(per_partition, incremental=incremental),
        )
    ]
    if len(primary_key) > 1:
        expectations.append(
            _exp("expect_compound_columns_to_be_unique", "error", interval, column_list=list(primary_key))
        )
    single = primary_key[0] if len(primary_key) == 1 else None
    for st in stats:
        grows = (
            st.name in growing
            or _grows(st.type)
            or (st.name == single and pa.types.is_integer(st.type))  # new keys come after the old ones
        )
        expectations.extend(
            _column_expectations(
                st, interval, single_key=st.name == single, cursor=st.name == cursor_field, growing=grows
            )
        )
    profiled_from: dict[str, Any] = {
        "tenant": manifest.tenant,
        "pipeline": manifest.pipeline,
        "dataset": manifest.dataset,
        "stage": manifest.stage,
        "interval": profiled[-1] if len(profiled) == 1 else profiled,
        "rows": sum(per_partition) if len(profiled) > 1 else per_partition[0],
        "run_id": manifest.run_id,
    }
    return {
        "name": name,
        "expectations": expectations,
        "meta": {"generated_by": "bulksync quality init", "profiled_from": profiled_from},
    }


def profile_partitions(
    parts: Sequence[tuple[Manifest, Partition]],
    *,
    primary_key: Sequence[str] = (),
    cursor_field: str | None = None,
    incremental: bool = False,
    max_distinct: int = 20,
    name: str | None = None,
) -> dict[str, Any]:
    """Profile the committed stages of several partitions (oldest first) into one starting suite.

    Statistics span every partition; a numeric column whose maximum grew from each partition to the
    next (ids, sequence numbers, totals to date) gets no upper bound, nor do dates, timestamps and an
    integer key; the cursor column gets no range. See :func:`profile_partition` for the expectations.

    Raises:
        DataError: a primary-key column is not in the staged data, or the partitions disagree on it.
        StagingError: a part file is missing or differs from the manifest.
    """
    if not parts:
        raise DataError("no committed partition to profile")
    merged: list[ColumnStats] | None = None
    rows: list[int] = []
    maxima: dict[str, list[Any]] = {}
    for manifest, partition in parts:
        n, stats = collect_stats(partition, manifest, max_distinct=max_distinct)
        rows.append(n)
        for st in stats:
            if st.max is not None:
                maxima.setdefault(st.name, []).append(st.max)
        if merged is None:
            merged = stats
            continue
        by_name = {st.name: st for st in stats}
        for st in merged:
            if st.name in by_name:
                st.merge(by_name[st.name], max_distinct)
    growing = [
        c for c, m in maxima.items() if len(m) >= 2 and all(b >= a for a, b in itertools.pairwise(m)) and m[-1] > m[0]
    ]
    newest = parts[-1][0]
    suite = build_suite(
        name or newest.dataset,
        newest,
        rows,
        merged or [],
        list(primary_key),
        intervals=[m.interval for m, _ in parts],
        cursor_field=cursor_field,
        incremental=incremental,
        growing=growing,
    )
    log.info(
        "profiled %s over %d partitions (%s .. %s): %d rows, %d columns, %d expectations",
        newest.dataset,
        len(parts),
        parts[0][0].interval,
        newest.interval,
        sum(rows),
        len(merged or []),
        len(suite["expectations"]),
    )
    return suite


def profile_partition(
    manifest: Manifest,
    partition: Partition,
    *,
    primary_key: Sequence[str] = (),
    max_distinct: int = 20,
    name: str | None = None,
) -> dict[str, Any]:
    """Profile a committed stage of a partition into a starting GX suite.

    Per column: ``expect_column_to_exist``; ``expect_column_values_to_be_of_type`` (the Python type
    GX sees in an Arrow-backed pandas column); ``expect_column_values_to_not_be_null`` when no value
    is missing; ``expect_column_values_to_be_in_set`` for string columns with at most
    ``max_distinct`` distinct values that repeat; ``expect_column_values_to_be_between`` with the
    observed min/max of numeric, date and timestamp columns. For the table: a generous
    ``expect_table_row_count_to_be_between``; for the primary key, ``expect_column_values_to_be_unique``
    (one column) or ``expect_compound_columns_to_be_unique`` (several). Schema, null and key
    expectations get ``meta.severity: error``; ranges, value sets and the row count ``warn``. Each
    expectation's ``meta.profiled_from`` names the interval it was learnt from.

    Args:
        manifest: the committed manifest of the stage to profile (usually the extract).
        partition: the staging partition holding it.
        primary_key: the dataset's key columns (uniqueness is expected, not verified here).
        max_distinct: the most distinct values a string column may have to get a value set.
        name: the suite name (default: the dataset's name).

    Returns:
        A suite dict: ``gx.ExpectationSuite(**suite)`` loads it.

    Raises:
        DataError: a primary-key column is not in the staged data.
        StagingError: a part file is missing or differs from the manifest.
    """
    rows, stats = collect_stats(partition, manifest, max_distinct=max_distinct)
    suite = build_suite(name or manifest.dataset, manifest, rows, stats, list(primary_key))
    log.info(
        "profiled %s %s: %d rows, %d columns, %d expectations",
        manifest.dataset,
        manifest.interval,
        rows,
        len(stats),
        len(suite["expectations"]),
    )
    return suite
