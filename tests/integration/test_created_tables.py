"""Tables bulksync creates hold what the source had: no sequences or defaults it did not have, and
``char(n)`` / ``varchar(n)`` where the source says so (real PostgreSQL source and targets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.staging.partition import Window
from tests.helpers import pipeline

ROWS = [(1, "AB", "Alice", "n1"), (2, "CDEFGHIJKL", "Bob", None), (3, None, "", "n3")]


@pytest.mark.parametrize("mode", ["merge", "append"])
def test_created_table_has_no_sequence_and_keeps_text_lengths(
    pg_url: str, env: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE customers (customer_id bigint PRIMARY KEY, code char(10), name varchar(40), notes text)"
        )
        conn.exec_driver_sql(
            "INSERT INTO customers VALUES (1,'AB','Alice','n1'),(2,'CDEFGHIJKL','Bob',NULL),(3,NULL,'','n3')"
        )
    target = {"kind": "postgres", "conn_id": "test_pg", "table": "customers_copy", "mode": mode}
    if mode == "merge":
        target["keys"] = ["customer_id"]
    spec = pipeline(
        [
            {
                "name": "customers",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": {"table": "customers"}},
                "target": target,
            }
        ]
    )
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="r1", window=Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    with engine.connect() as conn:
        cols = conn.exec_driver_sql(
            "SELECT column_name, data_type, character_maximum_length, column_default, is_nullable "
            "FROM information_schema.columns WHERE table_name = 'customers_copy' ORDER BY ordinal_position"
        ).fetchall()
        sequences = conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relkind = 'S'").fetchall()
        rows = conn.exec_driver_sql(
            "SELECT customer_id, code, name, notes FROM customers_copy ORDER BY customer_id"
        ).fetchall()
    engine.dispose()
    key_nullable = "NO" if mode == "merge" else "YES"
    assert [tuple(c) for c in cols] == [
        ("customer_id", "bigint", None, None, key_nullable),
        ("code", "character", 10, None, "YES"),
        ("name", "character varying", 40, None, "YES"),
        ("notes", "text", None, None, "YES"),
        ("_bulksync_run_id", "text", None, None, "YES"),
        ("_bulksync_loaded_at", "timestamp with time zone", None, None, "YES"),
    ]
    assert sequences == []
    assert [tuple(r) for r in rows] == [
        (1, "AB        ", "Alice", "n1"),
        (2, "CDEFGHIJKL", "Bob", None),
        (3, None, "", "n3"),
    ]
