"""The ``sql`` source: a table or query of any SQLAlchemy-reachable database, streamed in batches.

Full extracts read everything; incremental ones read ``[start - overlap, end)`` of the cursor column.
The count and the read run in one read-only snapshot (REPEATABLE READ on PostgreSQL, a consistent
snapshot on MySQL / MariaDB, one deferred transaction on SQLite), so both see the same rows.
Columns are typed from the database's own types (:mod:`bulksync.sources.sql_columns`); rows are
read by :mod:`bulksync.sources.sql_fetch` (``COPY`` on PostgreSQL, the driver's cursor elsewhere).

Every failure is a bulksync error naming the dataset and the table, column or value: a query the
database refuses quotes the user's query (not bulksync's wrapper) with the database's message; a
missing table or column lists the close matches; lost connections and deadlocks are transient.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import itertools
import logging
import re
import uuid
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from bulksync.errors import BulksyncError, ConfigurationError, DataError, SourceConnectionError
from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.sources.base import Source
from bulksync.sources.sql_columns import SqlColumn, mysql_column, mysql_needs_sample, pg_columns, sa_column
from bulksync.sources.sql_fetch import dbapi_batches, dbapi_cursor, pg_copy_batches

log = logging.getLogger(__name__)

_DESCRIBE_PREFIX = "SELECT * FROM ("
_TEMPORAL_ADVICE = (
    "bulksync stages dates and timestamps of years 1 to 9999 (Parquet readers and most targets hold no more); "
    "PostgreSQL's infinity, BC dates and later years must be mapped in a query, e.g. "
    "CASE WHEN isfinite(col) THEN col END, or the column cast to text"
)


class SqlSource(Source):
    """Extract a table or a query through an Airflow connection (see :class:`SqlOptions`)."""

    kind = "sql"
    _dataset: str | None = None

    def bind(self, pipeline: Any, dataset: Any, run_id: str) -> None:
        self._dataset = dataset.name

    @cached_property
    def hook(self) -> SqlAlchemyHook:
        return SqlAlchemyHook(self.spec.conn_id, read_only=True)

    @property
    def dialect(self) -> str:
        return self.hook.dialect

    @property
    def _query(self) -> str:
        """``options.query`` without a trailing semicolon, ending in a newline (so a last ``--`` comment
        cannot swallow what bulksync wraps around it)."""
        return (self.options.query or "").strip().rstrip(";").rstrip() + "\n"

    @property
    def _name(self) -> str:
        return self.options.table or "the query"

    @property
    def _where(self) -> str:
        what = f"table {self.options.table}" if self.options.table else "the query"
        return f"dataset {self._dataset!r} ({what})" if self._dataset else what

    # -- the session -----------------------------------------------------------------------

    @cached_property
    def _conn(self) -> sa.Connection:
        conn = self.hook.connect()
        with self._sql_errors("opening a read-only snapshot"):
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
                conn.exec_driver_sql("SET intervalstyle = 'iso_8601'")
                conn.exec_driver_sql("SET datestyle = 'ISO, YMD'")
                conn.exec_driver_sql("SET extra_float_digits = 3")
            elif self.dialect == "mysql":
                conn.exec_driver_sql("SET time_zone = '+00:00'")
                conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return conn

    @property
    def _raw(self) -> Any:
        return self._conn.connection.driver_connection

    @contextlib.contextmanager
    def _sql_errors(self, doing: str, sent: str | None = None) -> Iterator[None]:
        """Turn a database's refusal into a bulksync error quoting the user's query, not bulksync's SQL."""
        try:
            yield
        except BulksyncError:
            raise
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            raise self._database_error(exc, doing, sent) from None

    def _database_error(self, exc: Exception, doing: str, sent: str | None) -> BulksyncError:
        orig = getattr(exc, "orig", None) or exc
        message = _driver_message(orig, sent, self._query if self.options.query else None)
        if _is_transient(orig):
            return SourceConnectionError(
                f"{self._where}: {doing} failed in {self.hook.describe()}: {message}. This may pass by itself: "
                "the task is retried"
            )
        if self.options.query:
            return ConfigurationError(
                f"{self._where}: the database refused the query ({message}). The query: {_abbrev(self.options.query)} "
                "- fix options.query in the spec (run it in a SQL client of the database to check it)"
            )
        return ConfigurationError(
            f"{self._where}: {doing} failed in {self.hook.describe()}: {message}. Check options.table and columns "
            "and that the connection's user may read them"
        )

    def _problem(self, col: SqlColumn, value: Any, reason: str) -> DataError:
        """The error of a value that cannot be staged as its column's type."""
        if pa.types.is_temporal(col.type) and not pa.types.is_time(col.type):
            advice = _TEMPORAL_ADVICE
        elif pa.types.is_decimal(col.type):
            advice = "a decimal holds no NaN or infinity and no more digits than declared: cast the column in a query"
        else:
            advice = "fix the value in the source, or cast the column in a query (options.query)"
        shown = value if value is None or len(repr(value)) < 200 else f"{str(value)[:200]}…"
        return DataError(f"{self._where}, column {col.name!r} ({col.sql_type}): value {shown!r} {reason}. {advice}")

    # -- typing ----------------------------------------------------------------------------

    @cached_property
    def _all_columns(self) -> list[SqlColumn]:
        """Every column of the table or query, typed (no rows read)."""
        cols = self._table_columns() if self.options.table else self._query_columns()
        names = [c.name for c in cols]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(
                f"{self._where} returns columns named {', '.join(map(repr, dupes))} more than once: give each its own "
                "name with AS in the query"
            )
        if self.dialect == "postgresql" and any(c.sql_type == "numeric" and c.note for c in cols):
            cols = self._fit_unbounded(cols)
        for c in cols:
            if c.note:
                log.warning("%s, column %s (%s): %s", self._where, c.name, c.sql_type, c.note)
        return cols

    def _fit_unbounded(self, cols: list[SqlColumn]) -> list[SqlColumn]:
        """PostgreSQL numerics without precision: the widest exact decimal their values in the window fit.

        One aggregate in the snapshot finds the largest scale and integer part: decimal128(38, s) with
        s = max(10, largest scale) when the digits fit, decimal256(76, s) when those fit, else (and
        with NaN or infinity) the text of every value.
        """
        import dataclasses

        from bulksync.sources.sql_columns import UNBOUNDED_NOTE

        unbounded = [c for c in cols if c.sql_type == "numeric" and c.note]
        src = self._from_of(cols)
        aggregates = []
        for c in unbounded:
            col = src.c[c.name]
            special = sa.cast(col, sa.Text).in_(["NaN", "Infinity", "-Infinity"])
            finite = sa.func.coalesce(sa.not_(special), True)
            aggregates += [
                sa.func.bool_or(special),
                sa.func.max(sa.func.scale(col)).filter(finite),
                sa.func.max(sa.func.length(sa.cast(sa.func.trunc(sa.func.abs(col)), sa.Text))).filter(finite),
            ]
        sql, params = self._compiled(self._windowed(sa.select(*aggregates).select_from(src), src, cols))
        with self._sql_errors("measuring the numeric columns without precision"), self._raw.cursor() as cur:
            cur.execute(sql, params)
            found = cur.fetchone()
        fitted = {}
        for i, c in enumerate(unbounded):
            special, scale, digits = found[3 * i], found[3 * i + 1] or 0, found[3 * i + 2] or 1
            s = max(10, int(scale))
            if special or digits + s > 76:
                fitted[c.name] = dataclasses.replace(
                    c, note=UNBOUNDED_NOTE + " (values with NaN, infinity or over 76 digits)"
                )
                continue
            typ = pa.decimal128(38, s) if digits + s <= 38 else pa.decimal256(76, s)
            log.info("%s, column %s (numeric): values fit %s", self._where, c.name, typ)
            fitted[c.name] = dataclasses.replace(c, type=typ, kind="plain", note=None)
        return [fitted.get(c.name, c) for c in cols]

    def _table_columns(self) -> list[SqlColumn]:
        schema, _, name = (self.options.table or "").rpartition(".")
        if self.dialect == "postgresql":
            quoted = self._quoted_table(schema, name)
            try:
                return self._describe_pg(f"SELECT * FROM {quoted} LIMIT 0", None)
            except ConfigurationError:
                self._conn.rollback()
                self._check_table(schema, name)
                raise
        self._check_table(schema, name)
        with self._sql_errors("reading the table's columns"):
            table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=self._conn)
        return [self._typed(sa_column(c.name, c.type, self.dialect, self._conn.dialect)) for c in table.columns]

    def _quoted_table(self, schema: str, name: str) -> str:
        q = self._conn.dialect.identifier_preparer.quote
        return f"{q(schema)}.{q(name)}" if schema else q(name)

    def _check_table(self, schema: str, name: str) -> None:
        """Refuse a table that does not exist, listing the close matches."""
        inspector = sa.inspect(self._conn)
        with self._sql_errors("looking the table up"):
            if inspector.has_table(name, schema=schema or None):
                return
            known = [
                *inspector.get_table_names(schema=schema or None),
                *inspector.get_view_names(schema=schema or None),
            ]
        where = f"schema {schema!r}" if schema else "the default schema"
        raise ConfigurationError(
            f"{self._where}: table {self.options.table!r} does not exist in {self.hook.describe()} ({where}, or the "
            f"user cannot see it){_close(name, known)}. Fix options.table (schema.table)"
        )

    def _typed(self, col: SqlColumn) -> SqlColumn:
        """Dialect rules over the generic reflected typing (64-bit SQLite integers, MySQL's UTC TIMESTAMP …)."""
        import dataclasses

        from sqlalchemy.dialects import mysql

        typ, kind = col.type, col.kind
        if self.dialect == "sqlite" and typ in (pa.int8(), pa.int16(), pa.int32()):
            typ = pa.int64()  # SQLite integers are 64-bit whatever the declared name
        if self.dialect == "sqlite" and pa.types.is_float32(typ):
            typ = pa.float64()  # SQLite REAL is 8 bytes
        if self.dialect == "mysql":
            if isinstance(col.sa_type, mysql.TIMESTAMP):
                typ = pa.timestamp("us", tz="UTC")  # stored in UTC; the session reads it in UTC
            if isinstance(col.sa_type, mysql.BIT):
                kind = "bits"
            elif pa.types.is_boolean(typ):
                kind = "bool01"
            elif pa.types.is_time(typ):
                kind = "time"
            elif pa.types.is_temporal(typ):
                kind = "temporal"
            elif pa.types.is_binary(typ):
                kind = "plain"
        return dataclasses.replace(col, type=typ, kind=kind)

    def _query_columns(self) -> list[SqlColumn]:
        query = self._query
        sent = f"{_DESCRIBE_PREFIX}{query}) AS q LIMIT 0"
        if self.dialect == "postgresql":
            return self._describe_pg(sent, query)
        if self.dialect == "mysql":
            return self._describe_mysql(query)
        if self.dialect == "sqlite":
            view = f"bulksync_q_{uuid.uuid4().hex[:10]}"
            with self._sql_errors("reading the query's columns", sent):
                self._conn.exec_driver_sql(f"CREATE TEMP VIEW {view} AS {query}")
                try:
                    cols = sa.inspect(self._conn).get_columns(view, schema="temp")
                finally:
                    self._conn.exec_driver_sql(f"DROP VIEW temp.{view}")
            return [self._typed(sa_column(c["name"], c["type"], "sqlite", self._conn.dialect)) for c in cols]
        return self._inferred_columns()

    def _describe_pg(self, sent: str, query: str | None) -> list[SqlColumn]:
        with self._sql_errors("reading the columns", sent), self._raw.cursor() as cur:
            cur.execute(sent)
            desc = cur.description
            oids = sorted({d[1] for d in desc})
            cur.execute("SELECT oid::bigint, format_type(oid, NULL) FROM pg_type WHERE oid = ANY(%s)", [oids])
            names = {int(o): str(n) for o, n in cur.fetchall()}
        return pg_columns(desc, names)

    def _describe_mysql(self, query: str) -> list[SqlColumn]:
        sent = f"{_DESCRIBE_PREFIX}{query}) AS q LIMIT 0"
        with self._sql_errors("reading the query's columns", sent), dbapi_cursor(self._raw) as cur:
            cur.execute(sent)
            desc = cur.description
            flags = _field_flags(cur, len(desc))
            cur.fetchall()
            sample: list[Any] = []
            if any(mysql_needs_sample(d, f) for d, f in zip(desc, flags, strict=True)):
                cur.execute(f"{_DESCRIBE_PREFIX}{query}) AS q LIMIT 1")
                sample = list(cur.fetchall()[:1] or [])
        first = sample[0] if sample else [None] * len(desc)
        return [
            mysql_column(d, f, None if v is None else isinstance(v, bytes | bytearray))
            for d, f, v in zip(desc, flags, first, strict=True)
        ]

    def _inferred_columns(self) -> list[SqlColumn]:
        """Other databases' queries: typed from the first rows (the driver describes no types we know)."""
        stmt = sa.select(sa.text("*")).select_from(sa.text(f"({self._query}) AS q")).limit(1000)
        with self._sql_errors("reading the query's first rows"):
            result = self._conn.execute(stmt)
            names, rows = list(result.keys()), result.fetchall()
        cols = []
        for i, name in enumerate(names):
            arr = pa.array([r[i] for r in rows])
            typ = pa.string() if pa.types.is_null(arr.type) else arr.type
            cols.append(SqlColumn(name, typ, str(typ), kind="text" if pa.types.is_string(typ) else "plain"))
        return cols

    @cached_property
    def _columns(self) -> list[SqlColumn]:
        """The columns read (``options.columns`` of them, in that order)."""
        cols = self._all_columns
        if self.options.columns:
            known = {c.name: c for c in cols}
            for name in self.options.columns:
                self._require(name, "options.columns")
            cols = [known[c] for c in self.options.columns]
        if self.options.cursor_field:
            self._require(self.options.cursor_field, "cursor_field")
        return cols

    def _require(self, name: str, what: str, columns: list[SqlColumn] | None = None) -> None:
        names = [c.name for c in (self._all_columns if columns is None else columns)]
        if name not in names:
            raise ConfigurationError(
                f"{self._where}: {what} names {name!r}, which is not a column{_close(name, names)}. "
                f"Its columns: {', '.join(names)}"
            )

    def schema(self) -> pa.Schema:
        return pa.schema([c.field for c in self._columns])

    # -- the statement ---------------------------------------------------------------------

    @cached_property
    def _from(self) -> sa.FromClause:
        return self._from_of(self._all_columns)

    def _from_of(self, columns: list[SqlColumn]) -> sa.FromClause:
        cols = [sa.column(c.name, c.sa_type) for c in columns]
        if self.options.table:
            schema, _, name = self.options.table.rpartition(".")
            return sa.table(name, *cols, schema=schema or None)
        return sa.text(self._query).columns(*cols).subquery("q")

    def _statement(self, chunk: dict[str, Any] | None) -> sa.Select[Any]:
        src = self._from
        exprs: list[Any] = []
        for c in self._columns:
            col = src.c[c.name]
            if c.cast:
                quoted = col.compile(dialect=self._conn.dialect).string
                exprs.append(sa.literal_column(c.cast.format(quoted)).label(c.name))
            else:
                exprs.append(col)
        stmt = self._windowed(sa.select(*exprs).select_from(src), src, self._all_columns)
        if chunk:
            stmt = stmt.where(_chunk_predicate(src.c[self._chunk_column().name], chunk))
        return stmt

    def _windowed(self, stmt: sa.Select[Any], src: sa.FromClause, columns: list[SqlColumn]) -> sa.Select[Any]:
        """``stmt`` limited to the window of the cursor column (incremental extracts)."""
        cursor = self.options.cursor_field
        if not (self.options.incremental and cursor):
            return stmt
        self._require(cursor, "cursor_field", columns)
        col = src.c[cursor]
        typed = next(c for c in columns if c.name == cursor)
        naive = self.dialect in ("mysql", "sqlite") or getattr(typed.type, "tz", None) is None
        window = self.window.widened(self.options.overlap_minutes)
        if window.start is not None:
            stmt = stmt.where(col >= _bound(window.start, naive))
        if window.end is not None:
            stmt = stmt.where(col < _bound(window.end, naive))
        return stmt

    def _compiled(self, stmt: sa.Select[Any]) -> tuple[str, Any]:
        """The driver's SQL and parameters of a statement (bind processors applied, e.g. SQLite datetimes)."""
        dialect = self._conn.dialect
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params = dict(compiled.construct_params())
        for name, value in params.items():
            bind = compiled.binds.get(name)
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect) if bind is not None else None
            if proc is not None:
                params[name] = proc(value)
        positions = getattr(compiled, "positiontup", None)
        if dialect.positional and positions is not None:
            return compiled.string, tuple(params[n] for n in positions)
        return compiled.string, params

    # -- chunks ----------------------------------------------------------------------------

    def _chunk_column(self) -> SqlColumn:
        chunking = self.options.chunking
        assert chunking is not None
        self._require(chunking.column, "chunking.column")
        col = next(c for c in self._all_columns if c.name == chunking.column)
        integral = pa.types.is_integer(col.type) or (pa.types.is_decimal(col.type) and col.type.scale == 0)
        if not integral:
            raise ConfigurationError(
                f"{self._where}: chunking column {chunking.column!r} is {col.sql_type}, not an integer: key ranges "
                "need an integer column (ideally the indexed primary key); pick another column or remove 'chunking'"
            )
        return col

    def plan_chunks(self) -> list[dict[str, Any]]:
        """``chunks`` equal-width ranges ``[lo, hi)`` of the chunking column between its minimum and
        maximum in the window; NULL keys go to the first range, so the union is the whole extract."""
        chunking = self.options.chunking
        if chunking is None:
            return [{}]
        col = self._chunk_column()
        sql, params = self._compiled(self._statement(None))
        quoted = self._conn.dialect.identifier_preparer.quote(col.name)
        with self._sql_errors("planning the chunks"):
            cur = self._raw.cursor()
            cur.execute(f"SELECT min({quoted}), max({quoted}) FROM ({sql}) AS q", params)
            lo, hi = cur.fetchone()
            cur.close()
        if lo is None:
            log.info("%s: no rows in window %s, one chunk", self._name, self.window.key)
            return [{}]
        lo, hi = int(lo), int(hi) + 1
        width = max(1, -(-(hi - lo) // chunking.chunks))
        bounds = [*range(lo, hi, width), hi]
        chunks = [{"lo": a, "hi": b, "nulls": i == 0} for i, (a, b) in enumerate(itertools.pairwise(bounds))]
        log.info("%s: %d chunks of %s in [%d, %d), %d keys wide", self._name, len(chunks), col.name, lo, hi, width)
        return chunks

    # -- the contract ----------------------------------------------------------------------

    def source_count(self) -> int | None:
        sql, params = self._compiled(self._statement(self.chunk))
        with self._sql_errors("counting the rows"):
            cur = self._raw.cursor()
            cur.execute(f"SELECT count(*) FROM ({sql}) AS q", params)
            count = int(cur.fetchone()[0])
            cur.close()
        log.info("%s reports %d rows for window %s", self._name, count, self.window.key)
        return count

    def read(self) -> Iterator[pa.RecordBatch]:
        columns = self._columns
        sql, params = self._compiled(self._statement(self.chunk))
        size = self.options.batch_size
        rows = 0
        with self._sql_errors("reading the rows"):
            if self.dialect == "postgresql" and type(self._raw).__module__.startswith("psycopg"):
                for batch in pg_copy_batches(self._raw, sql, params, columns, size, self._problem):
                    rows += batch.num_rows
                    yield batch
            else:
                with dbapi_cursor(self._raw) as cur:
                    cur.execute(sql, params)
                    for batch, _ in dbapi_batches(cur, columns, size, self._problem):
                        rows += batch.num_rows
                        yield batch
        log.info("%s: read %d rows for window %s", self._name, rows, self.window.key)

    def close(self) -> None:
        if "_conn" in self.__dict__:
            with contextlib.suppress(Exception):
                self._conn.rollback()
            with contextlib.suppress(Exception):
                self._conn.close()
        if "hook" in self.__dict__ and "engine" in self.hook.__dict__:
            self.hook.engine.dispose()


# -- helpers -----------------------------------------------------------------------------------


def _field_flags(cur: Any, n: int) -> list[int]:
    """MySQL field flags of the last result (UNSIGNED, BINARY, SET …), from the driver's result object."""
    result = getattr(cur, "_result", None)
    if result is not None and hasattr(result, "field_flags"):  # mysqlclient
        return [int(f) for f in result.field_flags()]
    if result is not None and hasattr(result, "fields"):  # pymysql
        return [int(f.flags) for f in result.fields]
    return [0] * n


def _is_database_error(exc: Exception) -> bool:
    if isinstance(exc, sa.exc.DBAPIError | sa.exc.NoSuchTableError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in ("psycopg", "MySQLdb", "pymysql", "sqlite3", "pyodbc", "mysql") and isinstance(exc, Exception)


def _is_transient(orig: Any) -> bool:
    """Lost connections, deadlocks, serialisation failures, cancelled statements and locked SQLite files."""
    state = str(getattr(orig, "sqlstate", "") or getattr(getattr(orig, "diag", None), "sqlstate", "") or "")
    if state:  # connection exception, transaction rollback, insufficient resources, operator intervention
        return state[:2] in ("08", "40", "53", "57")
    code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
    if code is not None:
        return code in (1205, 1213, 2002, 2003, 2006, 2013, 2055)
    text = str(orig).lower()
    return "database is locked" in text or "server closed the connection" in text


def _driver_message(orig: Any, sent: str | None, query: str | None) -> str:
    """The database's message, its first line, positions and snippets moved from bulksync's SQL to the query."""
    diag = getattr(orig, "diag", None)
    text = (getattr(diag, "message_primary", None) or str(orig)).strip().splitlines()[0]
    if isinstance(getattr(orig, "args", None), tuple) and len(orig.args) == 2 and isinstance(orig.args[0], int):
        text = f"{orig.args[1]} (error {orig.args[0]})"
    position = getattr(diag, "statement_position", None)
    if position and sent and query and sent.startswith(_DESCRIBE_PREFIX):
        at = int(position) - len(_DESCRIBE_PREFIX) - 1
        if 0 <= at <= len(query):
            line = query.count("\n", 0, at) + 1
            column = at - (query.rfind("\n", 0, at) + 1) + 1
            text += f" at line {line}, character {column} of the query"
    for wrapper in (") AS q LIMIT 0", ") AS q LIMIT 1", ") AS q"):
        text = text.replace(wrapper, "")
    return text


def _abbrev(query: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", query).strip()
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def _close(name: str, known: list[str]) -> str:
    lower = {k.lower(): k for k in known}
    matches = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(lower[m]) for m in matches)}?" if matches else ""


def _chunk_predicate(col: sa.ColumnElement[Any], chunk: dict[str, Any]) -> sa.ColumnElement[bool]:
    in_range = sa.and_(col >= chunk["lo"], col < chunk["hi"])
    return sa.or_(col.is_(None), in_range) if chunk.get("nulls") else in_range


def _bound(value: dt.datetime, naive: bool) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if naive else value
