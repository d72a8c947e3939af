"""Serialising loads of one (target table, window): transaction-scoped locks of the target database.

Two loads of the same window at once (two runs of one interval, a zombie task beside its Airflow
retry) must not interleave: each deletes what the window held and inserts, and under READ
COMMITTED neither sees the other's uncommitted rows, so both copies would stay. Every load takes,
inside its own transaction (released by its commit, its rollback, or the death of its session):

- ``append`` / ``interval``: a *shared* lock on the table and an *exclusive* lock on (table,
  window): loads of other windows run side by side, loads of the same window take turns;
- ``merge`` / ``replace``, and any load that creates the table: an *exclusive* lock on the table
  (a merge's keys may be in any window; a replace empties the whole table).

PostgreSQL: ``pg_advisory_xact_lock`` / ``pg_advisory_xact_lock_shared`` on 64-bit hashes of the
names (``lock_timeout`` bounds the wait: a transient error, retried). SQLite: the load's
transaction is ``BEGIN IMMEDIATE`` (the database's single write lock, waited for up to the busy
timeout), which already serialises every writer. MariaDB: ``GET_LOCK`` is session-scoped, so the
equivalent is a row lock of ``bulksync_load_locks`` (``SELECT … FOR UPDATE`` / ``LOCK IN SHARE
MODE``), held until the transaction ends.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

log = logging.getLogger(__name__)


def lock_names(table: str, window_key: str, exclusive_table: bool) -> list[tuple[str, bool]]:
    """The (lock name, exclusive) pairs a load takes, in the order it takes them (table first)."""
    names = [(f"bulksync:load:{table}", exclusive_table)]
    if not exclusive_table:
        names.append((f"bulksync:load:{table}:{window_key}", True))
    return names


def lock_load(conn: sa.Connection, table: str, window_key: str, *, exclusive_table: bool) -> None:
    """Take the load locks of (``table``, ``window_key``) in the connection's open transaction."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        for name, exclusive in lock_names(table, window_key, exclusive_table):
            _pg_lock(conn, name, exclusive)
    elif dialect == "mysql":
        for name, exclusive in lock_names(table, window_key, exclusive_table):
            _row_lock(conn, name, exclusive)
    elif dialect == "sqlite":
        raw = conn.connection.driver_connection
        if raw is not None and not raw.in_transaction:  # pragma: no cover - the hook begins IMMEDIATE
            raise RuntimeError("a SQLite load must run in a BEGIN IMMEDIATE transaction (see hooks.sql)")
    else:
        log.warning("no load lock for dialect %s: loads of one window must not run at once", dialect)


def _pg_lock(conn: sa.Connection, name: str, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    got = conn.exec_driver_sql(f"SELECT pg_try_{fn[3:]}(hashtextextended(%(n)s, 0))", {"n": name}).scalar()
    if got:
        return
    log.info("waiting for another load holding %s (%s lock)", name, "exclusive" if exclusive else "shared")
    conn.exec_driver_sql(f"SELECT {fn}(hashtextextended(%(n)s, 0))", {"n": name})
    log.info("got %s", name)


LOCK_TABLE = "bulksync_load_locks"


def ensure_lock_table(conn: sa.Connection) -> None:
    """MariaDB: create the lock table (DDL commits implicitly there, so never inside a load)."""
    if conn.dialect.name == "mysql":
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (lock_name VARCHAR(512) PRIMARY KEY) ENGINE=InnoDB"
        )


def _row_lock(conn: sa.Connection, name: str, exclusive: bool) -> None:
    conn.exec_driver_sql(f"INSERT IGNORE INTO {LOCK_TABLE} (lock_name) VALUES (%(n)s)", {"n": name})
    mode = "FOR UPDATE" if exclusive else "LOCK IN SHARE MODE"
    conn.exec_driver_sql(f"SELECT lock_name FROM {LOCK_TABLE} WHERE lock_name = %(n)s {mode}", {"n": name})
