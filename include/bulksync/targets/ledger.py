"""The load ledger: which committed staging partition each load wrote into a target table.

One row per (target table, tenant, pipeline, dataset, interval), written in the load's own
transaction, so it can never disagree with the data: ``bulksync_audit.loads`` on PostgreSQL,
``bulksync_loads`` where there are no schemas (SQLite, MariaDB). A load first reads its row (after
taking the load lock, so two loads of one window see each other's commits) and then:

- the same committed partition (same manifest checksum) was loaded already: nothing to do, the
  load is reported as ``already_loaded`` with the counts of the load that did it (a task retried
  after its commit, a zombie beside its retry, a cleared load task);
- an older extract of the window was loaded: the new load replaces what that load wrote (the
  rows carrying its run id and load time in the audit columns), in the same transaction;
- a *newer* extract was loaded already (a zombie holding an old partition): nothing to do, the
  load is reported as ``superseded``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

LEDGER_SCHEMA = "bulksync_audit"
LEDGER_TABLE = "loads"
FLAT_LEDGER_TABLE = "bulksync_loads"


@dataclass(frozen=True)
class PartitionRef:
    """The committed staging output a load reads, as the ledger identifies it.

    Attributes:
        tenant, pipeline, dataset: whose partition it is.
        interval: the partition's window key (``20260101T000000Z_20260102T000000Z``, ``full``).
        manifest_sha256: checksum of the manifest the load reads (a new extract or transform of the
            window has a new one).
        committed_at: when that manifest was committed (orders two extracts of one window).
        run_id, try_number: the run and try loading it.
    """

    tenant: str
    pipeline: str
    dataset: str
    interval: str
    manifest_sha256: str
    committed_at: dt.datetime
    run_id: str
    try_number: int | None = None
    replaces_previous: bool = True
    """Whether this partition holds the whole window (a new extract of it replaces what the previous
    one wrote); False for sources staging only what arrived since the last run (file drops)."""


@dataclass(frozen=True)
class LedgerEntry:
    """The row of one (table, partition) in the ledger: the last load that wrote it."""

    load_id: str
    manifest_sha256: str
    committed_at: dt.datetime
    run_id: str
    rows_loaded_at: str
    """The ``_bulksync_loaded_at`` value of the rows that load wrote, as the database stores it."""
    mode: str
    rows: int
    inserted: int
    updated: int
    deleted: int
    applied_deletes: int
    loaded_at: dt.datetime


def ledger_key(table: str, ref: PartitionRef) -> str:
    """The ledger's primary key: a digest of (target table, tenant, pipeline, dataset, interval)."""
    raw = "\x1f".join((table, ref.tenant, ref.pipeline, ref.dataset, ref.interval))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def ledger_table(dialect: str) -> sa.Table:
    """The ledger's table definition for a dialect."""
    schema = LEDGER_SCHEMA if dialect == "postgresql" else None
    name = LEDGER_TABLE if schema else FLAT_LEDGER_TABLE
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("ledger_key", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("target_table", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("load_id", sa.String(36), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("try_number", sa.Integer()),
        sa.Column("rows_loaded_at", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("inserted", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.BigInteger(), nullable=False),
        sa.Column("applied_deletes", sa.BigInteger(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def ensure_ledger(conn: sa.Connection) -> sa.Table:
    """Create the ledger (and its schema) if missing, in the caller's (short) transaction."""
    dialect = conn.dialect.name
    table = ledger_table(dialect)
    if dialect == "postgresql":
        # two first loads at once would race on CREATE: the creators take turns
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtextextended('bulksync:ledger-ddl', 0))")
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA}")
    table.metadata.create_all(conn, checkfirst=True)
    return table


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite keeps times as text
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def read_entry(conn: sa.Connection, table: sa.Table, key: str) -> LedgerEntry | None:
    """The ledger row of ``key``, if a load recorded one."""
    row = conn.execute(sa.select(table).where(table.c.ledger_key == key)).mappings().first()
    if row is None:
        return None
    return LedgerEntry(
        load_id=row["load_id"],
        manifest_sha256=row["manifest_sha256"],
        committed_at=_aware(row["committed_at"]),
        run_id=row["run_id"],
        rows_loaded_at=row["rows_loaded_at"],
        mode=row["mode"],
        rows=int(row["rows"]),
        inserted=int(row["inserted"]),
        updated=int(row["updated"]),
        deleted=int(row["deleted"]),
        applied_deletes=int(row["applied_deletes"]),
        loaded_at=_aware(row["loaded_at"]),
    )


def write_entry(
    conn: sa.Connection, table: sa.Table, key: str, target_table: str, ref: PartitionRef, entry: LedgerEntry
) -> None:
    """Record ``entry`` as the load of ``ref`` into ``target_table`` (replacing the previous one)."""
    conn.execute(table.delete().where(table.c.ledger_key == key))
    conn.execute(
        table.insert(),
        [
            {
                "ledger_key": key,
                "target_table": target_table,
                "tenant": ref.tenant,
                "pipeline": ref.pipeline,
                "dataset": ref.dataset,
                "interval": ref.interval,
                "load_id": entry.load_id,
                "manifest_sha256": entry.manifest_sha256,
                "committed_at": entry.committed_at,
                "run_id": entry.run_id,
                "try_number": ref.try_number,
                "rows_loaded_at": entry.rows_loaded_at,
                "mode": entry.mode,
                "rows": entry.rows,
                "inserted": entry.inserted,
                "updated": entry.updated,
                "deleted": entry.deleted,
                "applied_deletes": entry.applied_deletes,
                "loaded_at": entry.loaded_at,
            }
        ],
    )


def forget_table(conn: sa.Connection, table: sa.Table, target_table: str) -> int:
    """Drop the ledger rows of a table that no longer exists (it was dropped and is created anew)."""
    return int(conn.execute(table.delete().where(table.c.target_table == target_table)).rowcount or 0)


def forget_other_windows(conn: sa.Connection, table: sa.Table, target_table: str, key: str) -> int:
    """After a ``replace``: the table holds only this load's rows, so the other windows' rows are gone."""
    stmt = table.delete().where((table.c.target_table == target_table) & (table.c.ledger_key != key))
    return int(conn.execute(stmt).rowcount or 0)
