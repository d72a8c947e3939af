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
timeout), which already serialises every writer. (MariaDB has no target kind yet; its ``GET_LOCK``
is session-scoped, so a MariaDB target would need row locks of a lock table instead.)
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
