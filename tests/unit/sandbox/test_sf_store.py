"""The record store: REST changes overlay the seeded rows, keep Id order, stamp times, recompute formulas."""

from __future__ import annotations

import datetime as dt

import pytest

from bulksync.sandbox.salesforce import engine, ids, soql
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.schema import ACCOUNT, CONTACT, OPPORTUNITY
from bulksync.sandbox.salesforce.store import Store

NOW = dt.datetime(2026, 1, 5, 8, 30, 15, 123000, tzinfo=dt.UTC)


@pytest.fixture
def store() -> Store:
    s = Store({"Account": 120, "Contact": 50, "Opportunity": 50})
    s.clock = lambda: NOW
    return s


def test_create_update_delete_overlay_in_id_order(store: Store) -> None:
    before = store.chunk(ACCOUNT, 0, 120).to_pylist()
    new_id = store.create(ACCOUNT, {"Name": "Neu GmbH", "AnnualRevenue": 1000, "NumberOfEmployees": 8})
    store.update(ACCOUNT, before[3]["Id"], {"Name": "Renamed", "Industry": None})
    store.delete(ACCOUNT, before[7]["Id"])
    after = store.chunk(ACCOUNT, 0, 121).to_pylist()
    assert [r["Id"] for r in after] == [r["Id"] for r in before] + [new_id]
    assert new_id == ids.make_id("001", 120)
    changed = {3, 7, 120}
    assert [r for i, r in enumerate(after) if i not in changed] == [r for i, r in enumerate(before) if i not in changed]
    assert after[3] | {} == before[3] | {
        "Name": "Renamed",
        "Industry": None,
        "LastModifiedDate": NOW,
        "LastModifiedById": after[3]["LastModifiedById"],
        "SystemModstamp": NOW,
    }
    assert after[7]["IsDeleted"] is True and after[7]["SystemModstamp"] == NOW
    created = after[120]
    assert created["Revenue_Per_Employee__c"] == 125.0
    assert created["CreatedDate"] == created["SystemModstamp"] == NOW
    assert created["IsDeleted"] is False and created["Active__c"] is False


def test_queries_see_changes_and_deleted_only_with_query_all(store: Store) -> None:
    target = store.chunk(ACCOUNT, 10, 11).to_pylist()[0]
    store.delete(ACCOUNT, target["Id"])
    q = soql.parse(f"SELECT Id, IsDeleted FROM Account WHERE Id = '{target['Id']}'")
    assert [t.to_pylist() for t in engine.scan(store, q, include_deleted=False)] == []
    assert [r for t in engine.scan(store, q, include_deleted=True) for r in t.to_pylist()] == [
        {"Id": target["Id"], "IsDeleted": True}
    ]
    q = soql.parse("SELECT Id FROM Account WHERE SystemModstamp >= 2026-01-05T00:00:00Z")
    assert [r["Id"] for t in engine.scan(store, q, True) for r in t.to_pylist()] == [target["Id"]]


def test_derived_fields_follow_changes(store: Store) -> None:
    contact = store.chunk(CONTACT, 0, 1).to_pylist()[0]
    store.update(CONTACT, contact["Id"], {"FirstName": "Zoë", "LastName": "O'Neil"})
    assert store.get(CONTACT, contact["Id"])["Name"] == "Zoë O'Neil"
    opp_id = store.create(
        OPPORTUNITY, {"Name": "Big deal", "StageName": "Closed Won", "CloseDate": "2026-02-01", "Amount": 1000.5,
                      "Probability": 90}
    )  # fmt: skip
    opp = store.get(OPPORTUNITY, opp_id)
    assert (opp["IsClosed"], opp["IsWon"], opp["ExpectedRevenue"]) == (True, True, 900.45)
    assert opp["CloseDate"] == dt.date(2026, 2, 1)


@pytest.mark.parametrize(
    ("values", "code", "fragment"),
    [
        ({"Industry": "Banking"}, "REQUIRED_FIELD_MISSING", "[Name]"),
        ({"Name": "x", "Nmae": "y"}, "INVALID_FIELD", "No such column 'Nmae' on sobject of type Account"),
        ({"Name": "x", "SystemModstamp": "2026-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE", "SystemModstamp"),
        ({"Name": "x", "Revenue_Per_Employee__c": 1}, "INVALID_FIELD_FOR_INSERT_UPDATE", "Revenue_Per_Employee__c"),
        ({"Name": "x", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR", "NumberOfEmployees"),
        ({"Name": "x" * 256}, "STRING_TOO_LONG", "max length=255"),
    ],
)
def test_bad_writes_are_refused_and_change_nothing(store: Store, values: dict, code: str, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        store.create(ACCOUNT, values)
    assert (info.value.code, info.value.status) == (code, 400)
    assert fragment in info.value.message
    assert store.total(ACCOUNT) == 120 and store.version == 0


def test_unknown_and_deleted_records(store: Store) -> None:
    with pytest.raises(ApiError) as info:
        store.update(ACCOUNT, ids.make_id("001", 500), {"Name": "x"})
    assert info.value.code == "NOT_FOUND"
    victim = ids.make_id("001", 2)
    store.delete(ACCOUNT, victim)
    with pytest.raises(ApiError) as info:
        store.delete(ACCOUNT, victim)
    assert info.value.code == "ENTITY_IS_DELETED"


def test_filtered_scan_equals_filtering_every_row_in_python(store: Store) -> None:
    """WHERE runs on its own columns first; the result must equal filtering whole rows."""
    rows = store.chunk(ACCOUNT, 0, 120).to_pylist()
    store.update(ACCOUNT, rows[1]["Id"], {"Industry": "Banking", "AnnualRevenue": 7})  # now matches
    store.update(ACCOUNT, rows[2]["Id"], {"Industry": "Retail"})
    store.delete(ACCOUNT, rows[3]["Id"])
    store.create(ACCOUNT, {"Name": "Late Bank", "Industry": "Banking"})
    everything = store.chunk(ACCOUNT, 0, store.total(ACCOUNT)).to_pylist()
    for include_deleted in (False, True):
        q = soql.parse("SELECT Id, Name, Industry FROM Account WHERE Industry = 'Banking' OR AnnualRevenue < 1000000")
        got = [
            {k: r[k] for k in ("Id", "Name", "Industry")}
            for t in engine.scan(store, q, include_deleted, size=17)
            for r in t.to_pylist()
        ]
        expected = [
            {"Id": r["Id"], "Name": r["Name"], "Industry": r["Industry"]}
            for r in everything
            if (include_deleted or not r["IsDeleted"])
            and (r["Industry"] == "Banking" or (r["AnnualRevenue"] is not None and r["AnnualRevenue"] < 1_000_000))
        ]
        assert got == expected and len(expected) >= 3


def test_count_with_and_without_filters(store: Store) -> None:
    store.delete(ACCOUNT, ids.make_id("001", 0))
    everything = store.chunk(ACCOUNT, 0, 120).to_pylist()
    live = [r for r in everything if not r["IsDeleted"]]
    assert engine.count(store, soql.parse("SELECT COUNT() FROM Account"), include_deleted=True) == 120
    assert engine.count(store, soql.parse("SELECT COUNT() FROM Account"), include_deleted=False) == len(live)
    banking = soql.parse("SELECT COUNT() FROM Account WHERE Industry = 'Banking'")
    assert engine.count(store, banking, include_deleted=False) == sum(r["Industry"] == "Banking" for r in live)
