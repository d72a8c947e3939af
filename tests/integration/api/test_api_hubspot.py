"""The hubspot preset against the HubSpot stand-in (real HTTPS, real staging, real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import StagingError
from bulksync.sandbox.asgi import StandIn
from bulksync.sources.api.errors import CircuitOpenError
from bulksync.staging.reader import read_manifest
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window

FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
FAST_SEARCH = {"requests_per_second": 1000}  # the preset keeps search to 4 a second


def contact_truth(
    s: StandIn, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, dict[str, Any]]:
    """What the hubspot preset's contacts columns must hold, from the stand-in's own rows."""
    out = {}
    for r in s.records("contacts"):
        if r["deleted"] is not None:
            in_window = start is None or start <= r["deleted"] < end  # type: ignore[operator]
        else:
            in_window = start is None or start <= r["updated"] < end  # type: ignore[operator]
        if not in_window:
            continue
        out[r["id"]] = {
            "id": r["id"],
            "firstname": r["firstname"],
            "lastname": r["lastname"],
            "email": r["email"],
            "phone": r["phone"],
            "jobtitle": r["jobtitle"],
            "company": r["company"],
            "associatedcompanyid": r["associatedcompanyid"],
            "createdate": r["created"],
            "lastmodifieddate": r["updated"],
            "IsDeleted": r["deleted"] is not None,
        }
    return out


def contacts_spec(**options: Any) -> Any:
    return api_pipeline(
        api_dataset(
            "contacts",
            "hs",
            {"preset": "hubspot", "object": "contacts", "limits": FAST, "window": FAST_SEARCH, **options},
            {
                "kind": "postgres",
                "conn_id": "test_pg",
                "table": "hs_contacts",
                "mode": "merge",
                "keys": ["id"],
                "delete_flag": "IsDeleted",
            },
        )
    )


def test_full_and_incremental_extracts_equal_the_standin_value_by_value(standin: Any, env: Any) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 1440})  # one contact a minute through 2026-01-01
    for key in ("100000005", "100000900"):
        s.tables["contacts"].delete(key, dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.UTC))
    manifest, table = extract(contacts_spec(), "contacts", window(None, None))
    assert rows_by(table, "id") == contact_truth(s)
    assert manifest.rows == 1440 and manifest.source_count is None  # the list endpoint states no total

    start, end = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 13, tzinfo=dt.UTC)
    manifest, table = extract(
        contacts_spec(incremental=True), "contacts", window("2026-01-01T12:00", "2026-01-01T13:00")
    )
    got = rows_by(table, "id")
    assert got == contact_truth(s, start, end)
    stamps = sorted(r["lastmodifieddate"] for r in got.values())
    assert stamps[0] == start and max(stamps) < end  # the record exactly on the start is in, the one on the end is out
    assert any(r["updated"] == end for r in s.records("contacts"))
    assert manifest.source_count == 60 + 2 == manifest.rows  # search total + the contacts archived in the window


def test_a_window_over_the_search_cap_is_split_until_each_slice_fits(standin: Any, env: Any) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 12_000}, stamp_step=7.0)  # 12,000 changes in one day
    manifest, table = extract(
        contacts_spec(incremental=True), "contacts", window("2026-01-01T00:00", "2026-01-02T00:00")
    )
    start, end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    truth = contact_truth(s, start, end)
    assert len(truth) > 10_000
    assert rows_by(table, "id") == truth
    stats = manifest.extra["source_stats"]
    assert stats["window_splits"] >= 1 and all(sl["total"] <= 10_000 for sl in stats["slices"])
    assert sum(sl["total"] for sl in stats["slices"]) == len(truth) == manifest.source_count


def test_changes_and_archived_contacts_merge_into_postgres(standin: Any, env: Any, pg_url: str) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 300})
    spec_full, spec_inc = contacts_spec(), contacts_spec(incremental=True)
    ds = spec_full.dataset("contacts")
    full = window(None, None)
    ctx = stages.RunContext(run_id="full", window=full, try_number=1)
    stages.extract(spec_full, ds, ctx)
    stages.transform(spec_full, ds, ctx)
    stages.load(spec_full, ds, ctx)
    # changes during 2026-01-02: two contacts archived, one renamed, one created
    s.clock.set(dt.datetime(2026, 1, 2, 5, tzinfo=dt.UTC))
    t = s.tables["contacts"]
    t.delete("100000010", s.clock.now())
    t.delete("100000011", s.clock.now())
    t.upsert("100000012", {"firstname": "Renamed"}, s.clock.now(), lambda: "x")
    t.upsert(
        None,
        {
            "firstname": "New",
            "lastname": "Person",
            "email": "new@example.com",
            "phone": None,
            "jobtitle": None,
            "company": None,
            "associatedcompanyid": None,
        },
        s.clock.now(),
        lambda: "100999999",
    )
    inc = window("2026-01-02T00:00", "2026-01-02T06:00")
    ds = spec_inc.dataset("contacts")
    ctx = stages.RunContext(run_id="inc", window=inc, try_number=1)
    manifest = stages.extract(spec_inc, ds, ctx)
    assert manifest.rows == manifest.source_count == 4
    stages.transform(spec_inc, ds, ctx)
    result = stages.load(spec_inc, ds, ctx)
    rec = stages.reconcile(spec_inc, ds, ctx)
    assert result.deleted == 2 and rec["status"] == "success", rec
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.text("SELECT id, firstname, lastmodifieddate FROM hs_contacts"))}
    engine.dispose()
    live = {k: v for k, v in contact_truth(s).items() if not v["IsDeleted"]}
    assert set(rows) == set(live)
    assert all(
        rows[k].firstname == v["firstname"] and rows[k].lastmodifieddate == v["lastmodifieddate"]
        for k, v in live.items()
    )


def test_twenty_percent_faults_still_give_the_exact_extract(standin: Any, env: Any) -> None:
    faults = {
        "throttle_share": 0.06,
        "unavailable_share": 0.05,
        "reset_share": 0.04,
        "truncate_share": 0.03,
        "expire_share": 0.02,
        "seed": 7,
        "retry_after": 0.01,
    }
    s = standin("hubspot", "hs", counts={"contacts": 1440}, faults=faults)
    manifest, table = extract(
        contacts_spec(incremental=True), "contacts", window("2026-01-01T06:00", "2026-01-01T18:00")
    )
    assert rows_by(table, "id") == contact_truth(
        s, dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 18, tzinfo=dt.UTC)
    )
    served = s.faults.served
    assert sum(served.values()) >= 3 and manifest.extra["source_stats"]["retries"] >= 3, served
    assert manifest.source_count == manifest.rows == 720


def test_an_access_token_expiring_twice_in_one_extract_is_renewed_each_time(standin: Any, env: Any) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 1000}, faults={"schedule": {3: "expire", 7: "expire"}})
    manifest, table = extract(contacts_spec(), "contacts", window(None, None))
    assert rows_by(table, "id") == contact_truth(s)
    stats = manifest.extra["source_stats"]
    assert stats["reauthentications"] == 2 and stats["authentications"] == 3 and stats["http_401"] == 2
    assert s.auth.counts["refreshed"] == 3


def test_the_circuit_breaker_stops_an_api_that_keeps_failing(standin: Any, env: Any) -> None:
    standin("hubspot", "hs", counts={"contacts": 100}, faults={"unavailable_share": 1.0, "retry_after": 0.01})
    spec = contacts_spec(limits={**FAST, "max_attempts": 30, "breaker_failures": 5})
    with pytest.raises(CircuitOpenError, match=r"5 requests in a row failed \(last: HTTP 503\).*circuit breaker"):
        extract(spec, "contacts", window(None, None))
    with pytest.raises(StagingError):
        read_manifest(stages.partition_for(spec, spec.dataset("contacts"), window(None, None)), "extract")


def test_company_contacts_fan_out_over_every_company(standin: Any, env: Any) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 400}, options={"contacts_per_company": 8})
    spec = api_pipeline(api_dataset("cc", "hs", {"preset": "hubspot", "object": "company_contacts", "limits": FAST}))
    manifest, table = extract(spec, "cc", window(None, None))
    got = {(r["company_id"], r["id"]): r["email"] for r in table.to_pylist()}
    assert got == {(r["associatedcompanyid"], r["id"]): r["email"] for r in s.records("contacts")}
    assert manifest.extra["source_stats"]["parents"] == 50


def test_company_contact_associations_through_the_v3_associations_endpoint(standin: Any, env: Any) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 120}, options={"contacts_per_company": 6})
    spec = api_pipeline(
        api_dataset("a", "hs", {"preset": "hubspot", "object": "company_contact_associations", "limits": FAST})
    )
    _, table = extract(spec, "a", window(None, None))
    got = {(r["company_id"], r["contact_id"], r["association_type"]) for r in table.to_pylist()}
    assert got == {(r["associatedcompanyid"], r["id"], "company_to_contact") for r in s.records("contacts")}
