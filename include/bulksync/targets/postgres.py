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

from bulksync.targets.base import AUDIT_COLUMNS, BatchSource
from bulksync.targets.sql import SqlTarget, _db_error, with_audit

log = logging.getLogger(__name__)


class PostgresTarget(SqlTarget):
    """Load into PostgreSQL (the first-class warehouse)."""

    kind = "postgres"

    def prepare_session(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        conn.exec_driver_sql("SET LOCAL lock_timeout = '5min'")

    def copy_into(
        self,
        conn: sa.Connection,
        table: str,
        schema: pa.Schema,
        batches: BatchSource,
        audit: tuple[str, dt.datetime] | None = None,
    ) -> int:
        cols = ", ".join(self.q(n) for n in [*schema.names, *(AUDIT_COLUMNS if audit else ())])
        raw: Any = conn.connection.driver_connection
        rows = 0
        try:
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for n, chunk in _csv_chunks(batches, audit):
                    copy.write(chunk)
                    rows += n
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _db_error(sa.exc.DBAPIError(None, None, exc), self.qualified_name) from None
            raise
        return rows

    def delete_matching(self, conn: sa.Connection, src: str) -> int:
        cond = " AND ".join(f"t.{self.q(k)} = s.{self.q(k)}" for k in self.spec.keys)
        return conn.exec_driver_sql(f"DELETE FROM {self.table_sql} t USING {src} s WHERE {cond}").rowcount

    def delete_all(self, conn: sa.Connection) -> int:
        count = conn.exec_driver_sql(f"SELECT count(*) FROM {self.table_sql}").scalar_one()
        conn.exec_driver_sql(f"TRUNCATE {self.table_sql}")
        return int(count)


_QUEUE_DEPTH = 4
_DONE = object()


def _csv_chunks(batches: BatchSource, audit: tuple[str, dt.datetime] | None) -> Iterator[tuple[int, memoryview]]:
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
