"""Names and values that used to break loads, against real PostgreSQL and SQLite.

Any column name the database accepts must load, in every mode; names the database would truncate
and tables wider than it allows are refused before anything is written, with a message saying
what to do (and never the SQL statement); a NaN that SQLite would turn into NULL is refused.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync.errors import DataError, TargetSchemaError
from bulksync.targets.ledger import PartitionRef
from bulksync.targets.registry import make_target
from tests.helpers import DAY, batches, target

# names PostgreSQL and SQLite accept once quoted; each broke a load before: a doubled '%' in COPY,
# ':word' taken for a bind parameter, quotes, unicode, spaces, placeholders of every paramstyle
ODD = ["pct%", "50%%", ":word", "%(x)s", "?", "$1", 'say "hi"', "it's", "naïve Größe 名前", "two words", "select"]


@pytest.fixture(params=["postgres", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_conn")
    return str(request.param)


def conn_id(kind: str) -> str:
    return "test_pg" if kind == "postgres" else "test_sqlite"


def odd_table(ids: list[int], version: str) -> pa.Table:
    cols: dict[str, Any] = {"id": pa.array(ids, pa.int64())}
    for j, name in enumerate(ODD):
        cols[name] = pa.array([f"{version}-{i}-{j}" for i in ids], pa.string())
    cols["ts"] = pa.array([DAY.start] * len(ids), pa.timestamp("us", tz="UTC"))
    return pa.table(cols)


def fetch_all(kind: str, table: str) -> list[tuple[Any, ...]]:
    tgt = make_target(target(kind, conn_id(kind), table))
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        q = tgt.hook.engine.dialect.identifier_preparer.quote  # type: ignore[attr-defined]
        cols = ", ".join(q(n) for n in ["id", *ODD])
        rows = conn.exec_driver_sql(f"SELECT {cols} FROM {q(table)} ORDER BY id").fetchall()
    tgt.close()
    return [tuple(r) for r in rows]


def ref(sha: str) -> PartitionRef:
    import datetime as dt

    return PartitionRef("acme", "p", "d", DAY.key, sha, dt.datetime.now(dt.UTC), "r")


@pytest.mark.parametrize("mode", ["append", "merge", "replace", "interval"])
def test_any_column_name_the_database_accepts_loads(kind: str, mode: str) -> None:
    spec: dict[str, Any] = {"mode": mode}
    if mode == "merge":
        spec["keys"] = ["id"]
    if mode == "interval":
        spec["interval_column"] = "ts"
    tgt = make_target(target(kind, conn_id(kind), "odd", **spec))
    first, second = odd_table([1, 2, 3], "a"), odd_table([2, 3, 4], "b")
    try:
        tgt.load_partition(batches(first), first.schema, window=DAY, run_id="r1", ref=ref("1" * 64))
        r = tgt.load_partition(batches(second), second.schema, window=DAY, run_id="r2", ref=ref("2" * 64))
    finally:
        tgt.close()
    want = second.to_pylist() if mode != "merge" else first.slice(0, 1).to_pylist() + second.to_pylist()
    assert fetch_all(kind, "odd") == [tuple(row[c] for c in ["id", *ODD]) for row in want]
    assert (r.inserted, r.updated) == ((1, 2) if mode == "merge" else (3, 0))


def test_names_too_long_for_postgres_are_refused_before_the_first_load(pg_url: str) -> None:
    long = "c" * 64  # PostgreSQL keeps 63 bytes: it would truncate it, and the next load fail
    data = pa.table({"id": [1], long: ["x"], "é" * 32: ["y"]})  # 32 characters but 64 bytes
    tgt = make_target(target("postgres", "test_pg", "wide"))
    with pytest.raises(TargetSchemaError) as info:
        tgt.load(batches(data), data.schema, window=DAY, run_id="r1")
    msg = str(info.value)
    assert f"column {long!r} is 64 bytes long" in msg and "at most 63 bytes" in msg and "rename" in msg.lower()
    assert "column 'éééé" in msg and "nothing was loaded" in msg
    with sa.create_engine(pg_url).connect() as conn:
        assert not sa.inspect(conn).has_table("wide")
    # SQLite has no such limit: the same data loads there
    tgt.close()


def test_long_names_load_on_sqlite(sqlite_conn: Any) -> None:
    long = "c" * 128
    data = pa.table({"id": [1], long: ["x"]})
    tgt = make_target(target("sqlite", "test_sqlite", "t" * 100))
    tgt.load(batches(data), data.schema, window=DAY, run_id="r1")
    tgt.load(batches(data), data.schema, window=DAY, run_id="r2")  # and again: no duplicate column
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql(f'SELECT count(*), max("{long}") FROM "{"t" * 100}"').one() == (2, "x")
    tgt.close()


@pytest.mark.parametrize(("kind", "limit"), [("postgres", "1,600"), ("sqlite", "2,000")])
def test_too_many_columns_is_refused_without_the_statement_in_the_log(
    kind: str, limit: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    request.getfixturevalue("pg_url" if kind == "postgres" else "sqlite_conn")
    data = pa.table({f"col_{i:04d}": [i] for i in range(5000)})
    tgt = make_target(target(kind, conn_id(kind), "too_wide"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TargetSchemaError) as info:
        tgt.load(batches(data), data.schema, window=DAY, run_id="r1")
    msg = str(info.value)
    assert "5,000 columns" in msg and f"at most {limit}" in msg and "'select'" in msg
    assert len(msg) < 600 and "CREATE TABLE" not in msg and "col_4999" not in msg
    assert "CREATE TABLE" not in caplog.text
    tgt.close()


def test_nan_is_refused_on_sqlite_and_kept_on_postgres(request: pytest.FixtureRequest) -> None:
    data = pa.table({"id": [1, 2, 3], "score": pa.array([1.5, float("nan"), None], pa.float64())})
    request.getfixturevalue("sqlite_conn")
    tgt = make_target(target("sqlite", "test_sqlite", "scores"))
    with pytest.raises(DataError, match=r"'score' of scores holds NaN \(1 in rows 1–3, first at staged row 2\)"):
        tgt.load(batches(data), data.schema, window=DAY, run_id="r1")
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        assert not sa.inspect(conn).has_table("scores")  # nothing half-loaded (the create rolled back too)
    tgt.close()

    pg_url = request.getfixturevalue("pg_url")
    pg = make_target(target("postgres", "test_pg", "scores"))
    pg.load(batches(data), data.schema, window=DAY, run_id="r1")
    pg.close()
    with sa.create_engine(pg_url).connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, score::text FROM scores ORDER BY id").fetchall()
    assert rows == [(1, "1.5"), (2, "NaN"), (3, None)]
