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
    """Exact Arrow type of a reflected SQLAlchemy column type (text for anything unknown)."""
    import sqlalchemy as sa

    t = sa_type
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.SmallInteger | sa.Integer) and not isinstance(t, sa.BigInteger):
        return pa.int32() if not isinstance(t, sa.SmallInteger) else pa.int16()
    if isinstance(t, sa.BigInteger):
        return pa.int64()
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        if t.precision is not None:
            scale = t.scale or 0
            return pa.decimal128(t.precision, scale) if t.precision <= 38 else pa.decimal256(t.precision, scale)
        return pa.decimal128(38, 10)
    if isinstance(t, sa.Float):
        return pa.float64()
    if isinstance(t, sa.DateTime):
        return pa.timestamp(TIMESTAMP_UNIT, tz="UTC" if t.timezone else None)
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.Time):
        return pa.time64("us")
    if isinstance(t, sa.LargeBinary | sa.types._Binary):
        return pa.binary()
    return pa.string()


SQL_TYPE = b"sql_type"
"""Field metadata naming the source column's length-bounded text type (``char(10)``, ``varchar(40)``):
a table bulksync creates keeps it (see :func:`bulksync.targets.ddl.column_type`)."""


def sql_type_metadata(sa_type: Any) -> dict[bytes, bytes] | None:
    """``{b"sql_type": b"char(n)" | b"varchar(n)"}`` for a reflected text column with a length, else None."""
    import sqlalchemy as sa

    length = getattr(sa_type, "length", None)
    if not isinstance(sa_type, sa.String) or isinstance(sa_type, sa.Text | sa.Enum) or not length:
        return None
    fixed = isinstance(sa_type, sa.CHAR | sa.NCHAR) or type(sa_type).__name__.upper() in ("CHAR", "NCHAR", "BPCHAR")
    return {SQL_TYPE: f"{'char' if fixed else 'varchar'}({int(length)})".encode()}
