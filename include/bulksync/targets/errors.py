"""Database errors of a load as bulksync errors: terminal or transient, never the SQL statement.

A driver error escaping as such would be retried by Airflow as if transient and print the whole
statement (a ``CREATE TABLE`` of thousands of columns) into the task log. Every error a load
raises goes through :func:`translated_errors`: the message names the table, keeps the database's
own words (first lines, bounded) and says whether the task will retry.

Classification, by SQLSTATE where the driver gives one (PostgreSQL, https://www.postgresql.org/docs/
current/errcodes-appendix.html), else by the SQLite result code or the MariaDB error number:
transient are lost connections (08), serialisation failures and deadlocks (40), insufficient
resources such as a full disk (53), lock timeouts (55P03), shutdowns and cancels (57), I/O errors
(58), SQLite's BUSY / LOCKED / FULL / IOERR, MariaDB's lock wait timeout (1205), deadlock (1213),
lost connection (2006, 2013) and full table or disk (1114, 1021); everything else is terminal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from bulksync.errors import BulksyncError, DataError, TargetSchemaError, TransientError

MAX_DETAIL = 1000
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_STATES = {"55P03", "55006"}
_SQLITE_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PROTOCOL")
_MYSQL_TRANSIENT = {1021, 1114, 1205, 1213, 2002, 2003, 2006, 2013}


class TargetUnavailableError(TransientError):
    """The target database could not take the load right now (lock timeout, full disk, lost
    connection …); nothing was loaded and the task retries."""


def _detail(orig: Any) -> str:
    text = str(orig).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    detail = " ".join(lines[:4])
    return detail if len(detail) <= MAX_DETAIL else detail[:MAX_DETAIL] + " …"


def _is_transient(orig: Any) -> bool:
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state:
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(_SQLITE_TRANSIENT)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_TRANSIENT
    text = str(orig).lower()
    return any(w in text for w in ("deadlock", "could not serialize", "connection", "timeout", "locked"))


def db_error(orig: Any, table: str) -> BulksyncError:
    """The bulksync error of a driver exception raised while loading ``table``."""
    detail = _detail(orig)
    if _is_transient(orig):
        hint = ""
        if getattr(orig, "sqlstate", None) == "55P03":
            hint = " (another load of this table or window held its lock past lock_timeout)"
        return TargetUnavailableError(f"loading {table} failed, nothing was loaded; it will be retried{hint}: {detail}")
    state = getattr(orig, "sqlstate", None) or ""
    cls = DataError if state[:2] in ("22", "23") else TargetSchemaError
    return cls(f"loading {table} failed, nothing was loaded (the transaction was rolled back): {detail}")


@contextlib.contextmanager
def translated_errors(table: str) -> Iterator[None]:
    """Turn driver / SQLAlchemy errors raised inside the block into bulksync errors."""
    try:
        yield
    except BulksyncError:
        raise
    except sa.exc.DBAPIError as exc:
        raise db_error(exc.orig if exc.orig is not None else exc, table) from None
    except sa.exc.StatementError as exc:
        raise TargetSchemaError(f"loading {table} failed, nothing was loaded: {_detail(exc.orig or exc)}") from None
    except Exception as exc:
        if _is_driver_error(exc):
            raise db_error(exc, table) from None
        raise


def _is_driver_error(exc: Exception) -> bool:
    """A DB-API error raised by a driver directly (e.g. psycopg's COPY outside SQLAlchemy)."""
    module = type(exc).__module__.split(".")[0]
    return module in ("psycopg", "sqlite3", "pymysql") and any(c.__name__ == "Error" for c in type(exc).__mro__)
