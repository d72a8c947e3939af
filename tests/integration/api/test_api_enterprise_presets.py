"""The dynamics365, sap_odata and netsuite_suiteql presets against their stand-ins: full and incremental
extracts value by value, window boundaries, totals (Dataverse's 5,000 cap, SAP's string __count,
SuiteQL's totalResults) and faults; and every object of every preset resolving to valid options.
workday_raas and the rest of netsuite_suiteql have their own modules (test_api_workday_raas.py,
test_api_netsuite_suiteql.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window

UTC = dt.UTC
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
START, END = dt.datetime(2026, 1, 1, 10, tzinfo=UTC), dt.datetime(2026, 1, 1, 12, tzinfo=UTC)


def run(preset: str, obj: str, conn: str, incremental: bool, **extra: Any) -> Any:
    spec = api_pipeline(
        api_dataset("d", conn, {"preset": preset, "object": obj, "incremental": incremental, "limits": FAST, **extra})
    )
    return extract(
        spec,
        "d",
        window("2026-01-01T10:00", "2026-01-01T12:00") if incremental else window(None, None),
        run_id="inc" if incremental else "full",
    )


def in_window(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if START <= r["updated"] < END]


def test_dynamics365_accounts_with_msal_paging_cookie_and_capped_count(standin: Any, env: Any) -> None:
    s = standin(
        "dynamics365", "d365", counts={"accounts": 6000}, stamp_step=10.0, faults={"throttle_share": 0.1, "seed": 2}
    )
    manifest, table = run("dynamics365", "accounts", "d365", False)
    truth = {r["id"]: (r["name"], Decimal(r["revenue"]), r["updated"]) for r in s.records("accounts")}
    assert {r["accountid"]: (r["name"], r["revenue"], r["modifiedon"]) for r in table.to_pylist()} == truth
    assert manifest.source_count is None  # @odata.count said 5,000 (its cap): not a count
    assert manifest.extra["source_stats"]["pages"] == 6 and s.faults.served["throttle"] >= 1
    manifest, table = run("dynamics365", "accounts", "d365", True)
    expected = {r["id"] for r in in_window(s.records("accounts"))}
    assert set(table.column("accountid").to_pylist()) == expected and len(expected) == 720
    assert manifest.source_count == 720 == manifest.rows
    assert min(table.column("modifiedon").to_pylist()) == START


def test_sap_odata_v2_sales_orders_string_count_and_date_literals(standin: Any, env: Any) -> None:
    s = standin("sap_odata", "sap", counts={"sales_orders": 2500}, options={"page_size": 400})
    manifest, table = run("sap_odata", "sales_orders", "sap", False)
    got = {
        r["SalesOrder"]: (r["TotalNetAmount"], r["LastChangeDateTime"], r["CreationDate"]) for r in table.to_pylist()
    }
    assert got == {
        r["id"]: (Decimal(r["TotalNetAmount"]), r["updated"], r["created"].date()) for r in s.records("sales_orders")
    }
    assert (
        manifest.source_count == 2500 and manifest.extra["source_stats"]["pages"] == 7
    )  # __count is the string "2500"
    manifest, table = run("sap_odata", "sales_orders", "sap", True)
    assert set(table.column("SalesOrder").to_pylist()) == {r["id"] for r in in_window(s.records("sales_orders"))}
    assert manifest.source_count == manifest.rows == 120


def test_netsuite_suiteql_transactions_signed_offset_paging_and_totals(standin: Any, env: Any) -> None:
    # customers, deletes, the cap split and the recorded sequences: test_api_netsuite_suiteql.py
    s = standin(
        "netsuite_suiteql",
        "ns",
        counts={"transaction": 2300, "customer": 0},
        faults={"throttle_share": 0.1, "seed": 4},
    )
    manifest, table = run("netsuite_suiteql", "transactions", "ns", False)
    assert {r["id"]: r["foreigntotal"] for r in table.to_pylist()} == {
        int(r["id"]): Decimal(r["foreigntotal"]) for r in s.records("transaction")
    }
    assert manifest.source_count == 2300 and manifest.extra["source_stats"]["pages"] == 3
    manifest, table = run("netsuite_suiteql", "transactions", "ns", True)
    expected = {int(r["id"]): r["updated"].replace(microsecond=0) for r in in_window(s.records("transaction"))}
    assert {r["id"]: r["lastmodifieddate"] for r in table.to_pylist()} == expected
    assert manifest.source_count == manifest.rows == 120
    assert min(expected.values()) == START  # the record stamped on the window's start is in, the end's is out


# Objects that infer their columns on purpose: a tenant's own report or query, whose aliases nobody can
# know in advance (the user declares them, or lets `columns: infer` profile and freeze them).
INFERRED = {("workday_raas", "report"), ("netsuite_suiteql", "query")}


@pytest.mark.parametrize(
    "preset", ["hubspot", "msgraph", "dynamics365", "sap_odata", "netsuite_suiteql", "workday_raas", "okta", "stripe"]
)
def test_every_preset_object_resolves_to_valid_options(preset: str) -> None:
    from bulksync.sources.api.presets import preset as load
    from bulksync.spec.api import ApiOptions

    for obj in load(preset)["objects"]:
        opts = ApiOptions.model_validate({"preset": preset, "object": obj})
        if (preset, obj) in INFERRED:
            assert opts.records.columns == "infer", f"{preset}.{obj} is listed as inferring its columns"
            continue
        assert opts.records.columns != "infer", f"{preset}.{obj} infers its columns: declare them"
        names = {c.name for c in opts.records.columns}
        assert opts.primary_key and names >= set(opts.primary_key), f"{preset}.{obj}: no primary key among its columns"
        if opts.window is not None:
            assert opts.window.cursor_field in names, f"{preset}.{obj}: the window's cursor is not a column"


def test_the_objects_that_infer_their_columns_exist() -> None:
    from bulksync.sources.api.presets import preset as load

    assert all(obj in load(preset)["objects"] for preset, obj in INFERRED)
