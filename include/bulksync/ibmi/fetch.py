"""Stream a statement's rows straight from the DB-API cursor, a batch at a time.

SQLAlchemy compiles the statement (parameters, dialect quoting); the rows are then fetched from
the driver's own cursor, bypassing SQLAlchemy's row objects: a server-side cursor on PostgreSQL,
an unbuffered cursor on MariaDB (mysqlclient or pymysql), pyodbc's block fetch on an IBM i. Exact numbers arrive as text
wherever the driver allows it (psycopg loader, mysqlclient converter / pymysql decoder, pyodbc output converter), so
Arrow parses them in C++ instead of Python building ``Decimal`` objects one by one.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from bulksync.ibmi.catalog import CatalogColumn
from bulksync.ibmi.sqlgen import Sql

log = logging.getLogger(__name__)


def compile_sql(conn: sa.Connection, sql: Sql) -> tuple[str, Any]:
    """The driver's SQL string and parameters (a tuple for positional paramstyles, else a dict)."""
    compiled = sa.text(sql.text).compile(dialect=conn.dialect)
    params = compiled.construct_params(sql.params)
    positions = getattr(compiled, "positiontup", None)
    if conn.dialect.positional and positions is not None:
        return compiled.string, tuple(params[n] for n in positions)
    return compiled.string, params


def iter_rows(conn: sa.Connection, sql: Sql, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield lists of at most ``batch_size`` row tuples of ``sql``, fetched from the driver's cursor."""
    text, params = compile_sql(conn, sql)
    raw = conn.connection.driver_connection
    module = type(raw).__module__.split(".")[0]
    with _cursor(raw, module) as cur:
        cur.execute(text, params) if params else cur.execute(text)
        while rows := cur.fetchmany(batch_size):
            yield rows


@contextlib.contextmanager
def _cursor(raw: Any, module: str) -> Iterator[Any]:
    if module == "psycopg":
        from psycopg.types.string import TextLoader

        cur = raw.cursor(name=f"bulksync_{uuid.uuid4().hex[:12]}")
        cur.adapters.register_loader("numeric", TextLoader)
        try:
            yield cur
        finally:
            cur.close()
        return
    if module == "pymysql":
        from pymysql.constants import FIELD_TYPE
        from pymysql.cursors import SSCursor

        saved = raw.decoders
        raw.decoders = {**saved, FIELD_TYPE.NEWDECIMAL: str, FIELD_TYPE.DECIMAL: str}
        cur = raw.cursor(SSCursor)
        try:
            yield cur
        finally:
            cur.close()
            raw.decoders = saved
        return
    if module == "MySQLdb":  # mysqlclient, the MySQL provider's default client
        from MySQLdb.constants import FIELD_TYPE as MYSQLDB_TYPE
        from MySQLdb.cursors import SSCursor as MySQLdbSSCursor

        saved = raw.converter
        raw.converter = {**saved, MYSQLDB_TYPE.NEWDECIMAL: str, MYSQLDB_TYPE.DECIMAL: str}
        cur = raw.cursor(MySQLdbSSCursor)
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):  # an abandoned read on a connection already closed
                cur.close()
            raw.converter = saved
        return
    if module == "pyodbc":
        import pyodbc

        for sql_type in (pyodbc.SQL_DECIMAL, pyodbc.SQL_NUMERIC):
            raw.add_output_converter(sql_type, _odbc_text)
        cur = raw.cursor()
        try:
            yield cur
        finally:
            cur.close()
            raw.clear_output_converters()
        return
    cur = raw.cursor()
    try:
        yield cur
    finally:
        cur.close()


def _odbc_text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("ascii")


# -- typing a query's result ------------------------------------------------------------------

_PG_TYPES = {
    16: "BOOLEAN",
    17: "BINARY",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    700: "DOUBLE",
    701: "DOUBLE",
    1042: "CHAR",
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMP",
    1700: "DECIMAL",
}


