"""A SQLAlchemy engine from an Airflow connection, for sources and targets."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)

# Airflow conn_type -> SQLAlchemy driver
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
    "mssql": "mssql+pyodbc",
}


class SqlAlchemyHook(BaseHook):
    """Build a SQLAlchemy engine for an Airflow connection of a SQL database.

    Supported ``conn_type`` values: ``postgres``, ``mysql``/``mariadb``, ``sqlite`` (the path in
    the connection's schema, e.g. ``sqlite:////abs/path.db``) and ``mssql``. The connection's
    ``extra`` may hold ``sqlalchemy_url`` to override the URL, and ``connect_args``.

    Args:
        conn_id: the Airflow connection id.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "bulksync_default"
    conn_type = "bulksync_sql"
    hook_name = "bulksync SQL (SQLAlchemy)"

    def __init__(self, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def connection(self) -> Any:
        """The Airflow connection (resolved from env vars, secrets backends or the metadata DB)."""
        return get_connection(self.conn_id)

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name (``postgresql``, ``sqlite``, ``mysql`` …)."""
        return self.url.get_backend_name()

    @cached_property
    def url(self) -> Any:
        """The SQLAlchemy URL (password included: never log it; use :meth:`describe`)."""
        from sqlalchemy.engine import make_url

        conn = self.connection
        extra = conn.extra_dejson or {}
        if extra.get("sqlalchemy_url"):
            return make_url(extra["sqlalchemy_url"])
        driver = DRIVERS.get((conn.conn_type or "").lower())
        if driver is None:
            raise ConfigurationError(
                f"connection {self.conn_id!r} has type {conn.conn_type!r}, which bulksync's SQL hook does not know; "
                f"use one of {', '.join(sorted(DRIVERS))} or set extra.sqlalchemy_url"
            )
        return connection_url(driver, conn)

    def describe(self) -> str:
        """``conn_id (dialect://host:port/db)`` without credentials, for messages."""
        url = self.url
        where = (
            url.database if url.get_backend_name() == "sqlite" else f"{url.host}:{url.port or ''}/{url.database or ''}"
        )
        return f"connection {self.conn_id!r} ({url.get_backend_name()} {where})"

    @cached_property
    def engine(self) -> Any:
        """A SQLAlchemy engine (created lazily, no connection opened yet)."""
        import sqlalchemy as sa

        extra = self.connection.extra_dejson or {}
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if extra.get("connect_args"):
            kwargs["connect_args"] = extra["connect_args"]
        elif self.dialect == "postgresql" or self.dialect == "mysql":
            kwargs["connect_args"] = {"connect_timeout": int(extra.get("connect_timeout", 10))}
        engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _transactional_sqlite(engine)
        return engine

    def connect(self) -> Any:
        """Open a connection, turning "cannot reach" into a short :class:`SourceConnectionError`."""
        import sqlalchemy as sa

        try:
            return self.engine.connect()
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise SourceConnectionError(
                f"cannot connect to {self.describe()}: {reason}. Check that the database is up and the "
                "connection's host, port and credentials are right"
            ) from None
        except sa.exc.ArgumentError as exc:
            raise ConfigurationError(f"{self.describe()} is misconfigured: {exc}") from None


def connection_url(driver: str, conn: Any) -> Any:
    """The SQLAlchemy URL of an Airflow connection for ``driver`` (a file path for SQLite)."""
    from sqlalchemy.engine import URL, make_url

    if driver == "sqlite":
        path = conn.schema or conn.host or ""
        return make_url(f"sqlite:///{path}" if path else "sqlite://")
    return URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )


def _transactional_sqlite(engine: Any) -> None:
    """Make SQLite DDL transactional too (pysqlite only opens transactions before DML by itself)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA busy_timeout = 30000")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
