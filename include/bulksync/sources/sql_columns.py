"""Typing the columns of a ``sql`` source: the database's own type of each column to an exact Arrow type.

Every column gets a :class:`SqlColumn`: its staged Arrow type, how its values are converted on the
way (``kind``), and the database's type name (kept in the Parquet field's metadata as
``bulksync.sql_type``). Nothing is guessed from values and nothing is rounded: a type with no exact
Arrow counterpart is staged as its database text, which loads back into the same database exactly.

=============================  ==================================================================
PostgreSQL                     staged as
=============================  ==================================================================
json, jsonb, xml               string (the database's text: jsonb in its canonical form)
uuid, inet, cidr, macaddr      string
numeric without precision      string (every digit kept, NaN included; declare numeric(p,s) or
                               cast in a query to stage a decimal)
numeric(p,s)                   decimal128(p,s) (decimal256 above 38 digits)
money                          decimal128(19,2) (read as numeric, so the locale does not matter)
interval                       string, ISO 8601 (``P1Y2M3DT4H5M6S``)
time / timetz                  time64[us] / string (``12:00:00+02``)
bit, varbit                    string of 0s and 1s
arrays, enums, ranges, …       string (PostgreSQL's text form, e.g. ``{1,2,NULL}``)
domains                        their base type (the server reports it)
=============================  ==================================================================

MySQL / MariaDB: ``UNSIGNED`` integers to the unsigned Arrow integer of their width (``BIGINT
UNSIGNED`` to uint64), ``TINYINT(1)`` (what ``BOOLEAN`` is stored as) to bool, ``YEAR`` to int16,
``SET`` / ``ENUM`` / ``JSON`` / ``UUID`` to string, ``BIT(n)`` to a string of n bits, ``VARBINARY`` /
``BLOB`` to binary, ``TIMESTAMP`` to UTC timestamps (the session runs in UTC) and ``DATETIME`` to
naive ones. SQLite and other databases are typed from their declared (reflected) types, see
:func:`bulksync.arrow_types.arrow_from_sqlalchemy` (SQL Server: ``datetimeoffset`` to UTC
timestamps, ``uniqueidentifier`` to string, ``money`` to decimal128(19,4)).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pyarrow as pa

from bulksync.arrow_types import arrow_from_sqlalchemy, sql_type_name

log = logging.getLogger(__name__)

UNBOUNDED_NOTE = (
    "numeric without precision: staged as text to keep every digit; declare numeric(p,s) in the database "
    "or cast it in a query (CAST(x AS numeric(38,10))) to stage a decimal"
)


@dataclasses.dataclass(frozen=True)
class SqlColumn:
    """One column of a ``sql`` source as staged.

    Attributes:
        name: the column name as the database reports it.
        type: the staged Arrow type.
        sql_type: the database's type name (for messages and the field's metadata).
        kind: how values are converted: ``plain`` (the driver's values as they are), ``text``
            (anything to its text), ``bool01`` (0/1 integers), ``bits`` (MySQL BIT bytes),
            ``hex`` (PostgreSQL bytea text), ``time`` (MySQL TIME), ``json`` (parsed JSON to text).
        cast: PostgreSQL only: the SQL expression read instead of the column (``{}`` is the column).
        note: why the column is staged as it is, when a user may not expect it.
        sa_type: the SQLAlchemy type (binds window bounds the way the driver stores values).
    """

    name: str
    type: pa.DataType
    sql_type: str
    kind: str = "plain"
    cast: str | None = None
    note: str | None = None
    sa_type: Any = None

    @property
    def field(self) -> pa.Field:
        """The staged Arrow field, with the database type (and note) in its metadata."""
        meta = {"bulksync.sql_type": self.sql_type}
        if self.note:
            meta["bulksync.note"] = self.note
        return pa.field(self.name, self.type, metadata=meta)


# -- PostgreSQL: from the result description (type OIDs; domains arrive as their base type) ------

_PG: dict[int, tuple[pa.DataType, str, str | None]] = {
    16: (pa.bool_(), "boolean", None),
    17: (pa.binary(), "bytea", None),
    20: (pa.int64(), "bigint", None),
    21: (pa.int16(), "smallint", None),
    23: (pa.int32(), "integer", None),
    26: (pa.int64(), "oid", None),
    700: (pa.float32(), "real", None),
    701: (pa.float64(), "double precision", None),
    790: (pa.decimal128(19, 2), "money", "{}::numeric"),
    1082: (pa.date32(), "date", None),
    1083: (pa.time64("us"), "time", None),
    1114: (pa.timestamp("us"), "timestamp", None),
    1184: (pa.timestamp("us", tz="UTC"), "timestamptz", None),
}
_PG_NUMERIC = 1700


def pg_columns(description: Any, type_names: dict[int, str]) -> list[SqlColumn]:
    """Columns of a PostgreSQL result from its DB-API description.

    Args:
        description: ``cursor.description`` of the statement (``LIMIT 0`` is enough).
        type_names: ``format_type`` of each type OID, for the metadata of text-staged columns.
    """
    cols = []
    for d in description:
        name, oid, precision, scale = d[0], d[1], d[4], d[5]
        if oid == _PG_NUMERIC:
            if precision:
                typ = pa.decimal128(precision, scale or 0) if precision <= 38 else pa.decimal256(precision, scale or 0)
                cols.append(SqlColumn(name, typ, f"numeric({precision},{scale or 0})"))
            else:
                cols.append(SqlColumn(name, pa.string(), "numeric", note=UNBOUNDED_NOTE))
            continue
        if oid in _PG:
            typ, sql_type, cast = _PG[oid]
            cols.append(SqlColumn(name, typ, sql_type, kind="hex" if oid == 17 else "plain", cast=cast))
            continue
        sql_type = type_names.get(oid, f"oid {oid}")
        if oid in (1042, 1043) and d[2]:  # char(n) / varchar(n): the length, so a created table keeps it
            sql_type = f"{sql_type}({d[2]})"
        cols.append(SqlColumn(name, pa.string(), sql_type, kind="text"))
    return cols


# -- MySQL / MariaDB: from the result description and the field flags -----------------------------

# MySQL protocol field types (MySQLdb.constants.FIELD_TYPE, pymysql.constants.FIELD_TYPE)
_DECIMAL, _TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _TIMESTAMP, _LONGLONG, _INT24 = 0, 1, 2, 3, 4, 5, 7, 8, 9
_DATE, _TIME, _DATETIME, _YEAR, _NEWDATE, _VARCHAR, _BIT, _JSON, _NEWDECIMAL = 10, 11, 12, 13, 14, 15, 16, 245, 246
_ENUM, _SET, _BLOBS, _VAR_STRING, _STRING = 247, 248, (249, 250, 251, 252), 253, 254
_UNSIGNED, _BINARY, _ENUM_FLAG, _SET_FLAG = 32, 128, 256, 2048
_MYSQL_INTS = {
    _TINY: (pa.int8(), pa.uint8(), "tinyint"),
    _SHORT: (pa.int16(), pa.uint16(), "smallint"),
    _INT24: (pa.int32(), pa.uint32(), "mediumint"),
    _LONG: (pa.int32(), pa.uint32(), "int"),
    _LONGLONG: (pa.int64(), pa.uint64(), "bigint"),
}


def mysql_column(d: Any, flags: int, binary: bool | None) -> SqlColumn:
    """One column of a MySQL / MariaDB result.

    Args:
        d: its entry of ``cursor.description``.
        flags: its field flags (``UNSIGNED``, ``BINARY``, ``SET`` …).
        binary: for a string type with the BINARY flag: whether its values are bytes (VARBINARY,
            BLOB) rather than text in a binary collation, ``None`` when unknown.
    """
    name, code, _, size, _precision, scale = d[:6]
    if code in _MYSQL_INTS:
        signed, unsigned, sql = _MYSQL_INTS[code]
        if flags & _UNSIGNED:
            return SqlColumn(name, unsigned, f"{sql} unsigned")
        if code == _TINY and size == 1:
            return SqlColumn(name, pa.bool_(), "tinyint(1)", kind="bool01")
        return SqlColumn(name, signed, sql)
    if code in (_DECIMAL, _NEWDECIMAL):
        digits = (size or 0) - (1 if scale else 0) - (0 if flags & _UNSIGNED else 1)  # display length → digits
        digits = max(digits, 1, scale or 0)
        typ = pa.decimal128(digits, scale or 0) if digits <= 38 else pa.decimal256(digits, scale or 0)
        return SqlColumn(name, typ, f"decimal({digits},{scale or 0})", kind="decimal")
    if code == _FLOAT:
        return SqlColumn(name, pa.float32(), "float")
    if code == _DOUBLE:
        return SqlColumn(name, pa.float64(), "double")
    if code == _TIMESTAMP:
        return SqlColumn(name, pa.timestamp("us", tz="UTC"), "timestamp", kind="temporal")
    if code == _DATETIME:
        return SqlColumn(name, pa.timestamp("us"), "datetime", kind="temporal")
    if code in (_DATE, _NEWDATE):
        return SqlColumn(name, pa.date32(), "date", kind="temporal")
    if code == _TIME:
        return SqlColumn(name, pa.time64("us"), "time", kind="time")
    if code == _YEAR:
        return SqlColumn(name, pa.int16(), "year")
    if code == _BIT:
        return SqlColumn(name, pa.string(), f"bit({size})", kind="bits")
    if code == _JSON:
        return SqlColumn(name, pa.string(), "json", kind="text")
    if code in (_ENUM, _SET) or flags & (_ENUM_FLAG | _SET_FLAG):
        return SqlColumn(name, pa.string(), "set" if code == _SET or flags & _SET_FLAG else "enum")
    if code in (*_BLOBS, _VAR_STRING, _STRING, _VARCHAR):
        if flags & _BINARY and binary is not False:
            return SqlColumn(name, pa.binary(), "varbinary" if code != _STRING else "binary")
        return SqlColumn(name, pa.string(), "text" if code in _BLOBS else "varchar", kind="text")
    return SqlColumn(name, pa.string(), f"type {code}", kind="text")


def mysql_needs_sample(d: Any, flags: int) -> bool:
    """True for a string column with the BINARY flag: bytes or text in a binary collation (see a value)."""
    return bool(flags & _BINARY) and d[1] in (*_BLOBS, _VAR_STRING, _STRING, _VARCHAR)


# -- SQLite and the rest: from reflected SQLAlchemy types ----------------------------------------


def sa_column(name: str, sa_type: Any, dialect: str, dialect_impl: Any = None) -> SqlColumn:
    """A column typed from its reflected SQLAlchemy type (SQLite, SQL Server and other dialects)."""
    import sqlalchemy as sa

    typ = arrow_from_sqlalchemy(sa_type)
    sql_type = sql_type_name(sa_type, dialect_impl)
    note, kind = None, "plain"
    if isinstance(sa_type, sa.JSON):
        kind = "json"
    elif isinstance(sa_type, sa.Numeric) and not isinstance(sa_type, sa.Float) and sa_type.precision is None:
        kind, note = "text", UNBOUNDED_NOTE
    elif pa.types.is_string(typ):
        kind = "text"
    elif dialect == "sqlite" and pa.types.is_boolean(typ):
        kind = "bool01"
    elif dialect == "sqlite" and pa.types.is_temporal(typ):
        kind = "temporal"
    elif pa.types.is_decimal(typ):
        kind = "decimal"
    return SqlColumn(name, typ, sql_type, kind=kind, note=note, sa_type=sa_type)
