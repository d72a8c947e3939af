"""SQL targets through SQLAlchemy: one transaction per load, recorded in the target's load ledger.

The steps, all inside one transaction (a kill at any point leaves the target as it was):

1. take the load lock of (table, window) (:mod:`bulksync.targets.locks`) and read the ledger
   (:mod:`bulksync.targets.ledger`): the same committed partition loaded already is a no-op;
2. create the target table from the Arrow schema (exact types, audit columns, primary key on the
   merge keys, no sequences or defaults), or compare it with the schema: new columns are added
   (``evolve``) or refused (``freeze``); a column whose type cannot hold the new data is refused;
3. ``append`` (first removing the rows an earlier extract of the same window appended) /
   ``replace`` (empty the table first) / ``interval`` (delete the window first): bulk-load the
   batches straight into the table (``COPY`` on PostgreSQL) with the run id and load time;
4. ``merge``: bulk-load into a temporary table, refuse empty or repeated keys, then
   ``INSERT … ON CONFLICT (keys) DO UPDATE`` when the table has a unique key on them (else delete
   the arriving keys and insert), counting updates and inserts apart;
5. record the load in the ledger.

Names are quoted for the driver, never interpolated through SQLAlchemy's ``text()`` (whose
``:name`` binds a column named ``:word`` would be mistaken for), so any name the database accepts
loads. This module holds the dialect-neutral logic and the SQLite specifics; PostgreSQL overrides
the bulk copy and the merge in :mod:`bulksync.targets.postgres`.
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
from bulksync.targets import ledger as ledger_mod
from bulksync.targets.base import AUDIT_COLUMNS, AUDIT_LOADED_AT, AUDIT_RUN_ID, BatchSource, LoadResult, Target
from bulksync.targets.capabilities import TargetCapabilities, for_dialect
from bulksync.targets.ddl import column_type, describe_type, fits, sa_type
from bulksync.targets.errors import translated_errors
from bulksync.targets.ledger import LedgerEntry, PartitionRef
from bulksync.targets.locks import lock_load
from bulksync.targets.values import check_staged_schema, column_comment, sqlite_value, with_audit

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

    @cached_property
    def capabilities(self) -> TargetCapabilities:
        """What the database behind the connection can hold (identifier length, columns, NaN)."""
        return for_dialect(self.dialect)

    @property
    def qualified_name(self) -> str:
        """``schema.table`` as written in messages."""
        return f"{self.spec.db_schema}.{self.spec.table}" if self.spec.db_schema else self.spec.table

    def q(self, name: str) -> str:
        """Quote an identifier for statements run with ``exec_driver_sql`` on this dialect."""
        return self.hook.engine.dialect.identifier_preparer.quote(name)

    def param(self, name: str) -> str:
        """The driver's placeholder of the named parameter ``name``."""
        return f":{name}" if self.dialect == "sqlite" else f"%({name})s"

    @property
    def table_sql(self) -> str:
        """The quoted, qualified target table."""
        t = self.q(self.spec.table)
        return f"{self.q(self.spec.db_schema)}.{t}" if self.spec.db_schema else t

    # -- the load --------------------------------------------------------------------------

    def load(self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str) -> LoadResult:
        """Load the batches in one transaction (not recorded in the ledger: no staging partition)."""
        return self._load(batches, schema, window, run_id, None)

    def load_partition(
        self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str, ref: PartitionRef
    ) -> LoadResult:
        return self._load(batches, schema, window, run_id, ref)

    def _load(
        self, batches: BatchSource, schema: pa.Schema, window: Window, run_id: str, ref: PartitionRef | None
    ) -> LoadResult:
        started = time.monotonic()
        self._check_schema_names(schema)
        with translated_errors(self.qualified_name):
            ledger = self._ensure_ledger() if ref is not None else None
            with self.hook.connect() as conn, conn.begin():
                self.prepare_session(conn)
                exists = self.has_table(conn)
                exclusive = self.spec.mode in ("merge", "replace") or not exists
                lock_load(conn, self.qualified_name, window.key, exclusive_table=exclusive)
                exists = exists or self.has_table(conn)  # created meanwhile by the load we waited for
                previous = None
                if ledger is not None and ref is not None:
                    previous = self._previous(conn, ledger, ref, exists)
                    noop = self._noop(previous, ref, started)
                    if noop is not None:
                        return noop
                replaced = previous if ref is not None and ref.replaces_previous else None
                result, audit = self._write(conn, batches, schema, window, run_id, exists, replaced)
                if ledger is not None and ref is not None:
                    self._record(conn, ledger, ref, result, audit)
        result.duration_seconds = time.monotonic() - started
        log.info(
            "loaded %s (%s): %d staged rows, %d inserted, %d updated, %d deleted in %.1fs%s",
            result.table,
            result.mode,
            result.rows,
            result.inserted,
            result.updated,
            result.deleted,
            result.duration_seconds,
            f" (replacing load {result.replaced_load_id} of an earlier extract)" if result.replaced_load_id else "",
        )
        return result

    def _ensure_ledger(self) -> sa.Table:
        """Create the ledger in a short transaction of its own (two first loads would race on it)."""
        with self.hook.connect() as conn, conn.begin():
            return ledger_mod.ensure_ledger(conn)

    def _previous(self, conn: sa.Connection, ledger: sa.Table, ref: PartitionRef, exists: bool) -> LedgerEntry | None:
        if not exists:
            # the table was dropped (or never made): what the ledger says it held is gone with it
            forgotten = ledger_mod.forget_table(conn, ledger, self.qualified_name)
            if forgotten:
                log.info("%s does not exist: forgot %d ledger rows of it", self.qualified_name, forgotten)
            return None
        return ledger_mod.read_entry(conn, ledger, ledger_mod.ledger_key(self.qualified_name, ref))

    def _noop(self, previous: LedgerEntry | None, ref: PartitionRef, started: float) -> LoadResult | None:
        if previous is None:
            return None
        if previous.manifest_sha256 == ref.manifest_sha256:
            reason = "already_loaded"
            log.info(
                "%s: partition %s/%s of %s (manifest %s) was loaded already by run %s at %s (load %s): nothing to do",
                self.qualified_name,
                ref.dataset,
                ref.interval,
                ref.pipeline,
                ref.manifest_sha256[:12],
                previous.run_id,
                previous.loaded_at.isoformat(),
                previous.load_id,
            )
        elif previous.committed_at > ref.committed_at:
            reason = "superseded"
            log.warning(
                "%s: a newer extract of %s/%s (committed %s, loaded by run %s) is in the table already; this load "
                "of an older one (committed %s) does nothing",
                self.qualified_name,
                ref.dataset,
                ref.interval,
                previous.committed_at.isoformat(),
                previous.run_id,
                ref.committed_at.isoformat(),
            )
        else:
            return None
        return LoadResult(
            table=self.qualified_name,
            mode=self.spec.mode,
            rows=previous.rows,
            inserted=previous.inserted,
            updated=previous.updated,
            deleted=previous.deleted,
            duration_seconds=time.monotonic() - started,
            applied_deletes=previous.applied_deletes,
            already_loaded=True,
            noop_reason=reason,
            load_id=previous.load_id,
        )

    def _write(
        self,
        conn: sa.Connection,
        batches: BatchSource,
        schema: pa.Schema,
        window: Window,
        run_id: str,
        exists: bool,
        previous: LedgerEntry | None,
    ) -> tuple[LoadResult, tuple[str, dt.datetime]]:
        created, added = self.ensure_table(conn, schema, exists)
        audit = (run_id, dt.datetime.now(dt.UTC))
        mode = self.spec.mode
        if mode == "merge" and self.upsert_keys and not self.spec.delete_flag and self.is_empty(conn):
            # nothing to merge with (a first load, a new table): straight in, the primary key checks the keys
            rows = self.copy_keyed(conn, schema, batches, audit)
            inserted, updated, deleted, applied = rows, 0, 0, 0
        elif mode == "merge":
            tmp = f"bulksync_stage_{uuid.uuid4().hex[:10]}"
            self.create_temp_table(conn, tmp, schema)
            rows = self.copy_into(conn, tmp, schema, batches, temp=True)
            self.check_keys(conn, tmp)
            deleted, applied = self.apply_deletes(conn, tmp) if self.spec.delete_flag else (0, 0)
            inserted, updated = self.merge(conn, tmp, schema, audit)
            self.drop_temp_table(conn, tmp)
        else:
            # append / replace / interval write straight into the table: one pass, same transaction
            if mode == "replace":
                deleted = self.delete_all(conn)
            elif mode == "interval":
                deleted = self._delete_window(conn, window, previous, schema.field(self.spec.interval_column).type)
            else:
                deleted = self.delete_load(conn, previous) if previous is not None else 0
            rows = self.copy_into(conn, None, schema, batches, audit=audit)
            inserted, updated, applied = rows, 0, 0
        result = LoadResult(
            table=self.qualified_name,
            mode=mode,
            rows=rows,
            inserted=inserted,
            updated=updated,
            deleted=deleted,
            duration_seconds=0.0,
            created_table=created,
            added_columns=tuple(added),
            applied_deletes=applied,
            load_id=str(uuid.uuid4()),
            replaced_load_id=previous.load_id if previous is not None and mode != "merge" else None,
        )
        return result, audit

    def _record(
        self,
        conn: sa.Connection,
        ledger: sa.Table,
        ref: PartitionRef,
        result: LoadResult,
        audit: tuple[str, dt.datetime],
    ) -> None:
        entry = LedgerEntry(
            load_id=str(result.load_id),
            manifest_sha256=ref.manifest_sha256,
            committed_at=ref.committed_at,
            run_id=audit[0],
            rows_loaded_at=self.stored_time_text(audit[1]),
            mode=result.mode,
            rows=result.rows,
            inserted=result.inserted,
            updated=result.updated,
            deleted=result.deleted,
            applied_deletes=result.applied_deletes,
            loaded_at=audit[1],
        )
        key = ledger_mod.ledger_key(self.qualified_name, ref)
        ledger_mod.write_entry(conn, ledger, key, self.qualified_name, ref, entry)
        if result.mode == "replace":
            ledger_mod.forget_other_windows(conn, ledger, self.qualified_name, key)

    def _check_schema_names(self, schema: pa.Schema) -> None:
        check_staged_schema(self.spec, schema, self.capabilities, self.qualified_name)

    def prepare_session(self, conn: sa.Connection) -> None:
        """Per-dialect session settings (time zone …)."""

    def has_table(self, conn: sa.Connection) -> bool:
        """Whether the target table exists (read in the load's transaction)."""
        return bool(sa.inspect(conn).has_table(self.spec.table, schema=self.spec.db_schema))

    def ensure_table(
        self, conn: sa.Connection, schema: pa.Schema, exists: bool | None = None
    ) -> tuple[bool, list[str]]:
        """Create the table or reconcile its columns with the staged schema."""
        if exists is None:
            exists = self.has_table(conn)
        if not exists:
            self._create_table(conn, schema)
            self.upsert_keys = self.spec.mode == "merge"
            return True, []
        insp = sa.inspect(conn)
        reflected = insp.get_columns(self.spec.table, schema=self.spec.db_schema)
        existing = {c["name"]: c["type"] for c in reflected}
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
            col_type = column_type(f, self.dialect).compile(dialect=conn.dialect)
            self.add_column(conn, f.name, col_type)
            log.info("added column %s %s to %s (schema_changes: evolve)", f.name, col_type, self.qualified_name)
        for name, typ in ((AUDIT_RUN_ID, sa.Text()), (AUDIT_LOADED_AT, sa.DateTime(timezone=True))):
            if name not in existing:  # a table bulksync did not create: its audit columns are added too
                self.add_column(conn, name, typ.compile(dialect=conn.dialect))
        self.upsert_keys = self.spec.mode == "merge" and self._unique_on_keys(insp)
        return False, [f.name for f in new]

    def add_column(self, conn: sa.Connection, name: str, col_type: str) -> None:
        """``ALTER TABLE … ADD COLUMN`` (PostgreSQL and MariaDB: ``IF NOT EXISTS``, for concurrent loads)."""
        guard = "IF NOT EXISTS " if self.dialect in ("postgresql", "mysql") else ""
        conn.exec_driver_sql(f"ALTER TABLE {self.table_sql} ADD COLUMN {guard}{self.q(name)} {col_type}")

    def _unique_on_keys(self, insp: Any) -> bool:
        """Whether the table has a primary key or unique index on exactly the merge keys."""
        keys = set(self.spec.keys)
        pk = insp.get_pk_constraint(self.spec.table, schema=self.spec.db_schema) or {}
        if set(pk.get("constrained_columns") or []) == keys:
            return True
        for uc in insp.get_unique_constraints(self.spec.table, schema=self.spec.db_schema):
            if set(uc.get("column_names") or []) == keys:
                return True
        for ix in insp.get_indexes(self.spec.table, schema=self.spec.db_schema):
            if ix.get("unique") and set(ix.get("column_names") or []) == keys and not ix.get("dialect_options"):
                return True
        return False

    def _create_table(self, conn: sa.Connection, schema: pa.Schema) -> None:
        merge = self.spec.mode == "merge"
        cols: list[sa.Column[Any]] = [
            sa.Column(
                f.name,
                column_type(f, self.dialect),
                nullable=f.name not in self.spec.keys or not merge,
                comment=column_comment(f),
                # the source had no sequence: an integer key must not get one (SERIAL, AUTOINCREMENT)
                autoincrement=False,
            )
            for f in schema
        ]
        cols.append(sa.Column(AUDIT_RUN_ID, sa.Text()))
        cols.append(sa.Column(AUDIT_LOADED_AT, sa.DateTime(timezone=True)))
        args: list[Any] = []
        if merge:
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
        table: str | None,
        schema: pa.Schema,
        batches: BatchSource,
        audit: tuple[str, dt.datetime] | None = None,
        *,
        temp: bool = False,
    ) -> int:
        """Bulk-insert the batches into the target table (``table`` None) or the temp table ``table``,
        with the audit columns when given.

        SQLite: executemany of text-normalised rows; PostgreSQL overrides this with ``COPY``.
        """
        names = list(schema.names) + (list(AUDIT_COLUMNS) if audit else [])
        cols = ", ".join(self.q(n) for n in names)
        into = self.q(table) if table is not None else self.table_sql
        marks = ", ".join("?" if self.dialect == "sqlite" else "%s" for _ in names)
        sql = f"INSERT INTO {into} ({cols}) VALUES ({marks})"
        rows = 0
        stamped = (audit[0], self.stored_time_text(audit[1])) if audit else None  # the text SQLite keeps
        for batch in batches():
            self.check_batch(batch, rows)
            arrays = [sqlite_value(a) for a in with_audit(batch, stamped).columns]
            data = list(zip(*(a.to_pylist() for a in arrays), strict=True))
            if data:
                conn.exec_driver_sql(sql, data)
            rows += batch.num_rows
        return rows

    upsert_keys = False
    """Whether the table has a unique key on exactly the merge keys (set by :meth:`ensure_table`)."""

    def is_empty(self, conn: sa.Connection) -> bool:
        """Whether the target table holds no row (read in the load's transaction, under its lock)."""
        return conn.exec_driver_sql(f"SELECT 1 FROM {self.table_sql} LIMIT 1").first() is None

    def copy_keyed(
        self, conn: sa.Connection, schema: pa.Schema, batches: BatchSource, audit: tuple[str, dt.datetime]
    ) -> int:
        """Merge into an empty table with a key on the merge keys: copy the rows straight in; a repeated or
        empty key is refused by the key itself, and named here."""
        try:
            return self.copy_into(conn, None, schema, batches, audit=audit)
        except Exception as exc:
            orig = getattr(exc, "orig", None) or exc
            state = getattr(orig, "sqlstate", None) or ""
            text = str(orig).lower()
            detail = " ".join(str(orig).split())[:300]
            if state == "23505" or "unique constraint failed" in text:
                raise DataError(
                    f"the staged data repeats merge keys {self.spec.keys} ({detail}); nothing was loaded. "
                    "Add a dedupe step (dedupe: {keys: [...], latest_by: <change column>})"
                ) from None
            if state == "23502" or "not null constraint failed" in text:
                raise DataError(
                    f"staged rows have an empty merge key {self.spec.keys} ({detail}); nothing was loaded. Fill or "
                    "filter them in a transform"
                ) from None
            raise

    def check_batch(self, batch: pa.RecordBatch, offset: int) -> None:
        """Refuse values the database would silently change (``NaN`` → NULL on SQLite and MariaDB)."""
        if self.capabilities.stores_nan:
            return
        for col, field in zip(batch.columns, batch.schema, strict=True):
            if pa.types.is_floating(field.type) and col.null_count < len(col):
                nan = pc.is_nan(col)
                count = pc.sum(nan).as_py() or 0
                if count:
                    first = offset + int(pc.index(nan, True).as_py())
                    raise DataError(
                        f"column {field.name!r} of {self.qualified_name} holds NaN ({count} in rows {offset + 1:,}–"
                        f"{offset + len(col):,}, first at staged row {first + 1:,}) and {self.capabilities.name} "
                        "would store it as NULL; nothing was loaded. Map NaN to null on purpose in a transform "
                        f'(derive: {{{field.name}: "if(is_nan({field.name}), null, {field.name})"}}) or load into '
                        "PostgreSQL"
                    )

    def check_keys(self, conn: sa.Connection, src: str) -> None:
        """Refuse empty merge keys; on SQLite also repeated ones (PostgreSQL's upsert reports those)."""
        tmp = self.q(src)
        keys = [self.q(k) for k in self.spec.keys]
        nulls = conn.exec_driver_sql(
            f"SELECT count(*) FROM {tmp} WHERE " + " OR ".join(f"{k} IS NULL" for k in keys)
        ).scalar_one()
        if nulls:
            raise DataError(
                f"{nulls} staged rows have an empty merge key {self.spec.keys}; fill or filter them in a transform"
            )
        if self.dialect == "sqlite":
            try:
                conn.exec_driver_sql(f"CREATE UNIQUE INDEX {self.q(src + '_keys')} ON {tmp} ({', '.join(keys)})")
            except sa.exc.IntegrityError:
                self.raise_duplicate_keys(conn, src)

    def raise_duplicate_keys(self, conn: sa.Connection, src: str) -> None:
        """Raise the :class:`DataError` naming a few keys the staged data repeats."""
        keys = [self.q(k) for k in self.spec.keys]
        dupes = conn.exec_driver_sql(
            f"SELECT {', '.join(keys)}, count(*) FROM {self.q(src)} GROUP BY {', '.join(keys)} "
            "HAVING count(*) > 1 LIMIT 3"
        ).fetchall()
        sample = "; ".join(f"{tuple(r[:-1])} x{r[-1]}" for r in dupes)
        raise DataError(
            f"the staged data repeats merge keys {self.spec.keys} (e.g. {sample}); nothing was loaded. "
            "Add a dedupe step (dedupe: {keys: [...], latest_by: <change column>})"
        )

    def merge(
        self, conn: sa.Connection, tmp: str, schema: pa.Schema, audit: tuple[str, dt.datetime]
    ) -> tuple[int, int]:
        """Upsert the temp table into the target on the keys; returns (inserted, updated)."""
        src = self.q(tmp)
        cols = [self.q(n) for n in schema.names]
        params = {"run_id": audit[0], "loaded_at": self.time_param(audit[1])}
        select = f"SELECT {', '.join(cols)}, {self.param('run_id')}, {self.param('loaded_at')} FROM {src}"
        into = f"INSERT INTO {self.table_sql} ({', '.join(cols)}, {self.q(AUDIT_RUN_ID)}, {self.q(AUDIT_LOADED_AT)})"
        if self.upsert_keys:
            cond = " AND ".join(f"t.{self.q(k)} = s.{self.q(k)}" for k in self.spec.keys)
            updated = int(
                conn.exec_driver_sql(
                    f"SELECT count(*) FROM {src} s WHERE EXISTS (SELECT 1 FROM {self.table_sql} t WHERE {cond})"
                ).scalar_one()
            )
            keys = ", ".join(self.q(k) for k in self.spec.keys)
            sets = ", ".join(
                f"{c} = excluded.{c}"
                for c in [self.q(n) for n in schema.names if n not in self.spec.keys]
                + [self.q(AUDIT_RUN_ID), self.q(AUDIT_LOADED_AT)]
            )
            # "WHERE true": SQLite's parser needs it between SELECT … FROM and ON CONFLICT
            total = conn.exec_driver_sql(
                f"{into} {select} WHERE true ON CONFLICT ({keys}) DO UPDATE SET {sets}", params
            ).rowcount
            return total - updated, updated
        updated = self.delete_matching(conn, tmp)
        total = conn.exec_driver_sql(f"{into} {select}", params).rowcount
        return total - updated, updated

    def apply_deletes(self, conn: sa.Connection, tmp: str) -> tuple[int, int]:
        """Merge with ``delete_flag``: staged rows flagged true delete the target rows with their keys.

        The flagged rows are then removed from the temp table, so the merge upserts only the others.
        Returns (target rows deleted, flagged rows staged).
        """
        src, flag = self.q(tmp), self.q(str(self.spec.delete_flag))
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

    def delete_matching(self, conn: sa.Connection, tmp: str) -> int:
        cond = " AND ".join(f"s.{self.q(k)} = {self.table_sql}.{self.q(k)}" for k in self.spec.keys)
        return conn.exec_driver_sql(
            f"DELETE FROM {self.table_sql} WHERE EXISTS (SELECT 1 FROM {self.q(tmp)} s WHERE {cond})"
        ).rowcount

    def delete_all(self, conn: sa.Connection) -> int:
        return conn.exec_driver_sql(f"DELETE FROM {self.table_sql}").rowcount

    def _load_condition(self, previous: LedgerEntry) -> tuple[str, dict[str, Any]]:
        """The rows an earlier load wrote: its run id and load time in the audit columns."""
        run, at = self.q(AUDIT_RUN_ID), self.q(AUDIT_LOADED_AT)
        cond = f"({run} = {self.param('prev_run')} AND {at} = {self.param('prev_at')})"
        return cond, {"prev_run": previous.run_id, "prev_at": self.stored_time(previous.rows_loaded_at)}

    def delete_load(self, conn: sa.Connection, previous: LedgerEntry) -> int:
        """Remove the rows an earlier load of the same window wrote (a new extract replaces them)."""
        cond, params = self._load_condition(previous)
        deleted = int(conn.exec_driver_sql(f"DELETE FROM {self.table_sql} WHERE {cond}", params).rowcount or 0)
        log.info(
            "%s: a new extract of the window replaces load %s (run %s): %d rows removed",
            self.qualified_name,
            previous.load_id,
            previous.run_id,
            deleted,
        )
        return deleted

    def _delete_window(
        self, conn: sa.Connection, window: Window, previous: LedgerEntry | None, typ: pa.DataType | None = None
    ) -> int:
        col = self.q(self.spec.interval_column)
        clauses, params = [], {}
        if window.start is not None:
            clauses.append(f"{col} >= {self.param('start')}")
            params["start"] = self.window_param(window.start, typ)
        if window.end is not None:
            clauses.append(f"{col} < {self.param('end')}")
            params["end"] = self.window_param(window.end, typ)
        where = " AND ".join(clauses) or "1=1"
        if previous is not None:
            # rows the earlier extract of this window loaded outside it (e.g. a widened window) go too
            cond, more = self._load_condition(previous)
            where, params = f"({where}) OR {cond}", {**params, **more}
        return int(conn.exec_driver_sql(f"DELETE FROM {self.table_sql} WHERE {where}", params).rowcount or 0)

    def time_param(self, value: dt.datetime) -> Any:
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ") if self.dialect == "sqlite" else value

    def window_param(self, value: dt.datetime, typ: pa.DataType | None) -> Any:
        """A window bound compared with the interval column: on SQLite, text shaped as the column holds
        its values (a date, a naive or a UTC time), so that comparing the texts orders them right."""
        if self.dialect != "sqlite" or typ is None:
            return self.time_param(value)
        utc = value.astimezone(dt.UTC)
        if pa.types.is_date(typ):
            return utc.date().isoformat()
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f" + ("Z" if getattr(typ, "tz", None) else ""))

    def stored_time_text(self, value: dt.datetime) -> str:
        """A load time as the ledger keeps it: exactly what the audit column holds (text on SQLite)."""
        if self.dialect == "sqlite":
            return str(sqlite_value(pa.array([value], pa.timestamp("us", tz="UTC")))[0].as_py())
        return value.astimezone(dt.UTC).isoformat()

    def stored_time(self, text: str) -> Any:
        """The parameter matching the audit column of a load time the ledger kept."""
        return text if self.dialect == "sqlite" else dt.datetime.fromisoformat(text)

    def close(self) -> None:
        if "hook" in self.__dict__ and "engine" in self.hook.__dict__:
            self.hook.engine.dispose()
