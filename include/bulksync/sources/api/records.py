"""Record selection: JSON records into Arrow record batches of the declared columns.

Each column's values are read by its dotted path (:mod:`bulksync.sources.api.paths`) and converted by
Arrow's own casts (ISO 8601 strings to UTC timestamps, decimal strings to exact decimals, "true" to
booleans …). A value that does not fit, or a null in a non-null column, raises an error naming the
endpoint, page, record index within the page, field and value.

Batches are built with the cyclic garbage collector paused (:func:`without_gc`): a batch is tens of
thousands of parsed JSON objects that reference counting frees anyway, and each full collection the
allocations triggered rescanned the whole heap of the task process (Airflow and pandas imported).
"""

from __future__ import annotations

import base64
import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.arrow_types import arrow_type
from bulksync.sources.api import paths
from bulksync.sources.api.errors import ApiDataError, where
from bulksync.spec.api import ApiColumn

_ODATA_V2 = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
T = TypeVar("T")


def without_gc(items: Iterator[T]) -> Iterator[T]:
    """``items``, produced with the cyclic garbage collector paused.

    The collector is off only while ``items`` computes its next item (fetching and parsing pages,
    building a batch), and on again while the caller holds an item, so the caller's own code (the
    staging writer) runs as before; the youngest generation, which holds the reference cycles made
    meanwhile, is collected before each item is handed over, so they never outlive one batch.

    Args:
        items: an iterator (a generator of record batches).

    Yields:
        The items of ``items``, in order.
    """
    try:
        while True:
            enabled = gc.isenabled()
            gc.disable()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                if enabled:
                    gc.enable()
                    # the reference cycles made meanwhile (each HTTP response and retry state is one) go now: the
                    # caller may allocate nothing before the next batch, and no collection would run until the end
                    gc.collect(0)
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


@dataclass
class Origin:
    """Where a run of buffered records came from: ``count`` records of ``page`` of ``label``."""

    label: str
    page: int
    count: int


