"""The msgraph preset and stand-in against every file of tests/fixtures/api_recordings/graph.

Replays (:mod:`tests.integration.api.recorded`) feed the recorded pages to the preset's engine path: rows
value by value, every nextLink followed verbatim (the request sent equals the next recorded request),
``@removed`` entries flagged, the deltaLink never followed, throttling and 401 behaviour; the stand-in's
answer to the same request is compared in shape. Pages built here are marked ``CONSTRUCTED``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sources.api.presets import expand
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
GRAPH_HEADERS = {"request-id", "client-request-id", "x-ms-ags-diagnostic", "odata-version"}


def run(obj: str, **over: Any) -> tuple[Any, Any]:
    spec = api_pipeline(api_dataset("g", "replay", {"preset": "msgraph", "object": obj, "limits": FAST, **over}))
    return extract(spec, "g", window(None, None))


def value(v: Any, typ: str | None) -> Any:
    """A recorded JSON value as the preset's column holds it."""
    if v is None:
        return None
    if typ == "timestamptz":
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if isinstance(v, list):
        return json.dumps(v, separators=(",", ":"))  # a list into a string column: its JSON text
    return v


def check_rows(table: Any, recorded_values: list[dict[str, Any]], obj: str) -> None:
    cols = expand({"preset": "msgraph", "object": obj})["records"]["columns"]
    got = {r["id"]: r for r in table.to_pylist()}
    assert set(got) == {v["id"] for v in recorded_values} and table.num_rows == len(recorded_values)
    for v in recorded_values:
        row = got[v["id"]]
        assert row["IsDeleted"] == ("@removed" in v)
        for c in cols:
            assert row[c["name"]] == value(v.get(c.get("path") or c["name"]), c.get("type")), (v["id"], c["name"])


def check_requests(s: Any, exchanges: list[dict[str, Any]]) -> None:
    """Every request after the first is the recorded next request, i.e. the nextLink verbatim."""
    assert len(s.seen) == len(exchanges)
    for got, ex in zip(s.seen[1:], exchanges[1:], strict=True):
        assert sent(got) == asked(ex["request"])


# -- recorded_users_delta_sequence.json ----------------------------------------------------------------------


