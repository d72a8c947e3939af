"""Type mapping: declared spec types and database column types to exact Arrow types."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

TIMESTAMP_UNIT = "us"


def arrow_type(declared: str) -> pa.DataType:
    """Arrow type of a canonical declared type (see :mod:`bulksync.spec.columns`)."""
    simple: dict[str, pa.DataType] = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp(TIMESTAMP_UNIT),
        "timestamptz": pa.timestamp(TIMESTAMP_UNIT, tz="UTC"),
        "binary": pa.binary(),
    }
    if declared in simple:
        return simple[declared]
    if declared.startswith("decimal("):
        p, s = declared[len("decimal(") : -1].split(",")
        return pa.decimal128(int(p), int(s))
    raise ValueError(f"unknown declared type {declared!r}")


def arrow_from_sqlalchemy(sa_type: Any) -> pa.DataType:
    """Exact Arrow type of a reflected SQLAlchemy column type (text for anything without an exact one).

    Integers keep their width and sign (MySQL ``UNSIGNED`` to ``uint*``; ``TINYINT(1)``, MySQL's
    ``BOOLEAN``, to bool), decimals their precision and scale; a numeric without precision, JSON,
    UUIDs, intervals, arrays, network addresses and anything unknown become text. SQL Server:
    ``datetimeoffset`` to a UTC timestamp, ``money`` / ``smallmoney`` to decimal(19,4) / (10,4),
    ``uniqueidentifier`` to text.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects import mssql, mysql

    t = sa_type
    name = type(t).__name__.upper()
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, mysql.YEAR):
        return pa.int16()
    if isinstance(t, mssql.MONEY):
        return pa.decimal128(19, 4)
    if isinstance(t, mssql.SMALLMONEY):
        return pa.decimal128(10, 4)
    if isinstance(t, sa.Integer):
        if (
            isinstance(t, mysql.TINYINT)
            and getattr(t, "display_width", None) == 1
            and not getattr(t, "unsigned", False)
        ):
            return pa.bool_()
        bits = (
            8
            if name == "TINYINT"
            else 16
            if isinstance(t, sa.SmallInteger)
            else 64
            if isinstance(t, sa.BigInteger)
            else 32
        )
        if getattr(t, "unsigned", False):
            return {8: pa.uint8(), 16: pa.uint16(), 32: pa.uint32(), 64: pa.uint64()}[bits]
        return {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[bits]
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        if t.precision is None:
            return pa.string()  # unbounded: every digit kept as text (see sources.sql_columns)
        scale = t.scale or 0
        return pa.decimal128(t.precision, scale) if t.precision <= 38 else pa.decimal256(t.precision, scale)
    if isinstance(t, sa.Float):
        return (
            pa.float32()
            if name in ("REAL", "FLOAT4") or getattr(t, "precision", None) in range(1, 25)
            else pa.float64()
        )
    if isinstance(t, sa.DateTime):
        tz = t.timezone or isinstance(t, mssql.DATETIMEOFFSET)
        return pa.timestamp(TIMESTAMP_UNIT, tz="UTC" if tz else None)
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.Time):
        return pa.string() if t.timezone else pa.time64("us")
    if isinstance(t, sa.LargeBinary | sa.types._Binary):
        return pa.binary()
    return pa.string()


SQL_TYPE = b"bulksync.sql_type"
"""Field metadata naming the source column's length-bounded text type (``char(10)``, ``varchar(40)``):
a table bulksync creates keeps it (see :func:`bulksync.targets.ddl.column_type`)."""


def sql_type_name(sa_type: Any, dialect: Any = None) -> str:
    """A SQLAlchemy type as the database names it (``numeric(10, 2)``, ``tinyint(1)``), for messages and metadata."""
    try:
        return str(sa_type.compile(dialect=dialect)).lower()
    except Exception:  # noqa: BLE001 - a dialect-specific type without a generic rendering
        return type(sa_type).__name__.lower()
