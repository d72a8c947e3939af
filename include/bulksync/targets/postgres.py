"""PostgreSQL target: ``COPY ... FROM STDIN (FORMAT csv)`` into a temp table, in one transaction.

Each Arrow batch is written to CSV by pyarrow's C++ writer (null → unquoted empty, empty string →
``""``, exactly what PostgreSQL's CSV COPY distinguishes) and streamed through psycopg's COPY.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
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
        opts = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)
        try:
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for batch in batches():
                    buf = io.BytesIO()
                    pacsv.write_csv(_pg_ready(with_audit(batch, audit)), buf, opts)
                    copy.write(buf.getbuffer())
                    rows += batch.num_rows
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
