"""The ``sql`` source: a table or query of any SQLAlchemy-reachable database, streamed in batches.

Full extracts read everything; incremental ones read ``[start - overlap, end)`` of the cursor column.
The count and the read run in one read-only transaction (REPEATABLE READ on PostgreSQL, so both
see the same snapshot). Rows stream through a server-side cursor, ``batch_size`` at a time, and
become Arrow batches typed from the database's own column types.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from bulksync.arrow_types import arrow_from_sqlalchemy
from bulksync.errors import ConfigurationError, DataError
from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.sources.base import Source

log = logging.getLogger(__name__)


class SqlSource(Source):
    """Extract a table or a query through an Airflow connection (see :class:`SqlOptions`)."""

    kind = "sql"

    @cached_property
    def hook(self) -> SqlAlchemyHook:
        return SqlAlchemyHook(self.spec.conn_id, read_only=True)

    @cached_property
    def _conn(self) -> sa.Connection:
        conn = self.hook.connect()
        if self.hook.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        return conn

    @cached_property
    def _selectable(self) -> sa.FromClause:
        opts = self.options
        if opts.table:
            schema, _, name = opts.table.rpartition(".")
            try:
                return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=self._conn)
            except sa.exc.NoSuchTableError:
                raise ConfigurationError(
                    f"table {opts.table!r} does not exist in {self.hook.describe()} (or the user cannot see it)"
                ) from None
        return self._query_view()

    def _query_view(self) -> sa.FromClause:
        """Type a query: from the driver's column description on PostgreSQL (no DDL needed in the
        read-only snapshot), from a temporary view on SQLite, else from the first rows."""
        query = self.options.query
        if self.hook.dialect == "postgresql":
            desc = self._conn.exec_driver_sql(f"SELECT * FROM ({query}) AS q LIMIT 0").cursor.description
            # DB-API description: name, type_code, display_size, internal_size, precision, scale, null_ok
            cols = [sa.column(d[0], _pg_type(d[1], d[4], d[5])) for d in desc]
            return sa.text(query).columns(*cols).subquery("q")
        if self.hook.dialect == "sqlite":
            view = "bulksync_query_view"
            self._conn.exec_driver_sql(f"CREATE TEMP VIEW IF NOT EXISTS {view} AS {query}")
            return sa.Table(view, sa.MetaData(), schema="temp", autoload_with=self._conn)
        return sa.text(query).columns().subquery("q")  # typed from the first rows

    @cached_property
    def _statement(self) -> sa.Select[Any]:
        src = self._selectable
        cols = list(src.columns)
        if self.options.columns:
            known = {c.name: c for c in cols}
            missing = [c for c in self.options.columns if c not in known]
            if missing:
                raise ConfigurationError(f"columns {missing} not found in {self._name}; it has {sorted(known)}")
            cols = [known[c] for c in self.options.columns]
        stmt = sa.select(*cols) if cols else sa.select(sa.text("*")).select_from(src)
        cursor = self.options.cursor_field
        if self.options.incremental and cursor:
            if cursor not in src.columns:
                raise ConfigurationError(f"cursor_field {cursor!r} is not a column of {self._name}")
            col = src.columns[cursor]
            window = self.window.widened(self.options.overlap_minutes)
            naive = isinstance(col.type, sa.DateTime) and not col.type.timezone
            if window.start is not None:
                stmt = stmt.where(col >= _bound(window.start, naive))
            if window.end is not None:
                stmt = stmt.where(col < _bound(window.end, naive))
        if self.chunk:
            stmt = stmt.where(_chunk_predicate(self._chunk_column(src), self.chunk))
        return stmt

    def _chunk_column(self, src: sa.FromClause) -> sa.ColumnElement[Any]:
        chunking = self.options.chunking
        assert chunking is not None
        if chunking.column not in src.columns:
            raise ConfigurationError(
                f"chunking column {chunking.column!r} is not a column of {self._name}; "
                f"it has {sorted(src.columns.keys())}"
            )
        col = src.columns[chunking.column]
        typ = col.type
        integral = isinstance(typ, sa.Integer) or (isinstance(typ, sa.Numeric) and getattr(typ, "scale", None) == 0)
        if not integral:
            raise ConfigurationError(
                f"chunking column {chunking.column!r} of {self._name} is {typ}, not an integer: key ranges need an "
                "integer column (ideally the indexed primary key); pick another column or remove 'chunking'"
            )
        return col

    def plan_chunks(self) -> list[dict[str, Any]]:
        """``chunks`` equal-width ranges ``[lo, hi)`` of the chunking column between its minimum and
        maximum in the window; NULL keys go to the first range, so the union is the whole extract."""
        chunking = self.options.chunking
        if chunking is None:
            return [{}]
        col = self._chunk_column(self._selectable)
        sub = self._statement.subquery()
        lo, hi = self._conn.execute(sa.select(sa.func.min(sub.c[col.name]), sa.func.max(sub.c[col.name]))).one()
        if lo is None:
            log.info("%s: no rows in window %s, one chunk", self._name, self.window.key)
            return [{}]
        lo, hi = int(lo), int(hi) + 1
        width = max(1, -(-(hi - lo) // chunking.chunks))
        bounds = [*range(lo, hi, width), hi]
        chunks = [{"lo": a, "hi": b, "nulls": i == 0} for i, (a, b) in enumerate(itertools.pairwise(bounds))]
        log.info("%s: %d chunks of %s in [%d, %d), %d keys wide", self._name, len(chunks), col.name, lo, hi, width)
        return chunks

    @property
    def _name(self) -> str:
        return self.options.table or "the query"

    def schema(self) -> pa.Schema:
        cols = self._statement.selected_columns
        if any(isinstance(c.type, sa.types.NullType) for c in cols):
            return self._inferred_schema
        return pa.schema([pa.field(c.name, arrow_from_sqlalchemy(c.type)) for c in cols])

    @cached_property
    def _inferred_schema(self) -> pa.Schema:
        stmt = self._statement.limit(1000)
        rows = self._conn.execute(stmt).fetchall()
        names = list(self._statement.selected_columns.keys())
        fields = []
        for i, name in enumerate(names):
            arr = pa.array([r[i] for r in rows])
            fields.append(pa.field(name, pa.string() if pa.types.is_null(arr.type) else arr.type))
        return pa.schema(fields)

    def source_count(self) -> int | None:
        stmt = sa.select(sa.func.count()).select_from(self._statement.subquery())
        count = int(self._conn.execute(stmt).scalar_one())
        log.info("%s reports %d rows for window %s", self._name, count, self.window.key)
        return count

    def read(self) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        size = self.options.batch_size
        result = self._conn.execution_options(stream_results=True, yield_per=size).execute(self._statement)
        offset = 0
        for rows in result.partitions(size):
            columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
            arrays = []
            for field, values in zip(schema, columns, strict=True):
                try:
                    arrays.append(pa.array(values, type=field.type))
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                    bad = _first_bad(values, field.type)
                    raise DataError(
                        f"{self._name}, column {field.name!r}, row {offset + bad[0] + 1} of this extract: value "
                        f"{bad[1]!r} does not fit {field.type} ({exc})"
                    ) from None
            offset += len(rows)
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def close(self) -> None:
        if "_conn" in self.__dict__:
            self._conn.rollback()
            self._conn.close()
        if "hook" in self.__dict__ and "engine" in self.hook.__dict__:
            self.hook.engine.dispose()


_PG_OIDS: dict[int, Any] = {
    16: sa.Boolean(),
    17: sa.LargeBinary(),
    20: sa.BigInteger(),
    21: sa.SmallInteger(),
    23: sa.Integer(),
    700: sa.Float(),
    701: sa.Double(),
    1082: sa.Date(),
    1083: sa.Time(),
    1114: sa.DateTime(),
    1184: sa.DateTime(timezone=True),
}


def _pg_type(oid: Any, precision: int | None, scale: int | None) -> Any:
    """SQLAlchemy type of a PostgreSQL result column (text for anything not listed)."""
    if oid == 1700:
        return sa.Numeric(precision, scale) if precision else sa.Numeric()
    return _PG_OIDS.get(oid, sa.Text())


def _chunk_predicate(col: sa.ColumnElement[Any], chunk: dict[str, Any]) -> sa.ColumnElement[bool]:
    in_range = sa.and_(col >= chunk["lo"], col < chunk["hi"])
    return sa.or_(col.is_(None), in_range) if chunk.get("nulls") else in_range


def _bound(value: dt.datetime, naive: bool) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if naive else value


def _first_bad(values: Any, typ: pa.DataType) -> tuple[int, Any]:
    for i, v in enumerate(values):
        try:
            pa.array([v], type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return i, v
    return 0, None