def describe_query(conn: sa.Connection, query_source: str, dialect: str) -> list[CatalogColumn]:
    """Column types of a query's result, from the driver's cursor description (no rows read).

    Args:
        conn: the open connection.
        query_source: the query as a derived table (``(SELECT …) AS Q``).
        dialect: ``db2i``, ``postgresql``, ``mysql`` or ``sqlite``.
    """
    if dialect == "sqlite":
        view = f"bulksync_q_{uuid.uuid4().hex[:8]}"
        inner = query_source.strip()[1:].rsplit(")", 1)[0]
        conn.exec_driver_sql(f"CREATE TEMP VIEW {view} AS {inner}")
        try:
            from bulksync.ibmi.catalog import _from_sqlalchemy

            return [_from_sqlalchemy(c) for c in sa.inspect(conn).get_columns(view, schema="temp")]
        finally:
            conn.exec_driver_sql(f"DROP VIEW {view}")
    if dialect == "mysql":
        return _described_mysql(conn, query_source)
    desc = conn.exec_driver_sql(f"SELECT * FROM {query_source} WHERE 1 = 0").cursor.description
    return [_described(d, dialect) for d in desc]


def _described_mysql(conn: sa.Connection, query_source: str) -> list[CatalogColumn]:
    """MySQL / MariaDB: the description plus the field flags, so VARBINARY / BLOB columns (binary flag,
    bytes values) are told apart from text (the description alone reports both as strings)."""
    from bulksync.sources.sql import _field_flags
    from bulksync.sources.sql_columns import mysql_needs_sample
    from bulksync.sources.sql_fetch import dbapi_cursor

    raw = conn.connection.driver_connection
    with dbapi_cursor(raw) as cur:
        cur.execute(f"SELECT * FROM {query_source} WHERE 1 = 0")
        desc = cur.description
        flags = _field_flags(cur, len(desc))
        cur.fetchall()
        first: list[Any] = [None] * len(desc)
        if any(mysql_needs_sample(d, f) for d, f in zip(desc, flags, strict=True)):
            cur.execute(f"SELECT * FROM {query_source} LIMIT 1")
            rows = cur.fetchall()
            first = list(rows[0]) if rows else first
    cols = []
    for d, f, v in zip(desc, flags, first, strict=True):
        col = _described(d, "mysql")
        binary = isinstance(v, bytes | bytearray) or (v is None and d[1] in (249, 250, 251, 252) and f & 128)
        if mysql_needs_sample(d, f) and binary:
            col = CatalogColumn(name=col.name, sql_type="BINARY", length=col.length, ccsid=65535)
        cols.append(col)
    return cols


def _described(d: Any, dialect: str) -> CatalogColumn:
    # DB-API description: name, type_code, display_size, internal_size, precision, scale, null_ok
    name, code, _, size, precision, scale = d[:6]
    if dialect == "postgresql":
        kind = _PG_TYPES.get(code, "VARCHAR")
    elif dialect == "mysql":
        from pymysql.constants import FIELD_TYPE as F

        kind = {
            F.NEWDECIMAL: "DECIMAL",
            F.DECIMAL: "DECIMAL",
            F.TINY: "SMALLINT",
            F.SHORT: "SMALLINT",
            F.LONG: "INTEGER",
            F.INT24: "INTEGER",
            F.LONGLONG: "BIGINT",
            F.FLOAT: "DOUBLE",
            F.DOUBLE: "DOUBLE",
            F.DATE: "DATE",
            F.TIME: "TIME",
            F.DATETIME: "TIMESTAMP",
            F.TIMESTAMP: "TIMESTAMP",
            F.STRING: "CHAR",
        }.get(code, "VARCHAR")
        if kind == "DECIMAL" and precision is not None:
            precision = precision - (1 if scale else 0) - 1  # pymysql reports the display length
    else:  # pyodbc: the type code is a Python type
        import datetime as dt
        import decimal

        kind = {
            str: "VARCHAR",
            int: "BIGINT",
            float: "DOUBLE",
            decimal.Decimal: "DECIMAL",
            bytes: "BINARY",
            bytearray: "BINARY",
            dt.date: "DATE",
            dt.datetime: "TIMESTAMP",
            dt.time: "TIME",
            bool: "BOOLEAN",
        }.get(code, "VARCHAR")
    return CatalogColumn(
        name=str(name),
        sql_type=kind,
        length=size,
        precision=precision if kind == "DECIMAL" else None,
        scale=scale if kind == "DECIMAL" else None,
        ccsid=65535 if kind == "BINARY" else None,
    )