class Converter:
    """Builds batches of ``columns`` (+ the parent column, + the deletes flag)."""

    def __init__(self, columns: list[ApiColumn], flag: str | None = None, parent: str | None = None) -> None:
        self.columns = columns
        self.flag = flag
        self.parent = parent
        fields = [pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in columns]
        if flag:
            fields.append(pa.field(flag, pa.bool_(), nullable=False))
        self.schema = pa.schema(fields)
        self.paths = {c.name: c.path or c.name for c in columns}

    def convert(
        self,
        records: list[Any],
        origins: list[Origin],
        deleted: list[bool] | None = None,
        parent_ids: list[Any] | None = None,
    ) -> pa.RecordBatch:
        """One batch of ``records`` (``deleted`` marks deletions; ``parent_ids`` fills the parent column)."""
        arrays = []
        shared: dict[str, list[Any]] = {}  # the nested objects several columns read (HubSpot 'properties')
        for col in self.columns:
            path = self.paths[col.name]
            if self.parent and col.name == self.parent and parent_ids is not None:
                values = parent_ids
            elif path.count(".") == 1 and "[" not in path and not path.startswith(("$", "@")):
                head, leaf = path.split(".")
                if head not in shared:
                    shared[head] = paths.column_values(records, head)
                try:
                    values = [None if s is None else s.get(leaf) for s in shared[head]]
                except AttributeError:
                    values = paths.column_values(records, path)
            else:
                values = paths.column_values(records, path)
            arr = self._array(col, values, origins)
            if not col.nullable and arr.null_count:
                self._null_error(col, arr, origins, deleted)
            arrays.append(arr)
        if self.flag:
            arrays.append(pa.array(deleted if deleted is not None else [False] * len(records), pa.bool_()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _null_error(self, col: ApiColumn, arr: pa.Array, origins: list[Origin], deleted: list[bool] | None) -> None:
        nulls = arr.is_null().to_pylist()
        for i, is_null in enumerate(nulls):
            if is_null and not (deleted and deleted[i]):
                label, page, index = _locate(origins, i)
                raise ApiDataError(
                    f"{where(label, page, index, col.name)}: the record has no value for the non-null column "
                    f"(path {self.paths[col.name]!r}); declare it nullable: true, or fix the path"
                )

    def _array(self, col: ApiColumn, values: list[Any], origins: list[Origin]) -> pa.Array:
        typ = arrow_type(col.type)
        try:
            return _convert(values, typ, col.format)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError) as exc:
            i, bad = _first_bad(values, typ, col.format)
            label, page, index = _locate(origins, i)
            raise ApiDataError(
                f"{where(label, page, index, col.name)}: value {_show(bad)} does not fit the declared type "
                f"{col.type}{' (format ' + col.format + ')' if col.format else ''} ({_reason(exc)}); declare the "
                "column's type (or format) to match the API, e.g. type: string"
            ) from None


def _convert(values: list[Any], typ: pa.DataType, fmt: str | None) -> pa.Array:
    if pa.types.is_string(typ):
        try:
            return pa.array(values, pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers, lists, objects: their text (texts as they are)
            return pa.array([v if v is None or type(v) is str else _text(v) for v in values], pa.string())
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return _temporal(values, typ, fmt)
    if pa.types.is_binary(typ):
        return pa.array([None if v is None else base64.b64decode(v, validate=True) for v in values], pa.binary())
    if pa.types.is_boolean(typ):
        try:
            return pa.array(values, typ)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return pc.cast(pa.array([_lower(v) for v in values], pa.string()), typ)
    if pa.types.is_decimal(typ):
        return pc.cast(pa.array([_decimal_text(v) for v in values], pa.string()), typ)
    try:  # integers and floats
        return pa.array(values, typ)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pc.cast(pa.array([_number_text(v) for v in values], pa.string()), typ)


def _temporal(values: list[Any], typ: pa.DataType, fmt: str | None) -> pa.Array:
    kind = fmt or "iso8601"
    if kind in ("epoch_ms", "epoch_s", "odata_v2"):
        ints: list[int | None] = []
        for v in values:
            if v is None or v == "":
                ints.append(None)
            elif kind == "odata_v2":
                m = _ODATA_V2.match(str(v))
                if not m:
                    raise ValueError(f"not an OData v2 date /Date(ms)/: {v!r}")
                ints.append(int(m.group(1)))
            else:
                if isinstance(v, bool):
                    raise TypeError("a boolean is not a time")
                ints.append(int(v) if isinstance(v, int) else int(str(v)))
        unit = "s" if kind == "epoch_s" else "ms"
        arr = pa.array(ints, pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
        if pa.types.is_date(typ):
            return arr.cast(pa.date32())
        return arr.cast(pa.timestamp(typ.unit, tz="UTC")).cast(typ) if typ.tz is None else arr.cast(typ)
    # a text value as it is, without a call per value; "" and None are null, anything else fails in _as_str
    strs = pa.array(
        [v if type(v) is str and v else None if v is None or v == "" else _as_str(v) for v in values], pa.string()
    )
    if kind not in ("iso8601", "iso8601_ms", "iso8601_s"):
        parsed = pc.strptime(strs, format=kind, unit="us", error_is_null=False)
        return (
            parsed.cast(typ) if not pa.types.is_timestamp(typ) or typ.tz is None else pc.assume_timezone(parsed, "UTC")
        )
    if pa.types.is_date(typ):
        return pc.cast(pc.utf8_slice_codeunits(strs, 0, 10), typ)
    if typ.tz is None:
        return pc.cast(pc.cast(strs, pa.timestamp(typ.unit, tz="UTC")), pa.timestamp(typ.unit, tz="UTC")).cast(typ)
    return pc.cast(strs, typ)


def _as_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise TypeError(f"expected a text date-time, got {type(v).__name__}")


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if type(v) is list or type(v) is dict:  # JSON arrays and objects (Graph businessPhones): the common case
        return orjson.dumps(v).decode()
    if isinstance(v, int | float):
        return repr(v) if isinstance(v, float) else str(v)
    return orjson.dumps(v).decode()


def _lower(v: Any) -> str | None:
    if v is None or isinstance(v, bool):
        return None if v is None else ("true" if v else "false")
    if isinstance(v, str):
        text = v.strip().lower()
        return _BOOL_LETTERS.get(text, text) if text else None  # NetSuite sends "T"/"F"
    raise TypeError(f"expected a boolean, got {type(v).__name__}")


_BOOL_LETTERS = {"t": "true", "f": "false", "y": "true", "n": "false", "yes": "true", "no": "false"}


def _decimal_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise TypeError(f"expected a number, got {type(v).__name__}")
    return v if isinstance(v, str) else repr(v)


def _number_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str | int | float):
        return str(v)
    raise TypeError(f"expected a number, got {type(v).__name__}")


def _first_bad(values: list[Any], typ: pa.DataType, fmt: str | None) -> tuple[int, Any]:
    for i, v in enumerate(values):
        try:
            _convert([v], typ, fmt)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError):
            return i, v
    return 0, None


def _locate(origins: list[Origin], i: int) -> tuple[str, int | None, int | None]:
    for o in origins:
        if i < o.count:
            return o.label, o.page, i
        i -= o.count
    return (origins[-1].label if origins else "?"), None, None


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
