"""The msgraph preset against the Graph stand-in: MSAL against its token endpoint, delta rounds with
@removed, $count totals, a windowed $filter, throttling."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from bulksync import stages
from bulksync.sandbox.apis.common import iso_s
from bulksync.sandbox.apis.msgraph import USER_FIELDS
from bulksync.sandbox.asgi import StandIn
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window

FAST = {"initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}


def user_truth(s: StandIn) -> dict[str, dict[str, Any]]:
    import json

    out: dict[str, dict[str, Any]] = {}
    for r in s.records("users"):
        if r["deleted"] is not None:
            out[r["id"]] = dict.fromkeys(USER_FIELDS)
            out[r["id"]].update(id=r["id"], IsDeleted=True)
            continue
        out[r["id"]] = {
            "id": r["id"],
            "displayName": r["displayName"],
            "givenName": r["givenName"],
            "surname": r["surname"],
            "mail": r["mail"],
            "userPrincipalName": r["userPrincipalName"],
            "jobTitle": r["jobTitle"],
            "accountEnabled": r["accountEnabled"],
            # a delta page leaves empty properties out (graph/recorded_users_delta_sequence.json): null, not "[]"
            "businessPhones": json.dumps(r["businessPhones"]).replace(" ", "") if r["businessPhones"] else None,
            "officeLocation": r["officeLocation"],
            "createdDateTime": r["created"],
            "IsDeleted": False,
        }
    return out


def users_spec(obj: str = "users", **options: Any) -> Any:
    return api_pipeline(
        api_dataset(
            "users",
            "graph",
            {"preset": "msgraph", "object": obj, "limits": FAST, **options},
            {
                "kind": "postgres",
                "conn_id": "test_pg",
                "table": "entra_users",
                "mode": "merge",
                "keys": ["id"],
                "delete_flag": "IsDeleted",
            },
        )
    )


def _norm(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for r in rows.values():
        if r.get("businessPhones"):
            r["businessPhones"] = r["businessPhones"].replace(" ", "")
    return rows


def test_users_delta_round_equals_the_standin_with_removed_users_flagged(standin: Any, env: Any) -> None:
    s = standin("msgraph", "graph", counts={"users": 530}, options={"page_size": 100, "empty_pages": 3})
    s.tables["users"].delete(s.tables["users"].make(7)["id"], dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    manifest, table = extract(users_spec(), "users", window(None, None))
    assert _norm(rows_by(table, "id")) == _norm(user_truth(s))
    stats = manifest.extra["source_stats"]
    assert stats["pages"] == 6 + 3  # the empty pages with a nextLink were followed to the deltaLink
    assert stats["authentications"] == 1 and s.auth.counts["issued"] == 1  # one MSAL token for the round


def test_removed_users_are_deleted_from_a_merge_target(standin: Any, env: Any, pg_url: str) -> None:
    s = standin("msgraph", "graph", counts={"users": 120})
    spec = users_spec()
    ds = spec.dataset("users")
    for run, mutate in (("r1", False), ("r2", True)):
        if mutate:
            t = s.tables["users"]
            for i in (1, 2, 3):
                t.delete(t.make(i)["id"], s.clock.now())
            t.upsert(t.make(4)["id"], {"displayName": "Renamed User"}, s.clock.now(), lambda: "x")
        ctx = stages.RunContext(run_id=run, window=window(None, None), try_number=1)
        stages.extract(spec, ds, ctx)
        stages.transform(spec, ds, ctx)
        stages.load(spec, ds, ctx)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        got: dict[str, str] = {r[0]: r[1] for r in conn.execute(sa.text('SELECT id, "displayName" FROM entra_users'))}
    engine.dispose()
    assert got == {r["id"]: r["displayName"] for r in s.records("users") if r["deleted"] is None}
    assert len(got) == 117


def test_users_list_total_reconciles_and_throttling_is_retried(standin: Any, env: Any) -> None:
    s = standin(
        "msgraph", "graph", counts={"users": 2500}, faults={"throttle_share": 0.3, "seed": 3, "retry_after": 0.02}
    )
    manifest, table = extract(users_spec("users_list"), "users", window(None, None))
    assert manifest.source_count == manifest.rows == 2500
    assert set(table.column("id").to_pylist()) == {r["id"] for r in s.records("users")}
    assert s.faults.served["throttle"] >= 1 and manifest.extra["source_stats"]["throttled"] >= 1


def test_directory_audits_window_keeps_the_start_and_drops_the_end(standin: Any, env: Any) -> None:
    s = standin("msgraph", "graph", counts={"directory_audits": 1440})
    _, table = extract(
        users_spec("directory_audits", incremental=True), "users", window("2026-01-01T08:00", "2026-01-01T09:00")
    )
    start, end = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    expected = {
        r["id"]: (r["updated"], r["initiatedBy"]["user"]["userPrincipalName"])
        for r in s.records("directory_audits")
        if start <= r["updated"] < end
    }
    got = {r["id"]: (r["activityDateTime"], r["initiatedBy_upn"]) for r in table.to_pylist()}
    assert got == expected and len(got) == 60
    assert min(v[0] for v in got.values()) == start and iso_s(end) not in {iso_s(v[0]) for v in got.values()}
