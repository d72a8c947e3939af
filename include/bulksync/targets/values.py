"""What the SQL targets write besides the data, and how values and staged schemas are checked.

Audit columns, SQLite's text forms of exact values, column comments, and the checks a staged schema
must pass before a load opens its transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bulksync.errors import TargetSchemaError
from bulksync.targets.base import AUDIT_COLUMNS
from bulksync.targets.capabilities import TargetCapabilities, identifier_problems


def check_staged_schema(spec: Any, schema: pa.Schema, caps: TargetCapabilities, table: str) -> None:
    """Refuse, before any transaction, staged data the target cannot take: audit column clashes, missing
    keys / flag / interval column, names the database would truncate, too many columns."""
    clash = [n for n in schema.names if n in AUDIT_COLUMNS]
    if clash:
        raise TargetSchemaError(f"staged columns {clash} clash with bulksync's audit columns; rename them")
    for key in spec.keys:
        if key not in schema.names:
            raise TargetSchemaError(
                f"key column {key!r} of {table} is not in the staged data (columns: {schema.names})"
            )
    flag = spec.delete_flag
    if flag and (flag not in schema.names or not pa.types.is_boolean(schema.field(flag).type)):
        raise TargetSchemaError(
            f"delete_flag {flag!r} of {table} must be a boolean column of the staged data (columns: {schema.names})"
        )
    if spec.interval_column and spec.interval_column not in schema.names:
        raise TargetSchemaError(f"interval_column {spec.interval_column!r} is not in the staged data")
    problems = identifier_problems(
        caps, {"table": [spec.table], "schema": [spec.db_schema or ""], "column": list(schema.names)}
    )
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise TargetSchemaError(f"cannot load {table}, nothing was loaded: " + "; ".join(problems[:5]) + more)
    width = len(schema) + len(AUDIT_COLUMNS)
    if width > caps.max_columns:
        raise TargetSchemaError(
            f"cannot load {table}, nothing was loaded: the staged data has {len(schema):,} columns "
            f"(+{len(AUDIT_COLUMNS)} audit columns) but a {caps.name} table holds at most {caps.max_columns:,}. "
            "Keep the columns you need with a 'select' (or 'drop') transform step, or split the dataset"
        )


def column_comment(f: pa.Field) -> str | None:
    """The column comment a source attached to a field (``b"comment"`` metadata, e.g. IBM i column
    text); created with the table where the database keeps comments (PostgreSQL, MariaDB)."""
    text = (f.metadata or {}).get(b"comment")
    return text.decode("utf-8") if text else None


def with_audit(batch: pa.RecordBatch, audit: tuple[str, dt.datetime | str] | None) -> pa.RecordBatch:
    """The batch with the run id and load time appended as the two audit columns.

    The load time may be given as the text the database reads (the same for every row): formatting
    one string beats formatting a timestamp per row (a third of the CSV encoding time of a load).
    """
    if audit is None:
        return batch
    n = batch.num_rows
    run_id = pa.repeat(pa.scalar(audit[0], pa.string()), n)
    at = audit[1]
    loaded_at = pa.repeat(
        pa.scalar(at, pa.string()) if isinstance(at, str) else pa.scalar(at, pa.timestamp("us", tz="UTC")), n
    )
    return pa.RecordBatch.from_arrays([*batch.columns, run_id, loaded_at], names=[*batch.schema.names, *AUDIT_COLUMNS])


def sqlite_value(arr: pa.Array) -> pa.Array:
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
