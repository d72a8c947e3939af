"""SQL targets against real PostgreSQL and SQLite: every load mode, schema changes, refusals.

Each test compares the whole target table (every row, every column) with what it should hold.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync.errors import DataError, TargetSchemaError
from bulksync.staging.partition import Window
from bulksync.targets.registry import make_target
from tests.helpers import DAY, batches, target

D = decimal.Decimal
UTC = dt.UTC
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("amount", pa.decimal128(18, 2)),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("active", pa.bool_()),
        ("born", pa.date32()),
    ]
)


def rows_table(rows: list[tuple[Any, ...]], schema: pa.Schema = SCHEMA) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema)


def ts(h: int, d: int = 1) -> dt.datetime:
    return dt.datetime(2026, 1, d, h, tzinfo=UTC)


R1 = [
    (1, "Alice", D("10.50"), ts(1), True, dt.date(1990, 1, 2)),
    (2, "", D("0.00"), ts(2), False, None),
    (3, None, None, ts(3), None, dt.date(2000, 2, 29)),
]


@pytest.fixture(params=["postgres", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        request.getfixturevalue("pg_url")
    else:
        request.getfixturevalue("sqlite_conn")
    return str(request.param)


def conn_id(kind: str) -> str:
    return "test_pg" if kind == "postgres" else "test_sqlite"


def fetch(kind: str, table: str = "accounts", order: str = "id") -> list[tuple[Any, ...]]:
    tgt = make_target(target(kind, conn_id(kind), table))
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        cols = [c["name"] for c in sa.inspect(conn).get_columns(table) if not c["name"].startswith("_bulksync")]
        rows = conn.exec_driver_sql(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()
    tgt.close()
    return [tuple(_norm(v) for v in r) for r in rows]


def _norm(v: Any) -> Any:
    """SQLite keeps decimals and times as text; normalise both databases to Python values."""
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == " ":
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
        return dt.date.fromisoformat(v)
    if isinstance(v, float | int) and not isinstance(v, bool):
        return v
    return v


def expected(rows: list[tuple[Any, ...]], kind: str) -> list[tuple[Any, ...]]:
    out = []
    for r in rows:
        rid, name, amount, upd, active, born = r
        if kind == "sqlite":
            amount = None if amount is None else str(amount)
            active = None if active is None else int(active)
        out.append((rid, name, amount, upd, active, born))
    return sorted(out, key=lambda x: x[0])


def load(kind: str, table: pa.Table, window: Window = DAY, run_id: str = "r1", **spec: Any) -> Any:
    tgt = make_target(target(kind, conn_id(kind), **spec))
    try:
        return tgt.load(batches(table), table.schema, window=window, run_id=run_id)
    finally:
        tgt.close()


def test_append_creates_exact_table_and_appends(kind: str) -> None:
    r = load(kind, rows_table(R1))
    assert (r.rows, r.inserted, r.updated, r.created_table) == (3, 3, 0, True)
    assert fetch(kind) == expected(R1, kind)
    load(kind, rows_table(R1[:1]), run_id="r2")
    assert fetch(kind) == sorted(expected(R1, kind) + expected(R1[:1], kind), key=lambda x: x[0])


def test_postgres_column_types_are_exact(pg_url: str) -> None:
    load("postgres", rows_table(R1))
    with sa.create_engine(pg_url).connect() as conn:
        types = dict(
            conn.exec_driver_sql(
                "SELECT column_name, data_type || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '')"
                " "
                "FROM information_schema.columns WHERE table_name = 'accounts'"
            ).fetchall()
        )
    assert types == {
        "id": "bigint(64,0)",
        "name": "text",
        "amount": "numeric(18,2)",
        "updated_at": "timestamp with time zone",
        "active": "boolean",
        "born": "date",
        "_bulksync_run_id": "text",
        "_bulksync_loaded_at": "timestamp with time zone",
    }


def test_merge_upserts_on_keys_and_is_idempotent(kind: str) -> None:
    load(kind, rows_table(R1), mode="merge", keys=["id"])
    change = [(2, "Bob", D("5.25"), ts(5), True, None), (4, "Dan", D("1.00"), ts(6), False, None)]
    r = load(kind, rows_table(change), mode="merge", keys=["id"], run_id="r2")
    assert (r.inserted, r.updated) == (1, 1)
    want = expected([R1[0], change[0], R1[2], change[1]], kind)
    assert fetch(kind) == want
    load(kind, rows_table(change), mode="merge", keys=["id"], run_id="r3")
    assert fetch(kind) == want


def test_merge_refuses_duplicate_keys_and_loads_nothing(kind: str) -> None:
    load(kind, rows_table(R1), mode="merge", keys=["id"])
    dup = [(1, "x", D("1.00"), ts(1), True, None), (1, "y", D("2.00"), ts(2), True, None)]
    with pytest.raises(DataError, match=r"repeats merge keys \['id'\].*dedupe"):
        load(kind, rows_table(dup), mode="merge", keys=["id"])
    assert fetch(kind) == expected(R1, kind)


def test_replace_swaps_whole_table(kind: str) -> None:
    load(kind, rows_table(R1), mode="replace")
    r = load(kind, rows_table(R1[1:2]), mode="replace", run_id="r2")
    assert (r.deleted, r.inserted) == (3, 1)
    assert fetch(kind) == expected(R1[1:2], kind)


def test_interval_replaces_only_the_window(kind: str) -> None:
    day2 = Window(dt.datetime(2026, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 3, tzinfo=UTC))
    other = [(9, "later", D("9.00"), ts(4, d=2), True, None)]
    load(kind, rows_table(other), window=day2, mode="interval", interval_column="updated_at")
    load(kind, rows_table(R1), mode="interval", interval_column="updated_at")
    again = [(1, "Alice v2", D("11.00"), ts(7), True, None)]
    r = load(kind, rows_table(again), mode="interval", interval_column="updated_at", run_id="r2")
    assert (r.deleted, r.inserted) == (3, 1)
    assert fetch(kind) == expected(again + other, kind)


def test_evolve_adds_new_columns(kind: str) -> None:
    load(kind, rows_table(R1))
    wider = SCHEMA.append(pa.field("region", pa.string()))
    r = load(kind, rows_table([(7, "G", D("1.00"), ts(1), True, None, "EMEA")], wider), run_id="r2")
    assert r.added_columns == ("region",)
    rows = fetch(kind)
    assert rows[-1][-1] == "EMEA" and rows[0][-1] is None and len(rows) == 4


def test_freeze_refuses_new_columns_naming_them(kind: str) -> None:
    load(kind, rows_table(R1), schema_changes="freeze")
    wider = SCHEMA.append(pa.field("region", pa.string()))
    with pytest.raises(TargetSchemaError, match=r"new source columns \['region'\].*freeze"):
        load(kind, rows_table([(7, "G", D("1.00"), ts(1), True, None, "EMEA")], wider), schema_changes="freeze")
    assert fetch(kind) == expected(R1, kind)


def test_column_that_cannot_hold_new_type_is_refused(pg_url: str) -> None:
    load("postgres", rows_table(R1))
    changed = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("amount", pa.decimal128(30, 4)),
            ("updated_at", pa.timestamp("us", tz="UTC")),
            ("active", pa.bool_()),
            ("born", pa.string()),
        ]
    )
    bad = rows_table([(8, "x", D("123456789012345678.1234"), ts(1), True, "not a date")], changed)
    with pytest.raises(TargetSchemaError) as info:
        load("postgres", bad, run_id="r2")
    msg = str(info.value)
    assert "'amount' is NUMERIC(18, 2)" in msg and "decimal128(30, 4)" in msg
    assert "'born' is DATE" in msg and "nothing was loaded" in msg
    assert fetch("postgres") == expected(R1, "postgres")


def test_value_too_long_for_existing_varchar_rolls_back_everything(pg_url: str) -> None:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE accounts (id bigint, name varchar(3), amount numeric(18,2), "
            "updated_at timestamptz, active boolean, born date, _bulksync_run_id text, "
            "_bulksync_loaded_at timestamptz)"
        )
        conn.exec_driver_sql("INSERT INTO accounts (id, name) VALUES (100, 'old')")
    wider = SCHEMA.append(pa.field("extra", pa.string()))
    rows = [(1, "abc", D("1.00"), ts(1), True, None, "e"), (2, "abcdef", D("1.00"), ts(1), True, None, "e")]
    with pytest.raises(DataError, match=r"loading accounts failed, nothing was loaded.*too long"):
        load("postgres", rows_table(rows, wider))
    with sa.create_engine(pg_url).connect() as conn:
        cols = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name='accounts'"
            )
        ]
        assert "extra" not in cols  # the ALTER TABLE of evolve was rolled back too
        assert conn.exec_driver_sql("SELECT id, name FROM accounts").fetchall() == [(100, "old")]


def test_sqlite_decimals_stay_exact(sqlite_conn: Any) -> None:
    big = [(1, "x", D("9999999999999999.99"), ts(1), True, None)]
    load("sqlite", rows_table(big))
    assert fetch("sqlite")[0][2] == "9999999999999999.99"


@pytest.mark.parametrize("bad", ["repeated", "empty"])
def test_merge_into_an_empty_table_refuses_bad_keys_and_loads_nothing(kind: str, bad: str) -> None:
    rows = [
        (1, "x", D("1.00"), ts(1), True, None),
        (1 if bad == "repeated" else None, "y", D("2.00"), ts(2), True, None),
    ]
    match = r"repeats merge keys \['id'\].*dedupe" if bad == "repeated" else r"empty merge key \['id'\]"
    with pytest.raises(DataError, match=match):
        load(kind, rows_table(rows), mode="merge", keys=["id"])
    tgt = make_target(target(kind, conn_id(kind), "accounts"))
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        assert not sa.inspect(conn).has_table("accounts")  # the table created by the load went with it
    tgt.close()


def test_ledger_ignores_an_older_extract_and_replays_the_same_one(kind: str) -> None:
    """A zombie holding an older extract of the window must not overwrite the newer one's rows."""
    from bulksync.targets.ledger import PartitionRef

    def ref(sha: str, minute: int) -> PartitionRef:
        return PartitionRef("acme", "p", "d", DAY.key, sha * 64, dt.datetime(2026, 1, 2, 0, minute, tzinfo=UTC), "r")

    tgt = make_target(target(kind, conn_id(kind), "accounts", mode="append"))
    newer, older = rows_table(R1), rows_table(R1[:1])
    try:
        first = tgt.load_partition(batches(newer), SCHEMA, window=DAY, run_id="new", ref=ref("b", 30))
        stale = tgt.load_partition(batches(older), SCHEMA, window=DAY, run_id="zombie", ref=ref("a", 10))
        again = tgt.load_partition(batches(newer), SCHEMA, window=DAY, run_id="retry", ref=ref("b", 30))
    finally:
        tgt.close()
    assert (stale.already_loaded, stale.noop_reason, stale.load_id) == (True, "superseded", first.load_id)
    assert (again.already_loaded, again.noop_reason, again.inserted) == (True, "already_loaded", 3)
    assert fetch(kind) == expected(R1, kind)


def test_replace_forgets_the_windows_it_replaced(kind: str) -> None:
    from bulksync.targets.ledger import PartitionRef

    day2 = Window(dt.datetime(2026, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 3, tzinfo=UTC))

    def ref(window: Window, sha: str) -> PartitionRef:
        return PartitionRef("acme", "p", "d", window.key, sha * 64, dt.datetime(2026, 1, 3, tzinfo=UTC), "r")

    tgt = make_target(target(kind, conn_id(kind), "accounts", mode="replace"))
    try:
        tgt.load_partition(batches(rows_table(R1)), SCHEMA, window=DAY, run_id="d1", ref=ref(DAY, "a"))
        tgt.load_partition(batches(rows_table(R1[1:])), SCHEMA, window=day2, run_id="d2", ref=ref(day2, "b"))
        again = tgt.load_partition(batches(rows_table(R1)), SCHEMA, window=DAY, run_id="d1", ref=ref(DAY, "a"))
    finally:
        tgt.close()
    assert (again.already_loaded, again.inserted, again.deleted) == (False, 3, 2)
    assert fetch(kind) == expected(R1, kind)
