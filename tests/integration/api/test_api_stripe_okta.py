"""The stripe and okta presets against their stand-ins: full and incremental extracts value by value,
window boundaries, deletes merged into PostgreSQL, throttling without Retry-After."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from bulksync import stages
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window

UTC = dt.UTC
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 2}


def stripe_truth(s: Any, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Any]:
    out = {}
    for r in s.records("customers"):
        t = r["deleted"] if r["deleted"] is not None else r["created"]
        if start is None and r["deleted"] is not None:
            continue  # a full extract lists live customers, and deletions of no window
        if start is not None and not start <= t < end:
            continue
        out[r["id"]] = {
            "id": r["id"],
            "email": r["email"],
            "name": r["name"],
            "balance": r["balance"],
            "currency": r["currency"],
            "delinquent": r["delinquent"],
            "tier": r["metadata"]["tier"],
            "created": r["created"],
            "IsDeleted": r["deleted"] is not None,
        }
    return out


def test_stripe_customers_full_incremental_and_deleted_events(standin: Any, env: Any, pg_url: str) -> None:
    s = standin("stripe", "st", counts={"customers": 1440}, faults={"throttle_share": 0.15, "seed": 5})
    spec = api_pipeline(
        api_dataset(
            "c",
            "st",
            {"preset": "stripe", "object": "customers", "limits": FAST},
            {
                "kind": "postgres",
                "conn_id": "test_pg",
                "table": "stripe_customers",
                "mode": "merge",
                "keys": ["id"],
                "delete_flag": "IsDeleted",
            },
        )
    )
    ds = spec.dataset("c")
    full = window(None, None)
    ctx = stages.RunContext(run_id="full", window=full, try_number=1)
    manifest = stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    assert manifest.rows == 1440 and s.faults.served["throttle"] >= 1
    # a customer created exactly on the window's start and one on its end; two deleted in the window
    t = s.tables["customers"]
    t.delete("cus_00000000000100", dt.datetime(2026, 1, 1, 12, 10, tzinfo=UTC))
    t.delete("cus_00000000001000", dt.datetime(2026, 1, 1, 12, 20, tzinfo=UTC))
    inc_spec = api_pipeline(
        api_dataset(
            "c",
            "st",
            {"preset": "stripe", "object": "customers", "incremental": True, "limits": FAST},
            ds.target.model_dump(),
        )
    )
    win = window("2026-01-01T12:00", "2026-01-01T13:00")
    _, table = extract(inc_spec, "c", win, run_id="inc")
    start, end = dt.datetime(2026, 1, 1, 12, tzinfo=UTC), dt.datetime(2026, 1, 1, 13, tzinfo=UTC)
    assert rows_by(table, "id") == stripe_truth(s, start, end)
    created = sorted(r["created"] for r in table.to_pylist() if not r["IsDeleted"])
    assert created[0] == start and created[-1] < end and len(created) == 60
    ctx = stages.RunContext(run_id="inc", window=win, try_number=1)
    stages.transform(inc_spec, inc_spec.dataset("c"), ctx)
    result = stages.load(inc_spec, inc_spec.dataset("c"), ctx)
    assert result.deleted == 2
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM stripe_customers"))}
    engine.dispose()
    assert ids == {r["id"] for r in s.records("customers") if r["deleted"] is None}


def test_okta_users_link_header_paging_search_window_and_deactivations(standin: Any, env: Any) -> None:
    s = standin("okta", "okta", counts={"users": 1000}, faults={"throttle_share": 0.1, "seed": 11, "retry_after": 1})
    spec = api_pipeline(api_dataset("u", "okta", {"preset": "okta", "object": "users", "limits": FAST}))
    manifest, table = extract(spec, "u", window(None, None))
    assert set(table.column("id").to_pylist()) == {r["id"] for r in s.records("users")} and table.num_rows == 1000
    assert manifest.extra["source_stats"]["pages"] == 5
    t = s.tables["users"]
    t.delete(t.make(10)["id"], dt.datetime(2026, 1, 1, 20, 30, tzinfo=UTC))
    inc = api_pipeline(
        api_dataset("u", "okta", {"preset": "okta", "object": "users", "incremental": True, "limits": FAST})
    )
    _, table = extract(inc, "u", window("2026-01-01T20:00", "2026-01-01T21:00"), run_id="inc")
    start, end = dt.datetime(2026, 1, 1, 20, tzinfo=UTC), dt.datetime(2026, 1, 1, 21, tzinfo=UTC)
    expected = {
        r["id"]: (r["login"], r["deleted"] is not None) for r in s.records("users") if start <= r["updated"] < end
    }
    assert {r["id"]: (r["login"], r["IsDeleted"]) for r in table.to_pylist()} == expected
    assert sum(v[1] for v in expected.values()) == 1 and len(expected) == 61
