"""Shared fixtures: an isolated Airflow home, and real databases created and dropped per test.

Tests that need a service skip when it is missing, unless ``BULKSYNC_REQUIRE_SERVICES=1`` (set by
``.ci/run``), in which case they fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.sandbox_salesforce", "tests.azurite"]

ROOT = Path(__file__).resolve().parents[1]
PG_DSN = os.environ.get("BULKSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
MARIADB_DSN = os.environ.get("BULKSYNC_TEST_MARIADB", "mysql://root@127.0.0.1:3306")


def _isolated_airflow_home(tmp: Path) -> None:
    os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


_isolated_airflow_home(Path(os.environ.get("PYTEST_TMP_AIRFLOW", f"/tmp/bulksync-tests-{os.getpid()}")))


def service_missing(reason: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if os.environ.get("BULKSYNC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Staging and home under tmp_path."""
    monkeypatch.setenv("BULKSYNC_STAGING_ROOT", str(tmp_path / "staging"))
    monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path))
    return monkeypatch


def create_pg_database(prefix: str) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database: its SQLAlchemy URL (psycopg) and a function dropping it."""
    import sqlalchemy as sa

    admin = sa.create_engine(
        PG_DSN.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        service_missing(f"PostgreSQL at {PG_DSN} is not reachable: {exc.orig}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return f"{PG_DSN.replace('postgresql://', 'postgresql+psycopg://')}/{name}", drop


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards), also as connection ``test_pg``."""
    url, drop = create_pg_database("bulksync_test")
    monkeypatch.setenv("AIRFLOW_CONN_TEST_PG", url.replace("postgresql+psycopg://", "postgresql://"))
    yield url
    drop()


@pytest.fixture
def mariadb_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh MariaDB database (dropped afterwards), also as connection ``test_mariadb``."""
    import sqlalchemy as sa

    admin = sa.create_engine(MARIADB_DSN.replace("mysql://", "mysql+pymysql://"), connect_args={"connect_timeout": 5})
    name = f"bulksync_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    except sa.exc.OperationalError as exc:
        service_missing(f"MariaDB at {MARIADB_DSN} is not reachable: {exc.orig}")
    monkeypatch.setenv("AIRFLOW_CONN_TEST_MARIADB", f"{MARIADB_DSN}/{name}")
    yield f"{MARIADB_DSN.replace('mysql://', 'mysql+pymysql://')}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture
def sqlite_conn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty SQLite file as connection ``test_sqlite``."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_TEST_SQLITE", f"sqlite:///{path}")
    return path


# DROP DATABASE ... WITH (FORCE) ends pooled connections of finished tests; their pool's reset
# errors are expected noise, not failures.
logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
