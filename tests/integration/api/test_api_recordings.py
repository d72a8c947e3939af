"""The presets and stand-ins against the vendors' recorded responses (tests/fixtures/api_recordings,
copied from /work/shared/api-recordings; see its INDEX.md for where each file comes from).

A replay server (:mod:`tests.integration.api.recorded`: the stand-in framework answering each request
with the next recorded response, headers included, vendor hosts rewritten to itself) feeds the
recorded pages to the preset's options, so the engine's paging and columns meet the bytes the
vendors sent. The stand-ins' records are compared with the recorded records' shape.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bulksync.sandbox.asgi import StandInConfig
from bulksync.sources.api.paginate import link_next
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import recording

VENDOR_HOSTS = ("https://graph.microsoft.com", "https://api.hubapi.com", "https://api.stripe.com")
replay = recorded.replay  # the fixture (tests/integration/api/recorded.py)


def test_graph_groups_delta_round_with_ten_empty_pages_reads_all_sixteen_groups(replay: Any, env: Any) -> None:
    rec = recording("graph/recorded_groups_delta_sequence.json")
    s = replay(rec["exchanges"], hosts=VENDOR_HOSTS)
    spec = api_pipeline(api_dataset("g", "replay", {"preset": "msgraph", "object": "groups"}))
    _, table = extract(spec, "g", window(None, None))
    recorded = [v for ex in rec["exchanges"] for v in ex["response"]["body"]["value"]]
    assert len(s.seen) == len(rec["exchanges"]) == 12  # every page followed to the deltaLink
    assert sorted(table.column("id").to_pylist()) == sorted(v["id"] for v in recorded) and table.num_rows == 16
    by_id = {r["id"]: r for r in table.to_pylist()}
    for v in recorded:
        assert by_id[v["id"]]["displayName"] == v.get("displayName")
        assert by_id[v["id"]]["IsDeleted"] == ("@removed" in v)


def test_graph_users_delta_recorded_removed_entries_are_flagged(replay: Any, env: Any) -> None:
    rec = recording("graph/recorded_users_delta_sequence.json")
    replay(rec["exchanges"], hosts=VENDOR_HOSTS)
    spec = api_pipeline(api_dataset("u", "replay", {"preset": "msgraph", "object": "users"}))
    _, table = extract(spec, "u", window(None, None))
    recorded = rec["exchanges"][0]["response"]["body"]["value"]
    assert table.num_rows == 11 == len(recorded)
    # INDEX.md says 3 removed entries; the recorded page holds 4: the bytes win
    assert sum(table.column("IsDeleted").to_pylist()) == 4 == sum("@removed" in v for v in recorded)
    kelvin = next(r for r in table.to_pylist() if r["displayName"] == "Kelvin Wari")
    assert kelvin["createdDateTime"].isoformat() == "2024-06-07T14:27:03+00:00" and kelvin["accountEnabled"] is True


def test_hubspot_recorded_search_page_offset_after_and_string_amounts(replay: Any, env: Any) -> None:
    rec = recording("hubspot/recorded_search_deals_page1.json")
    page = rec["exchanges"][0]["response"]
    last = {"status": 200, "body": {"total": page["body"]["total"], "results": []}}
    s = replay([rec["exchanges"][0], {"request": rec["exchanges"][0]["request"], "response": last}], hosts=VENDOR_HOSTS)
    spec = api_pipeline(
        api_dataset(
            "d",
            "replay",
            {
                "preset": "hubspot",
                "object": "deals",
                "incremental": True,
                "deletes": None,
                "window": {"max_results": 10000},
            },
        )
    )
    manifest, table = extract(spec, "d", window("2026-02-01T00:00", "2026-04-01T00:00"))
    assert manifest.source_count == 21  # the recorded total
    got = {r["id"]: r["amount"] for r in table.to_pylist()}
    assert got == {
        r["id"]: Decimal(r["properties"]["amount"]) if r["properties"]["amount"] else None
        for r in page["body"]["results"]
    }
    assert len(s.seen) == 2 and s.seen[1]["body"]["after"] == "5"  # the recorded paging.next.after echoed back


def test_hubspot_recorded_last_list_page_has_no_paging_and_ends_the_read(replay: Any, env: Any) -> None:
    rec = recording("hubspot/recorded_list_contacts_last_page.json")
    s = replay(
        [
            rec["exchanges"][0],
            {"request": {"path": "/crm/v3/objects/contacts"}, "response": {"status": 200, "body": {"results": []}}},
        ],
        hosts=VENDOR_HOSTS,
    )
    spec = api_pipeline(api_dataset("c", "replay", {"preset": "hubspot", "object": "contacts"}))
    _, table = extract(spec, "c", window(None, None))
    recorded = rec["exchanges"][0]["response"]["body"]["results"]
    assert table.num_rows == len(recorded) == 26 and len(s.seen) == 2  # the page itself + the archived list
    assert {r["id"]: r["email"] for r in table.to_pylist()} == {r["id"]: r["properties"]["email"] for r in recorded}


def test_stripe_sdk_autopaging_sequence_sends_the_last_id_and_keeps_params(replay: Any, env: Any) -> None:
    rec = recording("stripe/sdk_mock_autopaging_sequence.json")
    s = replay(rec["exchanges"], hosts=VENDOR_HOSTS)
    spec = api_pipeline(
        api_dataset(
            "x",
            "replay",
            {
                "endpoint": {
                    "path": "/v1/myresources/mid/do_the_list_thing",
                    "params": {"param1": "abc", "param2": "def"},
                },
                "records": {"path": "data", "columns": [{"name": "id", "nullable": False}]},
                "paginate": {
                    "kind": "cursor",
                    "cursor_from_last": "id",
                    "cursor_param": "starting_after",
                    "has_more_path": "has_more",
                },
            },
        )
    )
    _, table = extract(spec, "x", window(None, None))
    assert table.column("id").to_pylist() == [
        d["id"] for ex in rec["exchanges"] for d in ex["response"]["body"]["data"]
    ]
    assert s.seen[1]["url"].endswith("param1=abc&param2=def&starting_after=cus_2")


@pytest.mark.parametrize("variant", ["current_docs", "older_docs"])
def test_okta_link_headers_in_both_documented_spellings(variant: str) -> None:
    doc = recording("okta/doc_link_header_pagination.json")[variant]
    values = [v for k, v in doc["headers"] if k.lower() == "link"]
    nxt = link_next(values)
    assert nxt is not None and "after=" in nxt and 'rel="self"' not in nxt
    recorded = recording("okta/recorded_system_log_with_next_link.json")["exchanges"][0]["response"]["headers"]["link"]
    assert link_next([recorded]) == "https://{yourOktaDomain}/api/v1/logs?after=1783111394963_1"
    assert link_next(['<https://x/api/v1/users?limit=200>; rel="self"']) is None  # the recorded last page


def _keys(obj: dict[str, Any]) -> set[str]:
    return set(obj)


def test_standin_records_have_the_recorded_shapes(tmp_path: Path) -> None:
    from bulksync.sandbox.apis.hubspot import HubSpotStandIn
    from bulksync.sandbox.apis.msgraph import GraphStandIn
    from bulksync.sandbox.apis.stripe import StripeStandIn

    hs = HubSpotStandIn(StandInConfig(workdir=tmp_path / "h", records=3))
    rec = recording("hubspot/recorded_list_contacts_last_page.json")["exchanges"][0]["response"]["body"]["results"][0]
    mine = hs.render("contacts", hs.tables["contacts"].make(0), list(rec["properties"]))
    assert _keys(mine) == _keys(rec) and _keys(mine["properties"]) == _keys(rec["properties"])
    g = GraphStandIn(StandInConfig(workdir=tmp_path / "g", records=3))
    rec_u = recording("graph/recorded_users_delta_sequence.json")["exchanges"][0]["response"]["body"]["value"][0]
    assert _keys(g.render("users", g.tables["users"].make(0), list(rec_u))) == _keys(rec_u)
    st = StripeStandIn(StandInConfig(workdir=tmp_path / "s", records=3))
    fixture = recording("stripe/spec_fixture_customer.json")["body"]
    assert _keys(st.render("customers", st.tables["customers"].make(0))) == _keys(fixture) - {
        "customer_account"
    } or _keys(st.render("customers", st.tables["customers"].make(0))) <= _keys(fixture)
    for s in (hs, g, st):
        s.stop()
