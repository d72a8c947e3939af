"""The ``sql`` source against real PostgreSQL and MariaDB: exact types, windows, streaming, errors."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.sources.registry import make_source
from bulksync.staging.partition import Window
from tests.helpers import DAY, pipeline

D = decimal.Decimal
UTC = dt.UTC

ROWS = [
    (1, "Alice", D("10.50"), dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), True, dt.date(1990, 1, 2)),
    (2, "Bob", None, dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC), False, None),
    (3, "", D("-3.25"), dt.datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=UTC), None, dt.date(2000, 2, 29)),
    (4, "Dora", D("99999999.99"), dt.datetime(2026, 1, 2, 0, 0, tzinfo=UTC), True, None),
]


def source(conn_id: str, window: Window = DAY, **options: Any) -> Any:
    spec = pipeline(
        [
            {
                "name": "d",
                "source": {"kind": "sql", "conn_id": conn_id, "options": options},
                "target": {"kind": "sqlite", "conn_id": "w", "table": "t"},
            }
        ]
    )
    return make_source(spec.datasets[0].source, window)


def read_all(src: Any) -> pa.Table:
    try:
        schema = src.schema()
        return pa.Table.from_batches(list(src.read()), schema=schema)
    finally:
        src.close()


@pytest.fixture
def pg_accounts(pg_url: str) -> str:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(50), amount numeric(10,2), "
            "updated_at timestamptz NOT NULL, active boolean, born date)"
        )
        conn.execute(
            sa.text("INSERT INTO accounts VALUES (:a, :b, :c, :d, :e, :f)"),
            [dict(zip("abcdef", r, strict=True)) for r in ROWS],
        )
    return pg_url


def test_full_extract_is_exact_in_values_and_types(pg_accounts: str) -> None:
    src = source("test_pg", table="accounts", batch_size=100)
    table = read_all(src)
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("amount", pa.decimal128(10, 2)),
            ("updated_at", pa.timestamp("us", tz="UTC")),
            ("active", pa.bool_()),
            ("born", pa.date32()),
        ]
    )
    assert sorted(tuple(r.values()) for r in table.to_pylist()) == ROWS


def test_incremental_reads_exactly_the_half_open_window(pg_accounts: str) -> None:
    src = source("test_pg", table="accounts", incremental=True, cursor_field="updated_at")
    assert src.source_count() == 2
    assert sorted(r["id"] for r in read_all(src).to_pylist()) == [2, 3]


def test_overlap_widens_the_window_start(pg_accounts: str) -> None:
    src = source("test_pg", table="accounts", incremental=True, cursor_field="updated_at", overlap_minutes=5)
    assert sorted(r["id"] for r in read_all(src).to_pylist()) == [1, 2, 3]


def test_query_source_is_typed_from_the_database(pg_accounts: str) -> None:
    src = source("test_pg", query="SELECT id, amount * 2 AS doubled FROM accounts WHERE id < 3")
    table = read_all(src)
    assert pa.types.is_decimal(table.schema.field("doubled").type)
    assert sorted(r["doubled"] for r in table.to_pylist() if r["doubled"] is not None) == [D("21.00")]


def test_streams_many_batches(pg_url: str) -> None:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 25000) g")
    src = source("test_pg", table="big", batch_size=1000)
    got = list(src.read())
    src.close()
    assert len(got) == 25 and all(b.num_rows == 1000 for b in got)
    assert sorted(i for b in got for i in b.column("id").to_pylist()) == list(range(1, 25001))


def test_mariadb_source(mariadb_url: str) -> None:
    with sa.create_engine(mariadb_url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, total DECIMAL(12,3), note VARCHAR(20), placed DATETIME(6))"
        )
        conn.exec_driver_sql(
            "INSERT INTO orders VALUES (1, 1.125, 'a', '2026-01-01 10:00:00'), (2, NULL, NULL, '2026-01-03 00:00:00')"
        )
    src = source("test_mariadb", table="orders", incremental=True, cursor_field="placed")
    table = read_all(src)
    assert table.schema.field("total").type == pa.decimal128(12, 3)
    assert table.to_pylist() == [{"id": 1, "total": D("1.125"), "note": "a", "placed": dt.datetime(2026, 1, 1, 10)}]


def test_unreachable_database_names_connection_and_host_not_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DOWN", "postgresql://etl:TopSecret99@127.0.0.1:1/crm")
    src = source("crm_down", table="accounts")
    with pytest.raises(SourceConnectionError) as info:
        src.schema()
    msg = str(info.value)
    assert "connection 'crm_down'" in msg and "127.0.0.1:1/crm" in msg and "TopSecret99" not in msg
    assert info.value.terminal is False  # retried by Airflow


def test_missing_connection_says_how_to_define_it() -> None:
    with pytest.raises(ConfigurationError, match=r"'nope_conn' is not defined.*AIRFLOW_CONN_NOPE_CONN"):
        source("nope_conn", table="accounts").schema()


def test_missing_table_is_named(pg_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"table 'public.missing' does not exist in connection 'test_pg'"):
        source("test_pg", table="public.missing").schema()


def test_sqlite_naive_datetime_column_holding_utc_text_reads_as_its_utc_wall_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bulksync's SQLite target writes aware times as '…Z' text into DATETIME columns (SQLite keeps no
    time zone in its DDL); the sql source reading such a table back must take them, not refuse them."""
    import sqlite3

    db = tmp_path / "wh.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, loaded_at DATETIME, plain DATETIME)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            [
                (1, "2026-12-02 21:30:06.958939Z", "2026-12-02 21:30:06.958939"),
                (2, "2026-12-02 23:30:00+02:00", "2026-01-01 00:00:00"),
                (3, None, None),
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_LITE", f"sqlite:///{db}")
    table = read_all(source("lite", Window(), table="t")).sort_by("id")
    assert table.column("loaded_at").to_pylist() == [
        dt.datetime(2026, 12, 2, 21, 30, 6, 958939),
        dt.datetime(2026, 12, 2, 21, 30, 0),
        None,
    ]
    assert table.column("plain").to_pylist() == [
        dt.datetime(2026, 12, 2, 21, 30, 6, 958939),
        dt.datetime(2026, 1, 1, 0, 0),
        None,
    ]


def test_sqlite_incremental_window_binds_its_bounds(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An incremental extract of a SQLite table counts and reads exactly [start, end) of its cursor
    column (the demo CRM's account_changes, the backfill e2e)."""
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL)")
        conn.executemany(
            "INSERT INTO accounts VALUES (?, ?)",
            [
                (1, "2025-12-31 23:59:59.999999"),
                (2, "2026-01-01 00:00:00.000000"),
                (3, "2026-01-01 23:59:59.999999"),
                (4, "2026-01-02 00:00:00.000000"),
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_LITE", f"sqlite:///{db}")
    import pendulum

    # Airflow hands data intervals over as pendulum DateTimes; the bounds are bound through the dialect's
    # own DATETIME processor (sqlite3 itself adapts pendulum only once Airflow registered an adapter: the
    # backfill e2e test covers the task process where it has not)
    day = Window(pendulum.datetime(2026, 1, 1, tz="UTC"), pendulum.datetime(2026, 1, 2, tz="UTC"))
    src = source(
        "lite", day, table="accounts", columns=["id", "updated_at"], incremental=True, cursor_field="updated_at"
    )
    assert src.source_count() == 2
    assert read_all(src).column("id").to_pylist() == [2, 3]
