"""Audit tables in the target: one row per dataset run, one row per expectation result.

PostgreSQL: ``bulksync_audit.runs``, ``bulksync_audit.quality`` and ``bulksync_audit.writeback_errors``
(a write-back's refused records grouped by status code); databases without schemas (SQLite):
``bulksync_runs``, ``bulksync_quality`` and ``bulksync_writeback_errors``. Rows are replaced per (run id, tenant,
pipeline, dataset), so a retried reconcile leaves one record of the run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa

from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.quality.model import RunRecord

log = logging.getLogger(__name__)

_RUN_COLUMNS: list[tuple[str, Any]] = [
    ("tenant", sa.Text()),
    ("pipeline", sa.Text()),
    ("dataset", sa.Text()),
    ("run_id", sa.Text()),
    ("interval", sa.Text()),
    ("window_start", sa.DateTime(timezone=True)),
    ("window_end", sa.DateTime(timezone=True)),
    ("status", sa.Text()),
    ("quality_status", sa.Text()),
    ("source_count", sa.BigInteger()),
    ("staged", sa.BigInteger()),
    ("quarantined", sa.BigInteger()),
    ("rejected", sa.BigInteger()),
    ("loaded", sa.BigInteger()),
    ("deletions", sa.BigInteger()),
    ("inserted", sa.BigInteger()),
    ("updated", sa.BigInteger()),
    ("deleted", sa.BigInteger()),
    ("failed", sa.BigInteger()),
    ("unprocessed", sa.BigInteger()),
    ("reconciled", sa.Boolean()),
    ("problems", sa.Text()),
    ("target", sa.Text()),
    ("durations", sa.Text()),
    ("error", sa.Text()),
    ("finished_at", sa.DateTime(timezone=True)),
]
_QUALITY_COLUMNS: list[tuple[str, Any]] = [
    ("tenant", sa.Text()),
    ("pipeline", sa.Text()),
    ("dataset", sa.Text()),
    ("run_id", sa.Text()),
    ("suite", sa.Text()),
    ("expectation", sa.Text()),
    ("column_name", sa.Text()),
    ("severity", sa.Text()),
    ("success", sa.Boolean()),
    ("unexpected_count", sa.BigInteger()),
    ("unexpected_percent", sa.Float()),
    ("samples", sa.Text()),
    ("error", sa.Text()),
    ("finished_at", sa.DateTime(timezone=True)),
]


_WRITEBACK_COLUMNS: list[tuple[str, Any]] = [
    ("tenant", sa.Text()),
    ("pipeline", sa.Text()),
    ("dataset", sa.Text()),
    ("run_id", sa.Text()),
    ("object", sa.Text()),
    ("operation", sa.Text()),
    ("status_code", sa.Text()),
    ("records", sa.BigInteger()),
    ("fields", sa.Text()),
    ("sample_message", sa.Text()),
    ("finished_at", sa.DateTime(timezone=True)),
]


def _tables(dialect: str) -> tuple[sa.Table, sa.Table, sa.Table]:
    md = sa.MetaData()
    schema = "bulksync_audit" if dialect == "postgresql" else None
    prefix = "" if schema else "bulksync_"
    runs = sa.Table(f"{prefix}runs", md, *[sa.Column(n, t) for n, t in _RUN_COLUMNS], schema=schema)
    quality = sa.Table(f"{prefix}quality", md, *[sa.Column(n, t) for n, t in _QUALITY_COLUMNS], schema=schema)
    errors = sa.Table(f"{prefix}writeback_errors", md, *[sa.Column(n, t) for n, t in _WRITEBACK_COLUMNS], schema=schema)
    return runs, quality, errors


def _add_missing_columns(conn: sa.Connection, table: sa.Table) -> None:
    """Audit tables created by an earlier version get the columns added since (failed, unprocessed)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table.name, schema=table.schema)}
    for column in table.columns:
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            name = f"{table.schema}.{table.name}" if table.schema else table.name
            conn.exec_driver_sql(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {kind}')


def record_run(conn_id: str, record: RunRecord) -> None:
    """Write a run's record into the audit tables of the target connection (one transaction)."""
    hook = SqlAlchemyHook(conn_id)
    runs, quality, errors = _tables(hook.dialect)
    rec = record.reconciliation
    q = record.quality
    row = {
        "tenant": record.tenant,
        "pipeline": record.pipeline,
        "dataset": record.dataset,
        "run_id": record.run_id,
        "interval": record.interval,
        "window_start": record.window_start,
        "window_end": record.window_end,
        "status": record.status,
        "quality_status": q.status if q else None,
        "source_count": rec.source_count if rec else None,
        "staged": rec.staged if rec else None,
        "quarantined": rec.quarantined if rec else (q.rows_quarantined if q else None),
        "rejected": rec.rejected if rec else None,
        "loaded": rec.loaded if rec else None,
        "deletions": rec.deletions if rec else None,
        "inserted": record.inserted,
        "updated": record.updated,
        "deleted": record.deleted,
        "failed": record.failed,
        "unprocessed": record.unprocessed,
        "reconciled": rec.ok if rec else None,
        "problems": "; ".join(rec.problems) if rec else None,
        "target": record.target,
        "durations": json.dumps(record.durations),
        "error": record.error,
        "finished_at": record.finished_at,
    }
    key = (
        (runs.c.run_id == record.run_id)
        & (runs.c.tenant == record.tenant)
        & (runs.c.pipeline == record.pipeline)
        & (runs.c.dataset == record.dataset)
    )
    qkey = (
        (quality.c.run_id == record.run_id)
        & (quality.c.tenant == record.tenant)
        & (quality.c.pipeline == record.pipeline)
        & (quality.c.dataset == record.dataset)
    )
    try:
        with hook.connect() as conn, conn.begin():
            if runs.schema:
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {runs.schema}")
            runs.metadata.create_all(conn, checkfirst=True)
            _add_missing_columns(conn, runs)
            ekey = (
                (errors.c.run_id == record.run_id)
                & (errors.c.tenant == record.tenant)
                & (errors.c.pipeline == record.pipeline)
                & (errors.c.dataset == record.dataset)
            )
            conn.execute(runs.delete().where(key))
            conn.execute(quality.delete().where(qkey))
            conn.execute(errors.delete().where(ekey))
            conn.execute(runs.insert(), [row])
            wb = record.writeback or {}
            if wb.get("errors_by_code"):
                conn.execute(
                    errors.insert(),
                    [
                        {
                            "tenant": record.tenant,
                            "pipeline": record.pipeline,
                            "dataset": record.dataset,
                            "run_id": record.run_id,
                            "object": wb.get("object"),
                            "operation": wb.get("operation"),
                            "status_code": e["code"],
                            "records": e["count"],
                            "fields": ",".join(e.get("fields", [])),
                            "sample_message": e.get("sample"),
                            "finished_at": record.finished_at,
                        }
                        for e in wb["errors_by_code"]
                    ],
                )
            if q:
                conn.execute(
                    quality.insert(),
                    [
                        {
                            "tenant": record.tenant,
                            "pipeline": record.pipeline,
                            "dataset": record.dataset,
                            "run_id": record.run_id,
                            "suite": q.suite,
                            "expectation": o.expectation,
                            "column_name": o.column,
                            "severity": o.severity,
                            "success": o.success,
                            "unexpected_count": o.unexpected_count,
                            "unexpected_percent": o.unexpected_percent,
                            "samples": json.dumps(o.samples, default=str),
                            "error": o.error,
                            "finished_at": record.finished_at,
                        }
                        for o in q.expectations
                    ],
                )
    finally:
        hook.engine.dispose()
    log.info(
        "audit: recorded %s run %s of %s.%s in %s",
        record.status,
        record.run_id,
        record.pipeline,
        record.dataset,
        hook.describe(),
    )
