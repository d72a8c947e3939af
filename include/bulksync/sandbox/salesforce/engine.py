"""Running a parsed SOQL query over the store, and formatting rows as Bulk CSV or REST JSON."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.sandbox.salesforce import ids
from bulksync.sandbox.salesforce.schema import FieldDef
from bulksync.sandbox.salesforce.soql import Query
from bulksync.sandbox.salesforce.store import Store

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclass
class ScanPlan:
    """How to read a query's matching rows range by range (record indices ``[lo, hi)``)."""

    store: Store
    query: Query
    lo: int
    hi: int
    columns: list[str]
    condition: pc.Expression | None
    cheap: list[str]

    @property
    def streamable(self) -> bool:
        """Rows come out in index order with no ORDER BY / LIMIT / OFFSET work: ranges are independent."""
        q = self.query
        natural = not q.order or [(n, d) for n, d, _ in q.order] == [("Id", False)]
        return natural and q.limit is None and not q.offset

    def ranges(self, size: int) -> list[tuple[int, int]]:
        """The index ranges to read, ``size`` records each."""
        return [(a, min(a + size, self.hi)) for a in range(self.lo, self.hi, size)]

    def read(self, start: int, stop: int) -> pa.Table | None:
        """Matching rows of records ``[start, stop)`` (None when there are none).

        Late materialisation: WHERE is evaluated on its own columns first, the other columns are
        generated for the matching records only.
        """
        obj = self.query.obj
        if self.condition is None:
            chunk = self.store.chunk(obj, start, stop, self.columns)
        else:
            chunk = self.store.chunk(obj, start, stop, self.cheap)
            mask = _mask(chunk, self.condition)
            matches = np.flatnonzero(mask.to_numpy(zero_copy_only=False)) + start
            if not len(matches):
                return None
            if set(self.columns) <= set(self.cheap):
                chunk = chunk.filter(mask)
            else:
                chunk = self.store.rows(obj, matches, self.columns)
        return chunk.select(self.columns) if chunk.num_rows else None


def plan(store: Store, query: Query, include_deleted: bool) -> ScanPlan:
    """The scan plan of ``query``: Id bounds narrow the index range; deleted rows filtered unless asked for."""
    obj = query.obj
    total = store.total(obj)
    lo = ids.lower_bound(obj.prefix, query.id_lower, total) if query.id_lower else 0
    hi = ids.lower_bound(obj.prefix, query.id_upper + "\x7f", total) if query.id_upper else total
    condition = query.where
    filter_columns = set(query.filter_fields)
    if not include_deleted:
        live = pc.field("IsDeleted") == pa.scalar(False)
        condition = live if condition is None else condition & live
        filter_columns.add("IsDeleted")
    purged = store.purged[obj.name]
    if purged:  # hard-deleted records: gone from queryAll too
        kept = ~pc.field("Id").isin(pa.array(sorted(purged), pa.string()))
        condition = kept if condition is None else condition & kept
        filter_columns.add("Id")
    cheap = [f.name for f in obj.columns if f.name in filter_columns]
    return ScanPlan(store, query, lo, hi, query.columns(), condition, cheap)


def scan(store: Store, query: Query, include_deleted: bool, size: int = 50_000) -> Iterator[pa.Table]:
    """Matching rows (the query's columns) in result order, honouring ORDER BY, OFFSET and LIMIT."""
    p = plan(store, query, include_deleted)

    def filtered() -> Iterator[pa.Table]:
        for start, stop in p.ranges(size):
            table = p.read(start, stop)
            if table is not None:
                yield table

    def backwards() -> Iterator[pa.Table]:
        for start, stop in reversed(p.ranges(size)):
            table = p.read(start, stop)
            if table is not None:
                yield table.take(pa.array(np.arange(table.num_rows - 1, -1, -1)))

    source: Iterator[pa.Table] = filtered()
    by_id_desc = [(n, d) for n, d, _ in query.order] == [("Id", True)]
    if by_id_desc and query.limit is not None and not query.offset:
        source = backwards()  # ORDER BY Id DESC LIMIT n: the primary-key index read from its end
    elif query.order and not p.streamable and [(n, d) for n, d, _ in query.order] != [("Id", False)]:
        empty = query.obj.arrow_schema.empty_table().select(p.columns)
        whole = pa.concat_tables(list(filtered()) or [empty])
        keys = [
            (name, "descending" if desc else "ascending", "at_end" if last else "at_start")
            for name, desc, last in query.order
        ]
        whole = whole.take(pc.sort_indices(whole, sort_keys=keys))
        source = iter([whole])
    skip, left = query.offset, query.limit
    for table in source:
        if skip:
            drop = min(skip, table.num_rows)
            table, skip = table.slice(drop), skip - drop
        if left is not None:
            table = table.slice(0, left)
            left -= table.num_rows
        if table.num_rows:
            yield table
        if left == 0:
            return


def _mask(table: pa.Table, condition: pc.Expression) -> pa.Array:
    """The boolean match mask of ``condition`` over ``table`` (null counts as no match)."""
    marked = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    rows = marked.filter(condition)["__row"].to_numpy()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    return pa.array(mask)