def test_users_delta_recorded_rows_requests_and_standin_shape(replay: Any, standin: Any, env: Any) -> None:
    rec = recording("graph/recorded_users_delta_sequence.json")
    ex = rec["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    _, table = run("users")
    check_rows(table, [v for e in ex for v in e["response"]["body"]["value"]], "users")
    method, path, params = sent(s.seen[0])
    r_method, r_path, r_params = asked(ex[0]["request"])
    assert (method, path) == (r_method, r_path)
    preset_cols = {c["name"] for c in expand({"preset": "msgraph", "object": "users"})["records"]["columns"]}
    assert set(params["$select"].split(",")) == preset_cols and preset_cols <= set(r_params["$select"].split(","))
    check_requests(s, ex)
    # the stand-in, asked the recorded request: same envelope, headers, record rules
    g = standin("msgraph", "graph", counts={"users": 30}, options={"page_size": 20, "empty_pages": 0})
    g.tables["users"].delete(g.tables["users"].make(3)["id"], dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    resp = standin_call("graph", "GET", r_path, params=r_params)
    mine = resp.json()
    assert list(mine) == list(ex[0]["response"]["body"])  # @odata.context, @odata.nextLink, value
    assert GRAPH_HEADERS | {"preference-applied"} <= set(resp.headers) & set(ex[0]["response"]["headers"])
    assert resp.headers["preference-applied"] == ex[0]["response"]["headers"]["preference-applied"]
    last = standin_call("graph", "GET", mine["@odata.nextLink"]).json()
    assert list(last) == list(ex[1]["response"]["body"])  # @odata.context, @odata.deltaLink, value
    selected = set(r_params["$select"].split(",")) | {"id"}
    for values in (mine["value"] + last["value"], ex[0]["response"]["body"]["value"]):
        removed = [v for v in values if "@removed" in v]
        assert removed and all(set(v) == {"id", "@removed"} and v["@removed"] == {"reason": "changed"} for v in removed)
        for v in values:  # a delta page leaves null and empty properties out (disagreement fixed in the stand-in)
            if "@removed" not in v:
                assert set(v) <= selected and all(x is not None and x != [] for x in v.values())


# -- recorded_groups_delta_sequence.json ---------------------------------------------------------------------


def test_groups_delta_follows_every_recorded_nextlink_and_standin_reproduces_empty_pages(
    replay: Any, standin: Any, env: Any
) -> None:
    ex = recording("graph/recorded_groups_delta_sequence.json")["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    manifest, table = run("groups")
    check_rows(table, [v for e in ex for v in e["response"]["body"]["value"]], "groups")
    check_requests(s, ex)  # 12 requests: the ten empty pages with a nextLink were followed
    assert manifest.extra["source_stats"]["pages"] == 12
    empties = sum(1 for e in ex if not e["response"]["body"]["value"])  # 10 with a nextLink + the deltaLink page
    g = standin("msgraph", "graph", counts={"groups": 16}, options={"page_size": 16, "empty_pages": empties})
    pages = []
    url: str | None = "/v1.0/groups/delta"
    while url:
        body = standin_call("graph", "GET", url).json()
        pages.append(body)
        url = body.get("@odata.nextLink")
    assert [len(p["value"]) > 0 for p in pages] == [len(e["response"]["body"]["value"]) > 0 for e in ex]
    assert "@odata.deltaLink" in pages[-1] and "@odata.deltaLink" in ex[-1]["response"]["body"]
    assert set(pages[0]["value"][0]) <= set(ex[0]["response"]["body"]["value"][0])  # no property Graph lacks
    assert g.count("groups") == 16


# -- recorded_service_principals_delta_sequence.json ----------------------------------------------------------


def test_service_principals_delta_with_removed_entries_on_the_deltalink_page(replay: Any, env: Any) -> None:
    ex = recording("graph/recorded_service_principals_delta_sequence.json")["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    _, table = run("service_principals")  # the object added for this recording
    values = [v for e in ex for v in e["response"]["body"]["value"]]
    check_rows(table, values, "service_principals")
    assert table.num_rows == 179 and sum(table.column("IsDeleted").to_pylist()) == 5
    assert sent(s.seen[0]) == asked(ex[0]["request"])  # the preset's $select is the recorded one
    check_requests(s, ex)


# -- recorded_list_users_single_page.json --------------------------------------------------------------------


def test_list_users_single_page_rows_no_count_and_standin_defaults(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("graph/recorded_list_users_single_page.json")["exchanges"][0]
    s = replay([ex], hosts=ALL_HOSTS)
    manifest, table = run("users_list")
    got = {r["id"]: r for r in table.to_pylist()}
    for v in ex["response"]["body"]["value"]:
        assert (got[v["id"]]["displayName"], got[v["id"]]["mail"], got[v["id"]]["userPrincipalName"]) == (
            v["displayName"],
            v["mail"],
            v["userPrincipalName"],
        )
        assert got[v["id"]]["accountEnabled"] is None  # not in Graph's default properties, and not recorded
    assert table.num_rows == 5 and len(s.seen) == 1  # no nextLink: one page
    assert manifest.source_count is None  # no @odata.count in the answer: nothing to reconcile against
    assert s.seen[0]["headers"]["consistencylevel"] == "eventual"  # $count needs it
    standin("msgraph", "graph", counts={"users": 5})
    resp = standin_call("graph", "GET", ex["request"]["path"])
    mine = resp.json()
    assert list(mine) == list(ex["response"]["body"])
    same_keys(mine["value"][0], ex["response"]["body"]["value"][0])  # the default property set, nulls included
    assert GRAPH_HEADERS | {"x-ms-resource-unit"} <= set(resp.headers)
    assert resp.headers["content-type"] == ex["response"]["headers"]["content-type"]


# -- doc_delta_query_users_sequence.json --------------------------------------------------------------------


def test_documented_delta_round_stops_at_the_deltalink_and_flags_removed(replay: Any, env: Any) -> None:
    doc = recording("graph/doc_delta_query_users_sequence.json")
    ex = doc["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    cols = [{"name": "id", "nullable": False}, {"name": "displayName"}, {"name": "givenName"}, {"name": "surname"}]
    _, table = run("users", records={"path": "value", "columns": cols})
    round_values = [v for e in ex[:3] for v in e["response"]["body"]["value"]]
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == sorted(
        ({**{c["name"]: v.get(c["name"]) for c in cols}, "IsDeleted": "@removed" in v} for v in round_values),
        key=lambda r: r["id"],
    )
    assert len(s.seen) == 3  # the deltaLink (exchange 4) is the next round's start, not a page of this one
    check_requests(s, ex[:3])
    alt = doc["alternative_deltalink_response_with_changes"]
    s2 = replay([alt], hosts=ALL_HOSTS)
    _, table = run("users", records={"path": "value", "columns": cols})
    assert {r["id"]: r["IsDeleted"] for r in table.to_pylist()} == {
        v["id"]: "@removed" in v for v in alt["response"]["body"]["value"]
    }  # reason "changed" (soft-deleted) is a deletion too
    assert len(s2.seen) == 1


# -- doc_throttling_429.json, handwritten_401_invalid_token.json ------------------------------------------------


def test_documented_429_waits_for_retry_after_then_reads(replay: Any, env: Any) -> None:
    throttled = recording("graph/doc_throttling_429.json")["exchanges"][0]
    page = {"response": {"status": 200, "body": {"value": [{"id": "u1", "displayName": "A"}]}}}  # CONSTRUCTED
    s = replay([throttled, page], hosts=ALL_HOSTS)
    manifest, table = run("users", limits={**FAST, "max_wait_seconds": 1.0})
    assert table.column("id").to_pylist() == ["u1"]
    assert s.seen[1]["at"] - s.seen[0]["at"] >= 0.95  # Retry-After 10 s, capped at max_wait 1 s; backoff is 0.01
    assert manifest.extra["source_stats"]["http_429"] == 1 and manifest.extra["source_stats"]["retries"] == 1


def test_standin_429_has_the_documented_body_and_retry_after(standin: Any, env: Any) -> None:
    doc = recording("graph/doc_throttling_429.json")["exchanges"][0]["response"]
    standin("msgraph", "graph", counts={"users": 5}, faults={"throttle_share": 1.0, "seed": 1})
    resp = standin_call("graph", "GET", "/v1.0/users")
    assert resp.status_code == 429 and "retry-after" in resp.headers
    same_keys(resp.json(), doc["body"])
    assert resp.json()["error"]["code"] == doc["body"]["error"]["code"] == "TooManyRequests"


def test_invalid_authentication_token_401_fails_clearly(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("graph/handwritten_401_invalid_token.json")["exchanges"][0]
    s = replay([ex], hosts=ALL_HOSTS, extra={"auth_kind": "bearer"}, conn={"password": "tok"})
    with pytest.raises(ConfigurationError, match=r"refused the credentials.*HTTP 401: Access token is empty"):
        run("users_list")
    assert len(s.seen) == 1
    standin("msgraph", "graph", counts={"users": 2})
    from bulksync.hooks.api import ApiHook

    with ApiHook("graph").client() as http:
        mine = http.get(ex["request"]["url"].replace("https://graph.microsoft.com", ""))
    assert mine.status_code == 401
    same_keys(mine.json(), ex["response"]["body"])
    assert mine.json()["error"]["message"] == ex["response"]["body"]["error"]["message"]


# -- doc_paging_contract.json --------------------------------------------------------------------------------


def test_paging_contract_nextlink_verbatim_header_resent_and_count_from_first_page(
    replay: Any, standin: Any, env: Any
) -> None:
    doc = recording("graph/doc_paging_contract.json")
    assert any("ConsistencyLevel" in f for f in doc["facts"]) and any("@odata.count" in f for f in doc["facts"])
    nxt = doc["example_nextLink_as_printed_in_docs"].replace(" ... ", "")
    page1 = {"@odata.count": 3, "value": [{"id": "a"}, {"id": "b"}], "@odata.nextLink": nxt}  # CONSTRUCTED
    page2 = {"value": [{"id": "c"}]}  # CONSTRUCTED: no @odata.count after the first page
    s = replay([{"response": {"status": 200, "body": b}} for b in (page1, page2)], hosts=ALL_HOSTS)
    manifest, table = run("users_list")
    assert table.column("id").to_pylist() == ["a", "b", "c"] and manifest.source_count == 3
    assert sent(s.seen[1]) == asked({"url": nxt})  # verbatim: $top=5 and the $skiptoken, nothing re-added
    assert all(x["headers"].get("consistencylevel") == "eventual" for x in s.seen)  # resent on the nextLink
    standin("msgraph", "graph", counts={"users": 7}, options={"page_size": 5})
    first = standin_call(
        "graph", "GET", "/v1.0/users", params={"$count": "true", "$top": 5}, headers={"ConsistencyLevel": "eventual"}
    ).json()
    second = standin_call("graph", "GET", first["@odata.nextLink"], headers={"ConsistencyLevel": "eventual"}).json()
    assert first["@odata.count"] == 7 and "@odata.count" not in second and "$top=5" in first["@odata.nextLink"]
    refused = standin_call("graph", "GET", "/v1.0/users", params={"$count": "true"})
    assert refused.status_code == 400  # $count without ConsistencyLevel: eventual
