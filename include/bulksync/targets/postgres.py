"""PostgreSQL target: ``COPY ... FROM STDIN (FORMAT csv)`` into a temp table, in one transaction.

Each Arrow batch is written to CSV by pyarrow's C++ writer (null → unquoted empty, empty string →
``""``, exactly what PostgreSQL's CSV COPY distinguishes) and streamed through psycopg's COPY.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from bulksync.targets.base import AUDIT_COLUMNS, AUDIT_LOADED_AT, AUDIT_RUN_ID, BatchSource
from bulksync.targets.sql import SqlTarget
from bulksync.targets.values import with_audit

log = logging.getLogger(__name__)


class PostgresTarget(SqlTarget):
    """Load into PostgreSQL (the first-class warehouse)."""

    kind = "postgres"

    def prepare_session(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        conn.exec_driver_sql("SET LOCAL lock_timeout = '5min'")

    def raw_q(self, name: str) -> str:
        """Quote an identifier for a statement sent without parameters (``COPY``): ``%`` stays single."""
        return '"' + name.replace('"', '""') + '"'

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
        cols = ", ".join(self.raw_q(n) for n in [*schema.names, *(AUDIT_COLUMNS if audit else ())])
        if table is not None:
            into = self.raw_q(table)
        else:
            into = self.raw_q(self.spec.table)
            if self.spec.db_schema:
                into = f"{self.raw_q(self.spec.db_schema)}.{into}"
        raw: Any = conn.connection.driver_connection
        rows = 0
        with raw.cursor() as cur, cur.copy(f"COPY {into} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            stamped = (audit[0], audit[1].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")) if audit else None
            for n, chunk in _csv_chunks(batches, stamped):
                copy.write(chunk)
                rows += n
        return rows

    def check_keys(self, conn: sa.Connection, src: str) -> None:
        super().check_keys(conn, src)
        if not self.upsert_keys:
            # the delete + insert fallback would load a repeated key twice: look for them first
            keys = ", ".join(self.q(k) for k in self.spec.keys)
            repeated = conn.exec_driver_sql(
                f"SELECT 1 FROM {self.q(src)} GROUP BY {keys} HAVING count(*) > 1 LIMIT 1"
            ).first()
            if repeated:
                self.raise_duplicate_keys(conn, src)

    def merge(
        self, conn: sa.Connection, tmp: str, schema: pa.Schema, audit: tuple[str, dt.datetime]
    ) -> tuple[int, int]:
        """``INSERT … ON CONFLICT (keys) DO UPDATE`` from the temp table, in one statement.

        Inserted and updated rows are told apart by ``xmax`` (0 for a row this statement inserted).
        A key the staged data repeats makes PostgreSQL refuse the statement (it cannot update a row
        twice); the savepoint lets the load name a few of those keys before failing.
        """
        if not self.upsert_keys:
            return super().merge(conn, tmp, schema, audit)
        cols = [self.q(n) for n in schema.names]
        keys = ", ".join(self.q(k) for k in self.spec.keys)
        sets = ", ".join(
            f"{c} = EXCLUDED.{c}"
            for c in [self.q(n) for n in schema.names if n not in self.spec.keys]
            + [self.q(AUDIT_RUN_ID), self.q(AUDIT_LOADED_AT)]
        )
        sql = (
            f"WITH up AS (INSERT INTO {self.table_sql} ({', '.join(cols)}, {self.q(AUDIT_RUN_ID)}, "
            f"{self.q(AUDIT_LOADED_AT)}) SELECT {', '.join(cols)}, %(run_id)s, %(loaded_at)s FROM {self.q(tmp)} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {sets} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FROM up"
        )
        import psycopg

        try:
            with conn.begin_nested():
                inserted, total = conn.exec_driver_sql(sql, {"run_id": audit[0], "loaded_at": audit[1]}).one()
        except sa.exc.DBAPIError as exc:
            if isinstance(exc.orig, psycopg.errors.CardinalityViolation):
                self.raise_duplicate_keys(conn, tmp)
            raise
        return int(inserted), int(total) - int(inserted)

    def delete_matching(self, conn: sa.Connection, tmp: str) -> int:
        cond = " AND ".join(f"t.{self.q(k)} = s.{self.q(k)}" for k in self.spec.keys)
        return conn.exec_driver_sql(f"DELETE FROM {self.table_sql} t USING {self.q(tmp)} s WHERE {cond}").rowcount

    def delete_all(self, conn: sa.Connection) -> int:
        count = conn.exec_driver_sql(f"SELECT count(*) FROM {self.table_sql}").scalar_one()
        conn.exec_driver_sql(f"TRUNCATE {self.table_sql}")
        return int(count)


_QUEUE_DEPTH = 4
_DONE = object()


def _csv_chunks(batches: BatchSource, audit: tuple[str, str] | None) -> Iterator[tuple[int, memoryview]]:
    """Encode the batches as CSV in a background thread while the caller streams them to COPY.

    Reading Parquet and writing CSV run in pyarrow's C++ without the GIL, so the client encodes the
    next batches while the server parses the current one. At most ``_QUEUE_DEPTH`` encoded batches
    wait in memory. An error in the producer is re-raised here; if the caller stops early (a COPY
    error), the producer is told to stop.
    """
    opts = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)
    out: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for batch in batches():
                if stop.is_set():
                    return
                buf = io.BytesIO()
                pacsv.write_csv(_pg_ready(with_audit(batch, audit)), buf, opts)
                put((batch.num_rows, buf.getbuffer()))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="bulksync-csv-encoder", daemon=True)
    worker.start()
    try:
        while (item := out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=10)


def _pg_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Binary columns become PostgreSQL's ``\\x`` hex text; everything else pyarrow writes as is."""
    if not any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in batch.schema):
        return batch
    arrays = []
    for col, field in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            col = pa.array([None if v is None else "\\x" + v.hex() for v in col.to_pylist()], pa.string())
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
