"""``IbmiHook``: an Airflow connection to an IBM i (Db2 for i) in, a SQLAlchemy engine out.

Production: connection type ``ibmi`` through the ``sqlalchemy-ibmi`` dialect over pyodbc and the
IBM i Access ODBC driver (install the ``ibmi`` extra and the driver package); ``ibm_db_sa`` (Db2
Connect) is the alternative (``extra.driver: ibm_db_sa``). The session is read-only
(``CONNTYPE=2``-equivalent) and reads use uncommitted read.

Emulation: a connection of type ``postgres``, ``mysql``/``mariadb`` or ``sqlite`` holding
IBM-i-shaped data is accepted too; everything above the driver (catalogue, conventions, windows,
chunks) then runs against it. Tests and the demo use this.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any, ClassVar

from airflow.providers.common.sql.hooks.sql import DbApiHook

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.base import get_connection
from bulksync.hooks.sql import DRIVERS, build_engine, override_url, provider_url

log = logging.getLogger(__name__)

DB2I = "db2i"
EMULATED = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


class IbmiHook(DbApiHook):
    """Connect to an IBM i (or an emulating PostgreSQL / MariaDB / SQLite) through SQLAlchemy.

    Connection fields (type ``ibmi``): host = the system's host name, login = user profile,
    password, schema = default library, port = unused by ODBC (kept for ``ibm_db_sa``: 446 or
    446). Extra (JSON): ``driver`` (``sqlalchemy-ibmi`` default, or ``ibm_db_sa``), ``rdb``
    (relational database name, for IASPs), ``url_query`` (further URL options of the dialect:
    ``library_list``, ``use_system_naming``, ``trim_char_fields``, ``timeout`` …),
    ``sqlalchemy_url`` (override). sqlalchemy-ibmi connects through the ODBC driver registered as
    ``IBM i Access ODBC Driver``.

    Args:
        ibmi_conn_id: the Airflow connection id.
        read_only: open the session read-only (SELECT only). Reading a member other than the first
            needs ``CREATE ALIAS`` in ``QTEMP``, so the source turns it off for those datasets.
    """

    conn_name_attr = "ibmi_conn_id"
    default_conn_name = "ibmi_default"
    conn_type = "ibmi"
    hook_name = "IBM i (Db2 for i, AS/400)"
    supports_autocommit = False
    _test_connection_sql = "SELECT 1 FROM SYSIBM.SYSDUMMY1"

    CONN_FIELDS: ClassVar[dict[str, dict[str, str]]] = {
        "driver": {"type": "string", "description": "sqlalchemy-ibmi (default, over pyodbc) or ibm_db_sa"},
        "rdb": {"type": "string", "description": "Relational database name (only for an IASP)"},
        "url_query": {"type": "object", "description": "Further SQLAlchemy URL options of the dialect"},
    }
    """The connection's extra fields (as a provider's ``conn-fields`` would declare them)."""

    def __init__(self, ibmi_conn_id: str = default_conn_name, *, read_only: bool = True, **kwargs: Any) -> None:
        super().__init__(ibmi_conn_id=ibmi_conn_id, **kwargs)
        self.ibmi_conn_id = ibmi_conn_id
        self.read_only = read_only

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels and placeholders of the connection form."""
        return {
            "hidden_fields": [],
            "relabeling": {"host": "System (host name)", "login": "User profile", "schema": "Default library"},
            "placeholders": {
                "host": "as400.example.com",
                "schema": "ACMELIB",
                "port": "leave empty for ODBC",
                "extra": '{"driver": "sqlalchemy-ibmi", "url_query": {"library_list": "ACMELIB,QGPL"}}',
            },
        }

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """The Airflow connection (a :class:`ConfigurationError` says where to define a missing one)."""
        return get_connection(conn_id)

    @property
    def backend(self) -> str:
        """``db2i`` for an IBM i, else the emulating database's dialect (``postgresql``, ``mysql``, ``sqlite``)."""
        conn_type = (self.connection.conn_type or "").lower()
        if conn_type == "ibmi":
            return DB2I
        if conn_type in EMULATED:
            return EMULATED[conn_type]
        raise ConfigurationError(
            f"connection {self.ibmi_conn_id!r} has type {conn_type!r}: use type ibmi for an IBM i "
            "(or postgres / mysql / sqlite for an emulating database)"
        )

    @property
    def sqlalchemy_url(self) -> Any:
        """The SQLAlchemy URL (password included: never log it; use :meth:`describe`)."""
        from sqlalchemy.engine import URL

        conn = self.connection
        extra = conn.extra_dejson or {}
        override = override_url(conn, self.ibmi_conn_id)
        if override is not None:
            return override
        backend = self.backend
        if backend == DB2I:
            driver = str(extra.get("driver", "sqlalchemy-ibmi")).lower()
            query = {str(k): str(v) for k, v in (extra.get("url_query") or {}).items()}
            if driver in ("sqlalchemy-ibmi", "ibmi"):
                if self.read_only:
                    query.setdefault("readonly", "True")
                if conn.schema:
                    query.setdefault("current_schema", conn.schema.upper())
                return URL.create(
                    "ibmi",
                    username=conn.login or None,
                    password=conn.password or None,
                    host=conn.host or None,
                    database=extra.get("rdb") or None,
                    query=query,
                )
            if driver in ("ibm_db_sa", "ibm_db", "db2"):
                return URL.create(
                    "db2+ibm_db",
                    username=conn.login or None,
                    password=conn.password or None,
                    host=conn.host or None,
                    port=conn.port or 446,
                    database=extra.get("rdb") or conn.host,
                    query=query,
                )
            raise ConfigurationError(
                f"connection {self.ibmi_conn_id!r}: extra.driver {driver!r} is unknown; "
                "use sqlalchemy-ibmi or ibm_db_sa"
            )
        return provider_url(DRIVERS[(conn.conn_type or "").lower()], conn, self.ibmi_conn_id)

    def describe(self) -> str:
        """``connection 'x' (db2i as400.example.com)`` without credentials, for messages."""
        url = self.sqlalchemy_url
        where = url.database if url.get_backend_name() == "sqlite" else f"{url.host or ''}/{url.database or ''}"
        return f"connection {self.ibmi_conn_id!r} ({self.backend} {where})"

    @cached_property
    def engine(self) -> Any:
        """A SQLAlchemy engine (created lazily; the driver is imported only now)."""
        import sqlalchemy as sa

        if self.backend != DB2I:  # an emulating database: connections opened by its provider's hook
            return build_engine(self.connection, self.ibmi_conn_id, self.sqlalchemy_url, read_only=self.read_only)
        extra = self.connection.extra_dejson or {}
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if extra.get("connect_args"):
            kwargs["connect_args"] = extra["connect_args"]
        try:
            return sa.create_engine(self.sqlalchemy_url, **kwargs)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(
                f"{self.describe()}: the driver is not installed ({exc}). Install the ibmi extra "
                "(pip install 'bulksync[ibmi]') and the IBM i Access ODBC driver package"
            ) from None

    def get_conn(self) -> Any:
        """A DB-API connection (for DbApiHook's ``run`` / ``get_records``)."""
        return self.engine.raw_connection()

    def connect(self) -> Any:
        """Open a SQLAlchemy connection, read-only; "cannot reach" becomes :class:`SourceConnectionError`."""
        import sqlalchemy as sa

        try:
            conn = self.engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise SourceConnectionError(
                f"cannot connect to {self.describe()}: {reason}. Check that the system is up and the "
                "connection's host, user profile and password are right"
            ) from None
        except sa.exc.ArgumentError as exc:
            raise ConfigurationError(f"{self.describe()} is misconfigured: {exc}") from None
        return self._read_only(conn)

    def _read_only(self, conn: Any) -> Any:
        """Make the session read-only (uncommitted read where the database has it)."""
        backend = self.backend
        if backend == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        elif backend == "mysql":
            # CHAR values arrive padded, as an IBM i returns them
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')")
            conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
            conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
            conn.commit()
        return conn

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        if "engine" in self.__dict__:
            self.engine.dispose()