def count(store: Store, query: Query, include_deleted: bool) -> int:
    """Number of matching rows."""
    return sum(t.num_rows for t in scan(store, query, include_deleted))


def _datetime_text(column: pa.ChunkedArray) -> pa.Array:
    """``2026-01-01T10:00:00.000Z`` for UTC millisecond timestamps, fast.

    Arrow's time-zone aware formatting is slow (about 4 µs a value); the naive cast writes a fixed
    23-character ``YYYY-MM-DD HH:MM:SS.mmm``, patched here in place with numpy.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    naive = pc.fill_null(array.cast(pa.timestamp("ms")), pa.scalar(0, pa.timestamp("ms")))
    text = pc.cast(naive, pa.string())
    width = 23
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=n + 1, offset=text.offset * 4)
    if n and (offsets[-1] - offsets[0] != n * width):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")  # a year outside 1000-9999
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8, count=n * width, offset=int(offsets[0]))
    out = np.empty((n, width + 1), dtype=np.uint8)
    out[:, :width] = data.reshape(n, width)
    out[:, 10] = ord("T")
    out[:, width] = ord("Z")
    new_offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * (width + 1)).tobytes())
    result = pa.StringArray.from_buffers(n, new_offsets, pa.py_buffer(out.tobytes()))
    return pc.if_else(array.is_valid(), result, pa.scalar(None, pa.string()))


def java_double(value: float) -> str:
    """``Double.toString`` of Java: ``100.0``, ``1234.5``, ``1.2345678E7``, ``1.0E-4``.

    Salesforce's Bulk API writes double, currency and percent values this way ("100.0" for a
    percent(3,0), scientific notation from 10^7 up and below 10^-3): the shortest digits that
    round-trip, at least one digit after the point.
    """
    if value == 0:
        return "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "." in text or "e" in text else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    numerals = "".join(map(str, digits))
    power = exponent + len(numerals) - 1
    mantissa = numerals[0] + "." + (numerals[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


def java_number_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A float column as Java prints doubles (see :func:`java_double`), vectorised where it can be."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = np.asarray(pc.fill_null(array, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    plain = pc.cast(array, pa.string())
    magnitude = np.abs(values)
    integral = (values == np.trunc(values)) & (magnitude < 1e7)
    text = pc.if_else(pa.array(integral), pc.binary_join_element_wise(plain, ".0", ""), plain)
    odd = np.flatnonzero(((magnitude >= 1e7) | ((magnitude < 1e-3) & (magnitude > 0))) & ~np.isnan(values))
    if len(odd):
        strings = text.to_pylist()
        for i in odd.tolist():
            strings[i] = java_double(float(values[i]))
        text = pa.array(strings, pa.string())
    return pc.if_else(array.is_valid(), text, pa.scalar(None, pa.string()))


def _csv_column(fdef: FieldDef, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if fdef.type == "datetime":
        text = _datetime_text(column)
    elif fdef.type == "boolean":
        text = pc.if_else(column, "true", "false")
    elif fdef.type in ("double", "currency", "percent"):
        text = java_number_text(column)
    elif fdef.type in ("int", "date"):
        text = pc.cast(column, pa.string())
    else:
        text = column
    return pc.fill_null(text, "")


def csv_bytes(
    table: pa.Table, fields: list[FieldDef], delimiter: str = ",", eol: str = "\n", header: bool = True
) -> bytes:
    """Rows as Bulk API 2.0 CSV: every value quoted, embedded quotes doubled, nulls as ``""``."""
    out = pa.table([_csv_column(f, table.column(f.name)) for f in fields], names=[f.name for f in fields])
    buf = io.BytesIO()
    options = pacsv.WriteOptions(include_header=header, delimiter=delimiter, eol=eol, quoting_style="all_valid")
    pacsv.write_csv(out, buf, options)
    return buf.getvalue()


def csv_header(fields: list[FieldDef], delimiter: str = ",", eol: str = "\n") -> bytes:
    """The CSV header line."""
    return (delimiter.join(f'"{f.name}"' for f in fields) + eol).encode()


def _json_value(fdef: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if fdef.type == "datetime":
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if fdef.type == "date":
        return value.isoformat()
    return value


def json_records(table: pa.Table, query: Query, version: str) -> list[dict[str, Any]]:
    """Rows as REST query records with ``attributes`` and compound address objects."""
    obj = query.obj
    out = []
    for row in table.to_pylist():
        record: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{row.get('Id')}"}
        }
        for fdef in query.fields:
            if fdef.is_compound:
                parts = {c.name: row.get(c.name) for c in obj.components(fdef.name)}
                record[fdef.name] = _address(fdef.name, parts)
            else:
                record[fdef.name] = _json_value(fdef, row.get(fdef.name))
        out.append(record)
    return out


def _address(compound: str, parts: dict[str, Any]) -> dict[str, Any] | None:
    prefix = compound.removesuffix("Address")
    keys = ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude")
    values = {k[0].lower() + k[1:]: parts.get(prefix + k) for k in keys}
    if all(v is None for v in values.values()):
        return None
    values["geocodeAccuracy"] = None
    return values
