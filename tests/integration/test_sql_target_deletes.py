"""Merge with ``delete_flag`` on real PostgreSQL and SQLite: flagged rows delete, others upsert.

Each test compares the whole target table with what it should hold, and the load counts that
reconciliation adds up.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import TargetSchemaError
from bulksync.targets.registry import make_target
from tests.helpers import DAY, batches, target

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("IsDeleted", pa.bool_())])


@pytest.fixture(params=["postgres", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_conn")
    return str(request.param)


def conn_id(kind: str) -> str:
    return "test_pg" if kind == "postgres" else "test_sqlite"


def fetch(kind: str) -> list[tuple[Any, ...]]:
    tgt = make_target(target(kind, conn_id(kind)))
    with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.exec_driver_sql('SELECT id, name, "IsDeleted" FROM accounts ORDER BY id').fetchall()
    tgt.close()
    return [tuple(r) for r in rows]


def table(rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, SCHEMA, strict=True)], schema=SCHEMA)


def load(kind: str, rows: list[tuple[Any, ...]], run_id: str) -> Any:
    tgt = make_target(target(kind, conn_id(kind), mode="merge", keys=["id"], delete_flag="IsDeleted"))
    try:
        data = table(rows)
        return tgt.load(batches(data), data.schema, window=DAY, run_id=run_id)
    finally:
        tgt.close()


def norm(rows: list[tuple[Any, ...]], kind: str) -> list[tuple[Any, ...]]:
    return [(r[0], r[1], int(r[2]) if kind == "sqlite" else r[2]) for r in rows]


def test_flagged_rows_delete_and_the_rest_upsert(kind: str) -> None:
    first = load(kind, [(1, "a", False), (2, "b", False), (3, "c", False), (4, "gone before", True)], "r1")
    assert (first.inserted, first.updated, first.deleted, first.applied_deletes) == (3, 0, 0, 1)
    assert fetch(kind) == norm([(1, "a", False), (2, "b", False), (3, "c", False)], kind)

    second = load(kind, [(1, "a2", False), (2, "b", True), (5, "e", False), (9, "never loaded", True)], "r2")
    # two staged deletions applied (one matched a row), one update, one insert: 4 staged rows accounted for
    assert (second.inserted, second.updated, second.deleted, second.applied_deletes) == (1, 1, 1, 2)
    assert second.inserted + second.updated + second.applied_deletes == second.rows == 4
    assert fetch(kind) == norm([(1, "a2", False), (3, "c", False), (5, "e", False)], kind)

    again = load(kind, [(1, "a2", False), (2, "b", True), (5, "e", False), (9, "never loaded", True)], "r3")
    assert (again.deleted, again.applied_deletes) == (0, 2)
    assert fetch(kind) == norm([(1, "a2", False), (3, "c", False), (5, "e", False)], kind)


def test_delete_flag_must_be_a_staged_boolean(kind: str) -> None:
    tgt = make_target(target(kind, conn_id(kind), mode="merge", keys=["id"], delete_flag="deleted"))
    with pytest.raises(TargetSchemaError, match="delete_flag 'deleted' of accounts must be a boolean column"):
        tgt.load(batches(table([(1, "a", False)])), SCHEMA, window=DAY, run_id="r1")
    tgt.close()
