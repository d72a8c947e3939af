"""SQL targets through SQLAlchemy: one transaction per load, a temp table, then the load mode.

The steps, all inside one transaction (a kill at any point leaves the target as it was):

1. create the target table from the Arrow schema (exact types, audit columns, primary key on the
   merge keys), or compare it with the schema: new columns are added (``evolve``) or refused
   (``freeze``); a column whose type cannot hold the new data is refused by name;
2. ``append`` / ``replace`` (empty the table first) / ``interval`` (delete the window first): bulk-load
   the batches straight into the table (``COPY`` on PostgreSQL) with the run id and load time;
3. ``merge``: bulk-load into a temporary table, refuse empty or repeated keys, delete the rows whose
   keys arrive, insert them all (so updates and inserts are counted apart).

This module holds the dialect-neutral logic and the SQLite specifics; PostgreSQL overrides the
bulk copy in :mod:`bulksync.targets.postgres`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from bulksync.errors import DataError, TargetSchemaError
from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.staging.partition import Window
from bulksync.targets.base import AUDIT_COLUMNS, AUDIT_LOADED_AT, AUDIT_RUN_ID, BatchSource, LoadResult, Target
from bulksync.targets.ddl import describe_type, fits, sa_type

log = logging.getLogger(__name__)


class SqlTarget(Target):
    """Load into a table of a SQL database reached through an Airflow connection."""

    kind = "sqlite"

    @cached_property
    def hook(self) -> SqlAlchemyHook:
        return SqlAlchemyHook(self.spec.conn_id)

    @property
    def dialect(self) -> str:
        return self.hook.dialect

    @property
    def qualified_name(self) -> str:
        """``schema.table`` as written in messages."""
        return f"{self.spec.db_schema}.{self.spec.table}" if self.spec.db_schema else self.spec.table

    def q(self, name: str) -> str:
        """Quote an identifier for this dialect."""
        return self.hook.engine.dialect.identifier_preparer.quote(name)

    @property
    def table_sql(self) -> str:
        """The quoted, qualified target table."""
        t = self.q(self.spec.table)
        return f"{self.q(self.spec.db_schema)}.{t}" if self.spec.db_schema else t

    # -- the load --------------------------------------------------------------------------

    def load(self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str) -> LoadResult:
        started = time.monotonic()
        self._check_schema_names(schema)
        with self.hook.connect() as conn, conn.begin():
            self.prepare_session(conn)
            created, added = self.ensure_table(conn, schema)
            audit = (run_id, dt.datetime.now(dt.UTC))
            if self.spec.mode == "merge":
                tmp = f"bulksync_stage_{uuid.uuid4().hex[:10]}"
                self.create_temp_table(conn, tmp, schema)
                rows = self.copy_into(conn, self.q(tmp), schema, batches)
                deleted, applied = self.apply_deletes(conn, tmp) if self.spec.delete_flag else (0, 0)
                inserted, updated = self.merge(conn, tmp, schema, audit)
                self.drop_temp_table(conn, tmp)
            else:
                # append / replace / interval write straight into the table: one pass, same transaction
                deleted = {"replace": self.delete_all, "interval": lambda c: self._delete_window(c, window)}.get(
                    self.spec.mode, lambda c: 0
                )(conn)
                rows = self.copy_into(conn, self.table_sql, schema, batches, audit=audit)
                inserted, updated, applied = rows, 0, 0
        result = LoadResult(
            table=self.qualified_name,
            mode=self.spec.mode,
            rows=rows,
            inserted=inserted,
            updated=updated,
            deleted=deleted,
            duration_seconds=time.monotonic() - started,
            created_table=created,
            added_columns=tuple(added),
            applied_deletes=applied,
        )
        log.info(
            "loaded %s (%s): %d staged rows, %d inserted, %d updated, %d deleted in %.1fs",
            result.table,
            result.mode,
            rows,
            inserted,
            updated,
            deleted,
            result.duration_seconds,
        )
        return result

    def _check_schema_names(self, schema: pa.Schema) -> None:
        clash = [n for n in schema.names if n in AUDIT_COLUMNS]
        if clash:
            raise TargetSchemaError(f"staged columns {clash} clash with bulksync's audit columns; rename them")
        for key in self.spec.keys:
            if key not in schema.names:
                raise TargetSchemaError(
                    f"key column {key!r} of {self.qualified_name} is not in the staged data (columns: {schema.names})"
                )
        flag = self.spec.delete_flag
        if flag and (flag not in schema.names or not pa.types.is_boolean(schema.field(flag).type)):
            raise TargetSchemaError(
                f"delete_flag {flag!r} of {self.qualified_name} must be a boolean column of the staged data "
                f"(columns: {schema.names})"
            )
        if self.spec.interval_column and self.spec.interval_column not in schema.names:
            raise TargetSchemaError(f"interval_column {self.spec.interval_column!r} is not in the staged data")

    def prepare_session(self, conn: sa.Connection) -> None:
        """Per-dialect session settings (time zone …)."""

    def ensure_table(self, conn: sa.Connection, schema: pa.Schema) -> tuple[bool, list[str]]:
        """Create the table or reconcile its columns with the staged schema."""
        insp = sa.inspect(conn)
        if not insp.has_table(self.spec.table, schema=self.spec.db_schema):
            self._create_table(conn, schema)
            return True, []
        existing = {c["name"]: c["type"] for c in insp.get_columns(self.spec.table, schema=self.spec.db_schema)}
        problems = [
            f"column {f.name!r} is {describe_type(existing[f.name])} in {self.qualified_name} but the staged "
            f"data is {f.type}"
            for f in schema
            if f.name in existing and not fits(existing[f.name], f.type, self.dialect)
        ]
        if problems:
            raise TargetSchemaError(
                "the target cannot hold the new data, nothing was loaded: "
                + "; ".join(problems)
                + ". Widen the column (ALTER TABLE), or cast the data in a transform"
            )
        new = [f for f in schema if f.name not in existing]
        if new and self.spec.schema_changes == "freeze":
            raise TargetSchemaError(
                f"new source columns {[f.name for f in new]} are not in {self.qualified_name} and the spec says "
                "schema_changes: freeze; nothing was loaded. Add them to the table, drop them with a transform, "
                "or set schema_changes: evolve"
            )
        for f in new:
            col_type = sa_type(f.type, self.dialect).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {self.table_sql} ADD COLUMN {self.q(f.name)} {col_type}")
            log.info("added column %s %s to %s (schema_changes: evolve)", f.name, col_type, self.qualified_name)
        return False, [f.name for f in new]

    def _create_table(self, conn: sa.Connection, schema: pa.Schema) -> None:
        cols: list[sa.Column[Any]] = [
            sa.Column(
                f.name,
                sa_type(f.type, self.dialect),
                nullable=f.name not in self.spec.keys or self.spec.mode != "merge",
                comment=column_comment(f),
            )
            for f in schema
        ]
        cols.append(sa.Column(AUDIT_RUN_ID, sa.Text()))
        cols.append(sa.Column(AUDIT_LOADED_AT, sa.DateTime(timezone=True)))
        args: list[Any] = []
        if self.spec.mode == "merge":
            args.append(sa.PrimaryKeyConstraint(*self.spec.keys))
        table = sa.Table(self.spec.table, sa.MetaData(), *cols, *args, schema=self.spec.db_schema)
        if self.spec.db_schema and self.dialect == "postgresql":
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.q(self.spec.db_schema)}")
        table.create(conn)
        log.info("created table %s with %d columns", self.qualified_name, len(schema))

    def create_temp_table(self, conn: sa.Connection, tmp: str, schema: pa.Schema) -> None:
        cols = ", ".join(
            f"{self.q(f.name)} {sa_type(f.type, self.dialect).compile(dialect=conn.dialect)}" for f in schema
        )
        conn.exec_driver_sql(f"CREATE TEMP TABLE {self.q(tmp)} ({cols})")

    def drop_temp_table(self, conn: sa.Connection, tmp: str) -> None:
        conn.exec_driver_sql(f"DROP TABLE {self.q(tmp)}")

    def copy_into(
        self,
        conn: sa.Connection,
        table: str,
        schema: pa.Schema,
        batches: BatchSource,
        audit: tuple[str, dt.datetime] | None = None,
    ) -> int:
        """Bulk-insert the batches into ``table`` (quoted), with the audit columns when given.

        SQLite: executemany of text-normalised rows; PostgreSQL overrides this with ``COPY``.
        """
        names = list(schema.names) + (list(AUDIT_COLUMNS) if audit else [])
        cols = ", ".join(self.q(n) for n in names)
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in names)})"
        rows = 0
        try:
            for batch in batches():
                arrays = [_sqlite_value(a) for a in with_audit(batch, audit).columns]
                data = list(zip(*(a.to_pylist() for a in arrays), strict=True))
                if data:
                    conn.exec_driver_sql(sql, data)
                rows += batch.num_rows
        except sa.exc.DBAPIError as exc:
            raise _db_error(exc, self.qualified_name) from None
        return rows

    def merge(
        self, conn: sa.Connection, tmp: str, schema: pa.Schema, audit: tuple[str, dt.datetime]
    ) -> tuple[int, int]:
        """Upsert the temp table into the target on the keys; returns (inserted, updated)."""
        src = self.q(tmp)
        cols = [self.q(n) for n in schema.names]
        self._check_keys(conn, src)
        updated = self.delete_matching(conn, src)
        insert = (
            f"INSERT INTO {self.table_sql} ({', '.join(cols)}, {self.q(AUDIT_RUN_ID)}, {self.q(AUDIT_LOADED_AT)}) "
            f"SELECT {', '.join(cols)}, :run_id, :loaded_at FROM {src}"
        )
        try:
            total = conn.execute(sa.text(insert), {"run_id": audit[0], "loaded_at": self.time_param(audit[1])}).rowcount
        except sa.exc.DBAPIError as exc:
            raise _db_error(exc, self.qualified_name) from None
        return total - updated, updated

    def _check_keys(self, conn: sa.Connection, src: str) -> None:
        keys = [self.q(k) for k in self.spec.keys]
        nulls = conn.exec_driver_sql(
            f"SELECT count(*) FROM {src} WHERE " + " OR ".join(f"{k} IS NULL" for k in keys)
        ).scalar_one()
        if nulls:
            raise DataError(
                f"{nulls} staged rows have an empty merge key {self.spec.keys}; fill or filter them in a transform"
            )
        dupes = conn.exec_driver_sql(
            f"SELECT {', '.join(keys)}, count(*) FROM {src} GROUP BY {', '.join(keys)} HAVING count(*) > 1 LIMIT 3"
        ).fetchall()
        if dupes:
            sample = "; ".join(f"{tuple(r[:-1])} x{r[-1]}" for r in dupes)
            raise DataError(
                f"the staged data repeats merge keys {self.spec.keys} (e.g. {sample}); nothing was loaded. "
                "Add a dedupe step (dedupe: {keys: [...], latest_by: <change column>})"
            )

    def apply_deletes(self, conn: sa.Connection, tmp: str) -> tuple[int, int]:
        """Merge with ``delete_flag``: staged rows flagged true delete the target rows with their keys.

        The flagged rows are then removed from the temp table, so the merge upserts only the others.
        Returns (target rows deleted, flagged rows staged).
        """
        src, flag = self.q(tmp), self.q(str(self.spec.delete_flag))
        self._check_keys(conn, src)
        applied = int(conn.exec_driver_sql(f"SELECT count(*) FROM {src} WHERE {flag} IS TRUE").scalar_one())
        if not applied:
            return 0, 0
        cond = " AND ".join(f"s.{self.q(k)} = {self.table_sql}.{self.q(k)}" for k in self.spec.keys)
        deleted = conn.exec_driver_sql(
            f"DELETE FROM {self.table_sql} WHERE EXISTS (SELECT 1 FROM {src} s WHERE {cond} AND s.{flag} IS TRUE)"
        ).rowcount
        conn.exec_driver_sql(f"DELETE FROM {src} WHERE {flag} IS TRUE")
        log.info("%s: %d staged deletions applied, %d rows deleted", self.qualified_name, applied, deleted)
        return deleted, applied

    def delete_matching(self, conn: sa.Connection, src: str) -> int:
        cond = " AND ".join(f"s.{self.q(k)} = {self.table_sql}.{self.q(k)}" for k in self.spec.keys)
        return conn.exec_driver_sql(
            f"DELETE FROM {self.table_sql} WHERE EXISTS (SELECT 1 FROM {src} s WHERE {cond})"
        ).rowcount

    def delete_all(self, conn: sa.Connection) -> int:
        return conn.exec_driver_sql(f"DELETE FROM {self.table_sql}").rowcount

    def _delete_window(self, conn: sa.Connection, window: Window) -> int:
        col = self.q(self.spec.interval_column)
        clauses, params = [], {}
        if window.start is not None:
            clauses.append(f"{col} >= :start")
            params["start"] = self.time_param(window.start)
        if window.end is not None:
            clauses.append(f"{col} < :end")
            params["end"] = self.time_param(window.end)
        where = " AND ".join(clauses) or "1=1"
        return conn.execute(sa.text(f"DELETE FROM {self.table_sql} WHERE {where}"), params).rowcount

    def time_param(self, value: dt.datetime) -> Any:
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ") if self.dialect == "sqlite" else value

    def close(self) -> None:
        if "hook" in self.__dict__ and "engine" in self.hook.__dict__:
            self.hook.engine.dispose()


def column_comment(f: pa.Field) -> str | None:
    """The column comment a source attached to a field (``b"comment"`` metadata, e.g. IBM i column
    text); created with the table where the database keeps comments (PostgreSQL, MariaDB)."""
    text = (f.metadata or {}).get(b"comment")
    return text.decode("utf-8") if text else None


def with_audit(batch: pa.RecordBatch, audit: tuple[str, dt.datetime] | None) -> pa.RecordBatch:
    """The batch with the run id and load time appended as the two audit columns."""
    if audit is None:
        return batch
    n = batch.num_rows
    run_id = pa.repeat(pa.scalar(audit[0], pa.string()), n)
    loaded_at = pa.repeat(pa.scalar(audit[1], pa.timestamp("us", tz="UTC")), n)
    return pa.RecordBatch.from_arrays([*batch.columns, run_id, loaded_at], names=[*batch.schema.names, *AUDIT_COLUMNS])


def _sqlite_value(arr: pa.Array) -> pa.Array:
    """SQLite stores exact decimals and times as text (ISO 8601, UTC 'Z' for aware timestamps)."""
    t = arr.type
    if pa.types.is_decimal(t) or pa.types.is_time(t):
        return arr.cast(pa.string())
    if pa.types.is_timestamp(t):
        fmt = "%Y-%m-%d %H:%M:%S" + ("Z" if t.tz else "")  # %S carries the microseconds
        return pc.strftime(arr, format=fmt)
    if pa.types.is_date(t):
        return arr.cast(pa.string())
    return arr


def _db_error(exc: sa.exc.DBAPIError, table: str) -> Exception:
    from bulksync.errors import TransientError

    detail = str(exc.orig).strip() if exc.orig is not None else str(exc)
    if isinstance(exc, sa.exc.OperationalError) and any(
        w in detail.lower() for w in ("deadlock", "could not serialize", "connection", "timeout", "locked")
    ):
        return TransientError(f"loading {table} failed, will retry: {detail}")
    return TargetSchemaError(f"loading {table} failed, nothing was loaded (the transaction was rolled back): {detail}")
