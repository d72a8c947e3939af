"""Table definitions from Arrow schemas, and whether an existing column can take new data."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from bulksync.arrow_types import SQL_TYPE
from bulksync.errors import TargetSchemaError

_INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}
_TEXT_TYPE = re.compile(
    r"^\s*(?P<kind>char|character|nchar|varchar|character varying|nvarchar|varchar2)\s*\(\s*(?P<n>\d{1,5})\s*\)\s*$",
    re.IGNORECASE,
)


def column_type(field: pa.Field, dialect: str) -> Any:
    """The column type of a staged field in a table bulksync creates: :func:`sa_type`, or the
    source's ``char(n)`` / ``varchar(n)`` when the field's ``sql_type`` metadata says so."""
    declared = (field.metadata or {}).get(SQL_TYPE)
    if declared and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        m = _TEXT_TYPE.match(declared.decode("utf-8", "replace"))
        if m and int(m["n"]) > 0:
            fixed = m["kind"].lower() in ("char", "character", "nchar")
            return sa.CHAR(int(m["n"])) if fixed else sa.String(int(m["n"]))
    return sa_type(field.type, dialect)


def sa_type(typ: pa.DataType, dialect: str) -> Any:
    """The exact SQLAlchemy column type for an Arrow type on a dialect."""
    if pa.types.is_boolean(typ):
        return sa.Boolean()
    if pa.types.is_integer(typ):
        width = typ.bit_width
        if pa.types.is_unsigned_integer(typ):
            width *= 2
        if width <= 16:
            return sa.SmallInteger()
        if width <= 32:
            return sa.Integer()
        if width <= 64:
            return sa.BigInteger()
        return sa.Numeric(20, 0)
    if pa.types.is_floating(typ):
        return sa.Double() if typ.bit_width == 64 else sa.Float()
    if pa.types.is_decimal(typ):
        # SQLite has no exact decimal: keep the digits as text rather than round them into a float
        return sa.Text() if dialect == "sqlite" else sa.Numeric(typ.precision, typ.scale)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return sa.Text()
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return sa.LargeBinary()
    if pa.types.is_timestamp(typ):
        return sa.DateTime(timezone=typ.tz is not None)
    if pa.types.is_date(typ):
        return sa.Date()
    if pa.types.is_time(typ):
        return sa.Time()
    raise TargetSchemaError(f"Arrow type {typ} has no SQL column type; flatten or cast it in a transform")


def fits(existing: Any, incoming: pa.DataType, dialect: str) -> bool:
    """True when a column of reflected type ``existing`` can hold every value of ``incoming``."""
    if isinstance(existing, sa.Text | sa.String) and not isinstance(existing, sa.Enum):
        # text takes anything as text; a length limit is checked by the database on load
        return (
            pa.types.is_string(incoming)
            or pa.types.is_large_string(incoming)
            or dialect == "sqlite"
            or not (pa.types.is_binary(incoming))
        )
    if pa.types.is_boolean(incoming):
        return isinstance(existing, sa.Boolean) or (dialect == "sqlite" and isinstance(existing, sa.Integer))
    if pa.types.is_integer(incoming):
        digits = _INT_DIGITS.get(incoming.bit_width * (2 if pa.types.is_unsigned_integer(incoming) else 1), 39)
        if isinstance(existing, sa.BigInteger):
            return digits <= 19 and not (pa.types.is_uint64(incoming))
        if isinstance(existing, sa.SmallInteger):
            return digits <= 5 and incoming.bit_width <= 16
        if isinstance(existing, sa.Integer):
            return digits <= 10 and incoming.bit_width <= 32 and not pa.types.is_uint32(incoming)
        if isinstance(existing, sa.Numeric) and not isinstance(existing, sa.Float):
            return existing.precision is None or (existing.precision - (existing.scale or 0)) >= digits
        return False
    if pa.types.is_decimal(incoming):
        if isinstance(existing, sa.Numeric) and not isinstance(existing, sa.Float):
            if existing.precision is None:
                return True
            scale = existing.scale or 0
            return scale >= incoming.scale and existing.precision - scale >= incoming.precision - incoming.scale
        return False
    if pa.types.is_floating(incoming):
        return isinstance(existing, sa.Float) or (isinstance(existing, sa.Numeric) and existing.precision is None)
    if pa.types.is_timestamp(incoming):
        return isinstance(existing, sa.DateTime)
    if pa.types.is_date(incoming):
        return isinstance(existing, sa.Date | sa.DateTime)
    if pa.types.is_time(incoming):
        return isinstance(existing, sa.Time)
    if pa.types.is_binary(incoming) or pa.types.is_large_binary(incoming):
        return isinstance(existing, sa.LargeBinary | sa.types._Binary)
    if pa.types.is_string(incoming) or pa.types.is_large_string(incoming):
        return False
    return False


def describe_type(t: Any) -> str:
    """Readable SQL type name."""
    try:
        return str(t.compile())
    except Exception:  # noqa: BLE001 - only for messages
        return type(t).__name__.upper()
