"""A SQLAlchemy engine from an Airflow connection, for sources and targets, built by the providers' hooks.

The DB-API connections come from the Airflow provider of the database (``PostgresHook``,
``MySqlHook``, ``SqliteHook``), so every extra those providers document works as in any Airflow
DAG: ``sslmode``, ``sslrootcert``, ``sslcert`` / ``sslkey``, ``options``, ``application_name``,
``iam`` and ``sqlalchemy_scheme`` / ``sqlalchemy_query`` on PostgreSQL; ``charset``, ``ssl``,
``ssl_mode``, ``unix_socket``, ``client`` and ``iam`` on MySQL / MariaDB; URI query parameters
(``mode=ro`` …) on SQLite. SQLAlchemy then pools those connections (``creator=``): bulksync never
rebuilds a connection string of its own and so never drops an extra.

SQLite: writers open ``BEGIN IMMEDIATE`` transactions in WAL mode with a busy timeout, readers
(``read_only=True``, the ``sql`` source) plain deferred ones that take no write lock, so parallel
extract chunks read one file at once while a load writes it.
"""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)

# Airflow conn_type -> SQLAlchemy driver (the driver the provider's hook connects with)
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+mysqldb",
    "mariadb": "mysql+mysqldb",
    "sqlite": "sqlite",
    "mssql": "mssql+pyodbc",
}
MYSQL_CLIENTS = {"mysqlclient": "mysql+mysqldb", "mysql-connector-python": "mysql+mysqlconnector"}
# bulksync's own extras, not the driver's: never handed to a provider's connect()
OWN_EXTRAS = ("sqlalchemy_url", "connect_args")
SQLITE_BUSY_MS = 30_000
CONNECT_TIMEOUT_S = 10


class SqlAlchemyHook(BaseHook):
    """Build a SQLAlchemy engine for an Airflow connection of a SQL database.

    Supported ``conn_type`` values: ``postgres``, ``mysql``/``mariadb``, ``sqlite`` (the path in
    the connection's schema or host, e.g. ``sqlite:////abs/path.db``) and ``mssql``. Connections
    are opened by the provider's hook, with all of its documented extras. The ``extra`` may also
    hold ``connect_args`` (driver keywords added to the provider's) or ``sqlalchemy_url`` (a whole
    URL that replaces the connection's fields and bypasses the provider: its extras then do not
    apply).

    Args:
        conn_id: the Airflow connection id.
        read_only: the engine only reads (SQLite: deferred transactions that take no write lock).
    """

    conn_name_attr = "conn_id"
    default_conn_name = "bulksync_default"
    conn_type = "bulksync_sql"
    hook_name = "bulksync SQL (SQLAlchemy)"

    def __init__(self, conn_id: str, *, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.read_only = read_only

    @cached_property
    def connection(self) -> Any:
        """The Airflow connection (resolved from env vars, secrets backends or the metadata DB)."""
        return get_connection(self.conn_id)

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name (``postgresql``, ``sqlite``, ``mysql`` …)."""
        return str(self.url.get_backend_name())

    @cached_property
    def url(self) -> Any:
        """The SQLAlchemy URL (password included: never log it; use :meth:`describe`)."""
        conn = self.connection
        override = override_url(conn, self.conn_id)
        if override is not None:
            return override
        driver = DRIVERS.get((conn.conn_type or "").lower())
        if driver is None:
            raise ConfigurationError(
                f"connection {self.conn_id!r} has type {conn.conn_type!r}, which bulksync's SQL hook does not know; "
                f"use one of {', '.join(sorted(DRIVERS))} or set extra.sqlalchemy_url"
            )
        return provider_url(driver, conn, self.conn_id)

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
        return build_engine(self.connection, self.conn_id, self.url, read_only=self.read_only)

    def connect(self) -> Any:
        """Open a connection, turning "cannot reach" into a short :class:`SourceConnectionError`."""
        return open_connection(self.engine, self.describe())


def override_url(conn: Any, conn_id: str) -> Any:
    """``extra.sqlalchemy_url`` as a URL, ``None`` without one; a malformed one is a :class:`ConfigurationError`."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    text = (conn.extra_dejson or {}).get("sqlalchemy_url")
    if not text:
        return None
    try:
        return make_url(str(text))
    except (sa.exc.ArgumentError, ValueError) as exc:
        # the text may hold a password: name the problem, never echo the URL
        reason = "it does not have the form dialect+driver://user:password@host:port/database"
        if "port" in str(exc).lower():
            reason = "its port is not a number"
        raise ConfigurationError(
            f"connection {conn_id!r}: extra.sqlalchemy_url is not a valid SQLAlchemy URL ({reason}). Fix it, or "
            "remove it and fill the connection's host, port, login, password and schema instead"
        ) from None


def provider_url(driver: str, conn: Any, conn_id: str) -> Any:
    """The SQLAlchemy URL naming the dialect of the provider hook's connections (for messages and dialect)."""
    if driver.startswith("postgresql"):
        url = _provider_hook(conn, conn_id).sqlalchemy_url
        if url.drivername != "postgresql+psycopg":
            raise ConfigurationError(
                f"connection {conn_id!r}: extra.sqlalchemy_scheme {url.drivername!r} is not supported; bulksync "
                "reads and loads PostgreSQL with psycopg 3 (postgresql+psycopg): remove the extra"
            )
        return url
    if driver.startswith("mysql"):
        client = str((conn.extra_dejson or {}).get("client", "mysqlclient"))
        if client not in MYSQL_CLIENTS:
            raise ConfigurationError(
                f"connection {conn_id!r}: extra.client {client!r} is not one of {', '.join(MYSQL_CLIENTS)} "
                "(the clients of the MySQL provider)"
            )
        driver = MYSQL_CLIENTS[client]
    return connection_url(driver, conn)


def connection_url(driver: str, conn: Any) -> Any:
    """The SQLAlchemy URL of an Airflow connection for ``driver`` (a file path for SQLite)."""
    from sqlalchemy.engine import URL, make_url

    if driver == "sqlite":
        path = sqlite_path(conn)
        return make_url(f"sqlite:///{path}" if path else "sqlite://")
    return URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )


def sqlite_path(conn: Any) -> str:
    """The database file of a SQLite connection (``sqlite:////abs.db`` puts it in schema, JSON in host)."""
    return str(conn.schema or conn.host or "")


def build_engine(conn: Any, conn_id: str, url: Any, *, read_only: bool = False) -> Any:
    """An engine whose connections the provider's hook opens (or ``url`` alone for a ``sqlalchemy_url``).

    Args:
        conn: the Airflow connection.
        conn_id: its id, for messages.
        url: the URL of :func:`provider_url` or :func:`override_url`.
        read_only: SQLite only: deferred read transactions instead of ``BEGIN IMMEDIATE`` in WAL mode.
    """
    import sqlalchemy as sa

    extra = dict(conn.extra_dejson or {})
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    backend = url.get_backend_name()
    if extra.get("sqlalchemy_url"):
        if extra.get("connect_args"):
            kwargs["connect_args"] = extra["connect_args"]
    elif backend == "sqlite":
        kwargs["creator"] = _sqlite_creator(conn, conn_id)
    elif backend in ("postgresql", "mysql"):
        kwargs["creator"] = _provider_hook(conn, conn_id).get_conn
    elif extra.get("connect_args"):
        kwargs["connect_args"] = extra["connect_args"]
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ImportError, sa.exc.NoSuchModuleError, sa.exc.ArgumentError) as exc:
        raise ConfigurationError(
            f"connection {conn_id!r}: cannot build a SQLAlchemy engine for dialect {url.drivername!r} ({exc}). "
            "Install its driver or fix the connection type / extra.sqlalchemy_url"
        ) from None
    if backend == "sqlite":
        _sqlite_transactions(engine, read_only)
    return engine


def open_connection(engine: Any, described: str) -> Any:
    """``engine.connect()``, with "cannot reach" as a short :class:`SourceConnectionError`."""
    import sqlalchemy as sa

    try:
        return engine.connect()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise SourceConnectionError(
            f"cannot connect to {described}: {reason}. Check that the database is up and the "
            "connection's host, port, credentials and extras (sslmode …) are right"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"{described} is misconfigured: {exc}") from None
    except (TypeError, ValueError, sa.exc.ProgrammingError) as exc:  # a driver refusing an extra's keyword
        raise ConfigurationError(
            f"{described} is misconfigured: the driver refused the connection's options ({exc}). "
            "Check the connection's extra against the provider's documented keys"
        ) from None


def _provider_hook(conn: Any, conn_id: str) -> Any:
    """The provider's hook of a PostgreSQL or MySQL connection, with bulksync's defaults and own extras applied.

    bulksync's own extras (``sqlalchemy_url``, ``connect_args``) are taken out; ``connect_args``
    joins the driver keywords; ``connect_timeout`` defaults to 10 s on PostgreSQL.
    """
    conn = copy.deepcopy(conn)
    extra = dict(conn.extra_dejson or {})
    connect_args = extra.get("connect_args") or {}
    for key in OWN_EXTRAS:
        extra.pop(key, None)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        extra = {**extra, **connect_args}
        extra.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        conn.extra = json.dumps(extra)
        return PostgresHook(postgres_conn_id=conn_id, connection=conn)
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    conn.extra = json.dumps(extra)
    hook = MySqlHook(mysql_conn_id=conn_id, connection=conn)
    if connect_args:  # driver keywords beyond the provider's: added to the config it builds
        for name in ("_get_conn_config_mysql_client", "_get_conn_config_mysql_connector_python"):
            built = getattr(hook, name)
            setattr(hook, name, lambda c, built=built: {**built(c), **connect_args})
    return hook


def _sqlite_creator(conn: Any, conn_id: str) -> Any:
    """Open SQLite connections at the URI ``SqliteHook`` builds (so its URI query extras apply).

    The provider misreads the ``sqlite:////abs/path.db`` form (the path lands in the schema), so the
    hook is given the path as its host, as its documentation has it.
    """
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    conn = copy.deepcopy(conn)
    path = sqlite_path(conn)
    conn.host, conn.schema = path, None
    extra = {k: v for k, v in (conn.extra_dejson or {}).items() if k not in OWN_EXTRAS}
    conn.extra = json.dumps(extra) if extra else None
    hook = SqliteHook(sqlite_conn_id=conn_id, connection=conn)
    hook.get_connection = lambda _conn_id: conn  # type: ignore[method-assign]  # get_uri looks the id up again
    uri = hook.get_uri().replace("sqlite:///", "file:")  # as SqliteHook.get_conn does

    def connect() -> sqlite3.Connection:
        # check_same_thread off: SQLAlchemy's pool hands connections to whichever thread asks
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=SQLITE_BUSY_MS / 1000)

    return connect


def _sqlite_transactions(engine: Any, read_only: bool) -> None:
    """Writers: WAL, a busy timeout and ``BEGIN IMMEDIATE`` (DDL transactional too). Readers: plain ``BEGIN``.

    pysqlite only opens transactions before DML by itself; bulksync opens them explicitly so DDL is
    transactional. A reader's deferred transaction takes only a shared lock (a snapshot in WAL mode),
    so readers never wait for each other and, in WAL mode, neither for a writer.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        if not read_only:
            try:
                dbapi_conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:  # another connection holds the file: it keeps its mode
                log.debug("SQLite journal_mode WAL not set now: %s", exc)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
