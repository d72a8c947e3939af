"""From catalogue columns and declared conventions to the staged Arrow schema, batch by batch.

:func:`plan_columns` decides, once per extract, what every staged column is made of (which source
columns, which conversion, which Arrow type, which comment); :class:`BatchDecoder` then turns each
fetched batch of row tuples into a ``RecordBatch``, counting (or, in strict mode, refusing)
invalid dates, times and codes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.errors import ConfigurationError, DataError
from bulksync.ibmi import convert
from bulksync.ibmi.catalog import DECIMAL_TYPES, TEXT_TYPES, CatalogColumn
from bulksync.ibmi.ccsid import codec_for
from bulksync.spec.ibmi import IbmiColumn, IbmiOptions

log = logging.getLogger(__name__)

COMMENT = b"comment"
SOURCE_TYPE = b"ibmi_type"
Convert = Callable[[list[pa.Array]], convert.Converted]


@dataclass(frozen=True)
class StagedColumn:
    """One staged column: its field, the source columns it reads and how it converts them."""

    field: pa.Field
    inputs: tuple[int, ...]
    convert: Convert
    what: str
    """The convention, for messages (``CYYMMDD date``, ``HHMMSS time`` …)."""


def raw_type(col: CatalogColumn) -> pa.DataType:
    """The Arrow type fetched values are first put into, before any convention applies."""
    t = col.sql_type
    if col.is_bit_data:
        return pa.binary()
    if t in DECIMAL_TYPES:
        p, s = col.precision or 31, col.scale or 0
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    if t == "SMALLINT":
        return pa.int16()
    if t == "INTEGER":
        return pa.int32()
    if t == "BIGINT":
        return pa.int64()
    if t in ("DOUBLE", "FLOAT", "REAL", "DECFLOAT"):
        return pa.float64()
    if t == "DATE":
        return pa.date32()
    if t == "TIME":
        return pa.time64("us")
    if t == "TIMESTAMP":
        return pa.timestamp("us")
    if t == "BOOLEAN":
        return pa.bool_()
    return pa.string()


def to_arrow(values: Sequence[Any], col: CatalogColumn) -> pa.Array:
    """Fetched values of one column as an Arrow array of :func:`raw_type`."""
    typ = raw_type(col)
    if pa.types.is_decimal(typ):
        first = next((v for v in values if v is not None), None)
        if isinstance(first, str):
            return convert.decimal(pa.array(values, pa.string()), typ)
        if any(isinstance(v, float) for v in values):  # SQLite: REAL and INTEGER mixed in a NUMERIC column
            return convert.decimal(pa.array([None if v is None else float(v) for v in values], pa.float64()), typ)
        return pa.array(values, typ)
    if pa.types.is_string(typ):
        first = next((v for v in values if v is not None), None)
        if isinstance(first, bytes | bytearray | memoryview):
            return pa.array([None if v is None else bytes(v) for v in values], pa.binary())
        if first is not None and not isinstance(first, str):
            return pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_binary(typ):
        return pa.array([None if v is None else bytes(v) for v in values], pa.binary())
    if pa.types.is_time(typ) or pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        first = next((v for v in values if v is not None), None)
        if isinstance(first, str):  # SQLite keeps dates and times as text
            return pa.array(values, pa.string()).cast(typ)
    return pa.array(values, typ)


def _meta(col: CatalogColumn, spec: IbmiColumn | None, what: str) -> dict[bytes, bytes]:
    meta = {}
    text = (spec.comment if spec and spec.comment else None) or col.text
    if text:
        meta[COMMENT] = text.encode("utf-8")
    size = (
        f"({col.precision},{col.scale or 0})"
        if col.sql_type in DECIMAL_TYPES
        else (f"({col.length})" if col.length else "")
    )
    meta[SOURCE_TYPE] = f"{col.name} {col.sql_type}{size}{' FOR BIT DATA' if col.is_bit_data else ''} {what}".encode()
    return meta


def plan_columns(
    catalog: list[CatalogColumn], options: IbmiOptions, where: str
) -> tuple[list[str], list[StagedColumn]]:
    """The columns to select and the staged columns built from them.

    Args:
        catalog: the file's (or query's) columns.
        options: the source options with the declared conventions.
        where: the file or query, for messages.

    Returns:
        ``(selected column names, staged columns)``.

    Raises:
        ConfigurationError: a declared column does not exist, or a convention does not fit its type.
    """
    by_name = {c.name.upper(): c for c in catalog}
    missing = [c.name for c in options.columns if c.name.upper() not in by_name]
    missing += [c.time_column for c in options.columns if c.time_column and c.time_column.upper() not in by_name]
    if missing:
        raise ConfigurationError(f"columns {missing} declared in the spec are not in {where}; it has {sorted(by_name)}")
    consumed = {c.time_column.upper() for c in options.columns if c.time_column}
    if options.read_columns == "declared":
        wanted = [by_name[c.name.upper()] for c in options.columns]
    else:
        wanted = [c for c in catalog if c.name.upper() not in consumed]
    selected: list[str] = []
    index: dict[str, int] = {}

    def use(col: CatalogColumn) -> int:
        if col.name.upper() not in index:
            index[col.name.upper()] = len(selected)
            selected.append(col.name)
        return index[col.name.upper()]

    staged = []
    for col in wanted:
        spec = options.column(col.name)
        staged.append(_staged(col, spec, options, use, by_name, where))
    return selected, staged


def _staged(
    col: CatalogColumn,
    spec: IbmiColumn | None,
    options: IbmiOptions,
    use: Callable[[CatalogColumn], int],
    by_name: dict[str, CatalogColumn],
    where: str,
) -> StagedColumn:
    name = spec.out_name if spec else col.name
    how = spec.convert if spec else "auto"
    trim = (spec.trim if spec and spec.trim is not None else options.trim_char) and col.is_char
    i = use(col)

    def make(typ: pa.DataType, fn: Convert, what: str, inputs: tuple[int, ...] = (i,)) -> StagedColumn:
        return StagedColumn(pa.field(name, typ, metadata=_meta(col, spec, what)), inputs, fn, what)

    if how == "auto":
        if col.is_bit_data and options.bit_data_ccsid:
            how = "ebcdic"
        elif col.is_bit_data:
            how = "binary"
        elif col.sql_type in TEXT_TYPES:
            how = "text"
        else:
            typ = raw_type(col)
            if pa.types.is_timestamp(typ):
                tz = options.timezone
                return make(pa.timestamp("us", tz="UTC"), lambda a: (convert.localize(a[0], tz), None), "timestamp")
            return make(typ, lambda a: (a[0], None), col.sql_type.lower())
    if how == "text":
        if col.is_bit_data:
            raise ConfigurationError(
                f"column {col.name} of {where} is FOR BIT DATA (CCSID 65535): declare convert: ebcdic with its "
                "ccsid (e.g. 37) to read it as text, or convert: binary"
            )
        return make(pa.string(), (lambda a: (convert.rtrim(a[0]), None)) if trim else (lambda a: (a[0], None)), "text")
    if how == "binary":
        return make(pa.binary(), lambda a: (a[0], None), "bytes")
    if how == "ebcdic":
        ccsid = (spec.ccsid if spec and spec.ccsid else None) or options.bit_data_ccsid
        if ccsid is None:
            raise ConfigurationError(f"column {col.name}: convert: ebcdic needs ccsid (or options.bit_data_ccsid)")
        if not col.is_bit_data:
            raise ConfigurationError(
                f"column {col.name} of {where} is {col.sql_type}, not FOR BIT DATA: the system already translates it; "
                "drop convert: ebcdic"
            )
        codec = codec_for(ccsid)
        keep_blanks = spec is not None and spec.trim is False
        return make(pa.string(), lambda a: (convert.ebcdic(a[0], codec, trim=not keep_blanks), None), f"CCSID {ccsid}")
    if how == "decimal":
        if col.sql_type not in DECIMAL_TYPES:
            raise ConfigurationError(f"column {col.name} of {where} is {col.sql_type}, not DECIMAL/NUMERIC")
        return make(raw_type(col), lambda a: (a[0], None), "decimal")
    if how == "integer":
        return make(pa.int64(), lambda a: _integer(a[0]), "integer")
    if how == "code":
        width = (spec.width if spec else None) or col.precision or col.length
        if not width:
            raise ConfigurationError(f"column {col.name}: convert: code needs width (digits of the code)")
        return make(pa.string(), lambda a: convert.code(a[0], int(width)), f"code({width})")
    assert spec is not None
    fmt = spec.date_format or "CYYMMDD"
    pivot = options.century_pivot
    if how == "date":
        return make(pa.date32(), lambda a: convert.numeric_date(a[0], fmt, pivot), f"{fmt} date")
    if how == "time":
        return make(pa.time64("us"), lambda a: convert.numeric_time(a[0]), "HHMMSS time")
    # timestamp: date + time pair
    assert spec.time_column is not None
    t = use(by_name[spec.time_column.upper()])
    tz = options.timezone
    return make(
        pa.timestamp("us", tz="UTC"),
        lambda a: convert.numeric_timestamp(a[0], a[1], fmt, pivot, tz),
        f"{fmt} date + {spec.time_column.upper()} HHMMSS time",
        (i, t),
    )


def _integer(arr: pa.Array) -> convert.Converted:
    values, null, bad = convert.as_int64(arr)
    return pa.array(values, pa.int64(), mask=null | bad), bad


class BatchDecoder:
    """Turn fetched row tuples into record batches of the staged schema.

    Args:
        catalog: the selected columns' catalogue entries, in select order.
        staged: the staged columns (:func:`plan_columns`).
        strict: fail on the first invalid value instead of null + count.
        where: the file or query, for messages.
    """

    def __init__(self, catalog: list[CatalogColumn], staged: list[StagedColumn], strict: bool, where: str) -> None:
        self.catalog = catalog
        self.staged = staged
        self.strict = strict
        self.where = where
        self.schema = pa.schema([s.field for s in staged])
        self.rows = 0
        self.invalid: dict[str, int] = {}
        self.samples: dict[str, str] = {}

    def decode(self, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        """One batch of rows (tuples in select order) as a record batch."""
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.catalog]
        raw = [to_arrow(values, col) for values, col in zip(columns, self.catalog, strict=True)]
        arrays = []
        for s in self.staged:
            out, bad = s.convert([raw[i] for i in s.inputs])
            if bad is not None and bad.any():
                self._invalid(s, bad, [columns[i] for i in s.inputs])
            arrays.append(out)
        self.rows += len(rows)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _invalid(self, s: StagedColumn, bad: np.ndarray, inputs: list[Sequence[Any]]) -> None:
        first = int(np.argmax(bad))
        value = inputs[0][first] if len(inputs) == 1 else tuple(v[first] for v in inputs)
        count = int(bad.sum())
        name = s.field.name
        source = " + ".join(self.catalog[i].name for i in s.inputs)
        if self.strict:
            raise DataError(
                f"{self.where}, column {source} ({s.what}): invalid value {value!r} in row {self.rows + first + 1} "
                f"of this extract ({count} invalid in this batch of {len(bad)}). Fix the data on the IBM i, or "
                "set strict: false to stage such values as null and count them"
            )
        self.invalid[name] = self.invalid.get(name, 0) + count
        self.samples.setdefault(name, repr(value))

    def report(self) -> dict[str, Any]:
        """Counts of invalid values per staged column, with one sample each (for the manifest)."""
        for name, n in self.invalid.items():
            log.warning("%s: %d invalid values in %s staged as null (e.g. %s)", self.where, n, name, self.samples[name])
        return {"invalid_values": dict(self.invalid), "invalid_samples": dict(self.samples)}
