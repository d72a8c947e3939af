"""Every SQL type the ``sql`` source meets lands exactly (issue 15 items 1-3, issue 12 item 12).

Each type is extracted by the real extract stage, loaded by the PostgreSQL target and compared *in
PostgreSQL* with the source: the loaded text is cast back to the source's type and compared with
``IS DISTINCT FROM`` (the database's own equality is the oracle, not values this test computes).
MariaDB types are compared with what the mysqlclient driver reads from MariaDB itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import ConfigurationError, DataError
from bulksync.staging.partition import Window
from tests.helpers import pipeline

D = decimal.Decimal

PG_TYPES = {
    # column: (declaration, values of rows 1, 2, 3 as SQL literals)
    "j": ("json", ['\'{"b": 1,  "a": [1, 2.50]}\'', "'[]'", "NULL"]),
    "jb": ("jsonb", ['\'{"b": 1, "a": {"x": null}}\'', "'\"text\"'", "NULL"]),
    "u": ("uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "NULL", "'00000000-0000-0000-0000-000000000000'"]),
    "n": ("numeric", ["3.14159265358979323846264338327950", "12345678901234567890123456789.5", "-0.000000000001"]),
    "n_nan": ("numeric", ["'NaN'", "1e-60", "NULL"]),
    "arr": ("integer[]", ["'{1,2,NULL}'", "'{}'", "NULL"]),
    "tarr": ("text[]", ["ARRAY['a,b', 'c\"d', '']", "NULL", "ARRAY[NULL]::text[]"]),
    "iv": ("interval", ["'1 year 2 months 3 days 04:05:06.789'", "'-3 days'", "NULL"]),
    "t": ("time", ["'23:59:59.999999'", "'00:00'", "NULL"]),
    "ttz": ("timetz", ["'12:00:00+02'", "'00:00:00-11:30'", "NULL"]),
    "ip": ("inet", ["'192.168.0.1/24'", "'::1'", "NULL"]),
    "net": ("cidr", ["'10.0.0.0/8'", "NULL", "'2001:db8::/32'"]),
    "mo": ("money", ["1234567.89", "-0.01", "NULL"]),
    "bits": ("bit(4)", ["B'1010'", "B'0000'", "NULL"]),
    "vbits": ("varbit(8)", ["B'1'", "B''", "NULL"]),
    "dom": ("amount", ["123456.78", "NULL", "-1"]),
    "mood": ("mood", ["'happy'", "'sad'", "NULL"]),
    "n18": ("numeric(18,6)", ["123456789012.123456", "NULL", "0"]),
    "big": ("numeric(60,20)", ["1234567890123456789012345678901234567890.12345678901234567890", "NULL", "1"]),
    "by": ("bytea", ["'\\x00ff10'", "''", "NULL"]),
    "f4": ("real", ["1.1", "'NaN'", "'-Infinity'"]),
    "ts": ("timestamptz", ["'2026-01-01 12:00:00.123456+05'", "NULL", "'0001-01-01 00:00:00+00'"]),
    "d": ("date", ["'9999-12-31'", "'0001-01-01'", "NULL"]),
}
NO_EQUALITY = {"j": "::text"}  # json has no equality: compared as text


def _spec(conn_id: str, options: dict[str, Any], table: str = "landed") -> Any:
    return pipeline(
        [
            {
                "name": "types",
                "source": {"kind": "sql", "conn_id": conn_id, "options": options},
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": table, "mode": "replace"},
            }
        ]
    )


def _run(spec: Any) -> Any:
    ctx = stages.RunContext(run_id="r1", window=Window(), try_number=1)
    ds = spec.datasets[0]
    manifest = stages.extract_all(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    return manifest


@pytest.fixture
def pg_types(pg_url: str) -> str:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("CREATE DOMAIN amount AS numeric(12,2)")
        conn.exec_driver_sql("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        cols = ", ".join(f"{c} {decl}" for c, (decl, _) in PG_TYPES.items())
        conn.exec_driver_sql(f"CREATE TABLE src (id int PRIMARY KEY, {cols})")
        for i in range(3):
            values = ", ".join(vals[i] for _, vals in PG_TYPES.values())
            conn.exec_driver_sql(f"INSERT INTO src VALUES ({i + 1}, {values})")
    return pg_url


def _mismatches(pg_url: str, table: str) -> dict[str, Any]:
    bad = {}
    with sa.create_engine(pg_url).connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == 3
        for col, (decl, _) in PG_TYPES.items():
            cast = NO_EQUALITY.get(col, f"::{decl}")
            left = f"s.{col}{NO_EQUALITY.get(col, '')}"
            rows = conn.exec_driver_sql(
                f"SELECT s.{col}::text, l.{col}::text FROM src s JOIN {table} l USING (id) "
                f"WHERE {left} IS DISTINCT FROM (l.{col}){cast}"
            ).all()
            if rows:
                bad[col] = rows
    return bad


@pytest.mark.parametrize("how", ["table", "query"])
def test_every_postgres_type_round_trips_exactly(pg_types: str, env: pytest.MonkeyPatch, how: str) -> None:
    options = {"table": "src"} if how == "table" else {"query": "SELECT * FROM src WHERE id > 0 -- 100% of rows"}
    manifest = _run(_spec("test_pg", options, table=f"landed_{how}"))
    assert manifest.rows == 3
    assert _mismatches(pg_types, f"landed_{how}") == {}
    schema = manifest.read_schema()
    assert schema.field("n").type == pa.decimal256(76, 32)  # unbounded: the widest decimal its values fit
    assert schema.field("n_nan").type == pa.string()  # NaN and 1e-60 fit no decimal: every digit as text
    assert schema.field("big").type == pa.decimal256(60, 20)
    assert schema.field("mo").type == pa.decimal128(19, 2)
    assert schema.field("dom").type == pa.decimal128(12, 2)
    assert schema.field("f4").type == pa.float32()
    assert schema.field("u").metadata[b"bulksync.sql_type"] == b"uuid"


def test_postgres_json_keeps_the_text_and_null_stays_apart_from_empty(pg_types: str, env: pytest.MonkeyPatch) -> None:
    _run(_spec("test_pg", {"table": "src"}))
    with sa.create_engine(pg_types).connect() as conn:
        rows = conn.exec_driver_sql("SELECT j, tarr, by FROM landed ORDER BY id").all()
    assert rows[0][0] == '{"b": 1,  "a": [1, 2.50]}'  # json: the very text stored, spaces included
    assert [r[1] for r in rows] == ['{"a,b","c\\"d",""}', None, "{NULL}"]
    assert [None if r[2] is None else bytes(r[2]) for r in rows] == [b"\x00\xff\x10", b"", None]


# -- MariaDB ----------------------------------------------------------------------------------

MARIA = (
    "CREATE TABLE m (id INT PRIMARY KEY, big BIGINT UNSIGNED, small INT UNSIGNED, tiny TINYINT UNSIGNED, "
    "flag BOOLEAN, year_ YEAR, tags SET('red','green','blue'), kind ENUM('a','b'), bits BIT(3), doc JSON, "
    "uid UUID, raw VARBINARY(8), txt VARCHAR(20) COLLATE utf8mb4_bin, at_ TIME(6), stamp TIMESTAMP(6) NULL, "
    "amount DECIMAL(30,10), ratio DOUBLE, word TEXT)"
)
MARIA_ROWS = [
    "(1, 18446744073709551615, 4294967295, 255, TRUE, 2024, 'red,blue', 'b', b'101', '{\"k\": [1, 2]}', "
    "'123e4567-e89b-12d3-a456-426614174000', X'00FF', 'Ünïcode', '23:59:59.5', '2026-01-01 10:00:00.000001', "
    "12345678901234567890.0123456789, 1.5e300, 'héllo')",
    "(2, 9223372036854775808, 0, 0, FALSE, 1901, '', 'a', b'000', 'null', NULL, X'', '', '00:00:00', NULL, "
    "-0.0000000001, -0.0, '')",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


@pytest.fixture
def maria_types(mariadb_url: str) -> str:
    with sa.create_engine(mariadb_url).begin() as conn:
        conn.exec_driver_sql(MARIA)
        conn.exec_driver_sql(f"INSERT INTO m VALUES {', '.join(MARIA_ROWS)}")
    return mariadb_url


def _expected_maria() -> list[tuple[Any, ...]]:
    rest = (D("-0.0000000001"), -0.0, "")
    return [
        (
            1,
            D(18446744073709551615),
            4294967295,
            255,
            True,
            2024,
            "red,blue",
            "b",
            "101",
            '{"k": [1, 2]}',
            "123e4567-e89b-12d3-a456-426614174000",
            b"\x00\xff",
            "Ünïcode",
            dt.time(23, 59, 59, 500000),
            dt.datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=dt.UTC),
            D("12345678901234567890.0123456789"),
            1.5e300,
            "héllo",
        ),
        (2, D(9223372036854775808), 0, 0, False, 1901, "", "a", "000", "null", None, b"", "", dt.time(0), None, *rest),
        (3, *([None] * 17)),
    ]


@pytest.mark.parametrize("how", ["table", "query"])
def test_every_mariadb_type_round_trips_into_postgres(
    maria_types: str, pg_url: str, env: pytest.MonkeyPatch, how: str
) -> None:
    options = {"table": "m"} if how == "table" else {"query": "SELECT * FROM m WHERE id < 100"}
    manifest = _run(_spec("test_mariadb", options))
    schema = manifest.read_schema()
    assert schema.field("big").type == pa.uint64() and schema.field("small").type == pa.uint32()
    assert schema.field("flag").type == pa.bool_() and schema.field("year_").type == pa.int16()
    assert schema.field("raw").type == pa.binary() and schema.field("txt").type == pa.string()
    with sa.create_engine(pg_url).connect() as conn:
        got = conn.exec_driver_sql("SELECT * FROM landed ORDER BY id").all()
    names = [f.name for f in schema]
    rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r[: len(names)]) for r in got]
    assert rows == _expected_maria()


def test_mariadb_tinyint1_holding_2_is_refused_not_guessed(mariadb_url: str, env: pytest.MonkeyPatch) -> None:
    with sa.create_engine(mariadb_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE f (id INT, flag BOOLEAN)")
        conn.exec_driver_sql("INSERT INTO f VALUES (1, 1), (2, 2)")
    with pytest.raises(DataError, match=r"column 'flag' \(tinyint\(1\)\): value 2 is not 0 or 1 \(row 2"):
        _run(_spec("test_mariadb", {"table": "f"}))


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decl"),
    [("'infinity'", "timestamptz"), ("'10000-01-01'", "timestamp"), ("'0044-03-15 BC'", "date")],
)
def test_postgres_out_of_range_temporals_are_data_errors_naming_the_column(
    pg_url: str, env: pytest.MonkeyPatch, value: str, decl: str
) -> None:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE odd (id int, happened {decl})")
        conn.exec_driver_sql(f"INSERT INTO odd VALUES (1, now()), (2, {value})")
    with pytest.raises(DataError) as info:
        _run(_spec("test_pg", {"table": "odd"}))
    msg = str(info.value)
    assert "dataset 'types' (table odd), column 'happened'" in msg
    assert value.strip("'").split()[0] in msg and "isfinite" in msg


def test_query_syntax_error_quotes_the_users_query_with_its_position(pg_url: str, env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as info:
        _run(_spec("test_pg", {"query": "SELECT id,\n  FROM nowhere"}))
    msg = str(info.value)
    assert "dataset 'types'" in msg and "syntax error" in msg and "line 2, character 3 of the query" in msg
    assert "'SELECT id, FROM nowhere'" in msg and "AS q" not in msg


def test_mariadb_query_syntax_error_does_not_show_the_wrapper(mariadb_url: str, env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as info:
        _run(_spec("test_mariadb", {"query": "SELEC id FROM m"}))
    msg = str(info.value)
    assert "You have an error in your SQL syntax" in msg and "AS q" not in msg and "LIMIT 0" not in msg
    assert "'SELEC id FROM m'" in msg


def test_sqlite_query_error_is_a_configuration_error(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("AIRFLOW_CONN_LITE", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigurationError, match=r"refused the query \(no such table: nope\)"):
        _run(_spec("lite", {"query": "SELECT * FROM nope"}))


def test_missing_table_and_columns_list_close_matches(pg_types: str, env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"table 'scr' does not exist.*did you mean 'src'\?"):
        _run(_spec("test_pg", {"table": "scr"}))
    with pytest.raises(ConfigurationError, match=r"options.columns names 'jsb', which is not a column; did you mean"):
        _run(_spec("test_pg", {"table": "src", "columns": ["id", "jsb"]}))


def test_missing_cursor_field_is_caught_on_a_full_window_run(pg_types: str, env: pytest.MonkeyPatch) -> None:
    spec = _spec("test_pg", {"table": "src", "incremental": True, "cursor_field": "updated"})
    with pytest.raises(ConfigurationError, match=r"cursor_field names 'updated', which is not a column"):
        _run(spec)  # Window(): no interval, so no predicate would ever name the column


def test_sql_server_types_from_type_metadata() -> None:
    """No SQL Server runs here: the types are mapped from SQLAlchemy's mssql type metadata, and the
    values are the Python objects pyodbc returns for them (a mock of the driver, by necessity)."""
    from sqlalchemy.dialects import mssql

    from bulksync.sources.sql_columns import sa_column
    from bulksync.sources.sql_fetch import to_arrow

    def fail(col: Any, value: Any, reason: str) -> Exception:
        return AssertionError(f"{col.name}: {value!r} {reason}")

    offset = dt.timezone(dt.timedelta(hours=-5))
    cases = [
        (mssql.DATETIMEOFFSET(), [dt.datetime(2026, 1, 1, 7, 0, tzinfo=offset), None], pa.timestamp("us", tz="UTC")),
        (mssql.UNIQUEIDENTIFIER(), [uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"), None], pa.string()),
        (mssql.MONEY(), [D("922337203685477.5807"), D("-0.0001")], pa.decimal128(19, 4)),
        (mssql.SMALLMONEY(), [D("214748.3647"), None], pa.decimal128(10, 4)),
        (mssql.BIT(), [True, None], pa.bool_()),
        (mssql.DATETIME2(), [dt.datetime(2026, 1, 1, 1, 2, 3, 456789)], pa.timestamp("us")),
    ]
    got = []
    for sa_type, values, arrow in cases:
        col = sa_column("c", sa_type, "mssql")
        assert col.type == arrow, sa_type
        got.append(to_arrow(values, col, 0, fail).to_pylist())
    assert got[0] == [dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC), None]  # the instant, exactly
    assert got[1] == ["6f9619ff-8b86-d011-b42d-00c04fc964ff", None]
    assert got[2] == [D("922337203685477.5807"), D("-0.0001")]
    assert got[3:] == [[D("214748.3647"), None], [True, None], [dt.datetime(2026, 1, 1, 1, 2, 3, 456789)]]


def test_a_cancelled_statement_is_transient(pg_url: str, env: pytest.MonkeyPatch) -> None:
    import json

    from bulksync.errors import SourceConnectionError

    url = sa.engine.make_url(pg_url)
    conn = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}
    env.setenv("AIRFLOW_CONN_PG_IMPATIENT", json.dumps({**conn, "extra": {"options": "-c statement_timeout=200"}}))
    with pytest.raises(SourceConnectionError) as info:
        _run(_spec("pg_impatient", {"query": "SELECT 1 AS x FROM pg_sleep(2)"}))
    assert info.value.terminal is False and "statement timeout" in str(info.value)
