"""The stripe preset and stand-in against every file of tests/fixtures/api_recordings/stripe: the recorded
customers page, the SDK's auto-paging mock, the documented list example, stripe-mock's customer fixture,
the 429/401 bodies and the documented list rules. Pages built here are marked ``CONSTRUCTED``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sources.api.presets import expand
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, preset_options, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
NO_EVENTS = {
    "response": {"status": 200, "body": {"object": "list", "data": [], "has_more": False, "url": "/v1/events"}}
}


def run(options: dict[str, Any], win: tuple[str | None, str | None] = (None, None)) -> tuple[Any, Any]:
    return extract(api_pipeline(api_dataset("c", "replay", {"limits": FAST, **options})), "c", window(*win))


def customer_row(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"],
        "email": c["email"],
        "name": c["name"],
        "balance": c["balance"],
        "currency": c["currency"],
        "delinquent": c["delinquent"],
        "tier": c["metadata"].get("tier"),
        "created": dt.datetime.fromtimestamp(c["created"], dt.UTC),
        "IsDeleted": False,
    }


def test_recorded_customers_page_rows_request_and_standin_shape(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("stripe/recorded_list_customers_single_page.json")["exchanges"][0]
    s = replay([ex, NO_EVENTS], hosts=ALL_HOSTS)
    _, table = run({"preset": "stripe", "object": "customers"})
    data = ex["response"]["body"]["data"]
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == sorted(map(customer_row, data), key=lambda r: r["id"])
    assert sent(s.seen[0]) == asked(ex["request"])  # GET /v1/customers?limit=100, exactly
    assert len(s.seen) == 2 and sent(s.seen[1])[1:] == ("/v1/events", {"type": "customer.deleted", "limit": "100"})
    standin("stripe", "st", counts={"customers": 3})
    mine = standin_call("st", "GET", "/v1/customers", params=asked(ex["request"])[2]).json()
    assert list(mine) == list(ex["response"]["body"]) and mine["url"] == ex["response"]["body"]["url"]
    same_keys(mine["data"][0], data[0], ignore={"metadata"})  # customer_account added (the recorded field set)
    assert isinstance(mine["data"][0]["metadata"], dict) and isinstance(data[0]["metadata"], dict)  # free-form
    created = [c["created"] for c in mine["data"]]
    assert created == sorted(created, reverse=True) and [c["created"] for c in data] == sorted(
        (c["created"] for c in data), reverse=True
    )  # newest first, both


def test_sdk_autopaging_through_the_preset_paginator(replay: Any, env: Any) -> None:
    ex = recording("stripe/sdk_mock_autopaging_sequence.json")["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    _, path, params = asked(ex[0]["request"])
    opts = preset_options(
        "stripe",
        "customers",
        endpoint={"path": path, "params": params},
        records={"path": "data", "columns": [{"name": "id", "nullable": False}, {"name": "object"}]},
        deletes=None,
        window=None,
    )
    _, table = run(opts)
    assert table.column("id").to_pylist() == [d["id"] for e in ex for d in e["response"]["body"]["data"]]
    for got, e in zip(s.seen, ex, strict=True):  # starting_after = the last id; the other params kept
        m, p, q = asked(e["request"])
        assert sent(got) == (m, p, {**q, "limit": "100"})
    assert len(s.seen) == 2  # has_more false ended it


def test_documented_list_example_with_limit_3(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("stripe/doc_list_customers_example.json")["exchanges"][0]
    s = replay([ex, NO_EVENTS], hosts=ALL_HOSTS)
    _, table = run({"preset": "stripe", "object": "customers", "paginate": {"limit": 3}})
    assert table.to_pylist() == [customer_row(c) for c in ex["response"]["body"]["data"]]
    assert sent(s.seen[0]) == asked(ex["request"])
    standin("stripe", "st", counts={"customers": 5})
    mine = standin_call("st", "GET", "/v1/customers", params={"limit": 3}).json()
    assert len(mine["data"]) == 3 and set(mine) == set(ex["response"]["body"])
    assert set(ex["response"]["body"]["data"][0]) <= set(mine["data"][0])  # the documented (abridged) members


def test_standin_customer_has_the_spec_fixture_members(standin: Any, env: Any) -> None:
    fixture = recording("stripe/spec_fixture_customer.json")["body"]
    s = standin("stripe", "st", counts={"customers": 2})
    mine = s.render("customers", s.tables["customers"].make(0))
    # the recorded 2026 field set adds customer_account to stripe-mock's fixture; nothing else differs
    assert set(mine) == set(fixture) | {"customer_account"}
    assert set(mine["invoice_settings"]) >= {"custom_fields", "default_payment_method", "footer"} and set(
        fixture["invoice_settings"]
    ) <= set(mine["invoice_settings"])
    for k in ("balance", "created", "delinquent", "livemode"):
        assert type(mine[k]) is type(fixture[k]), k
    cols = {c["name"]: c for c in expand({"preset": "stripe", "object": "customers"})["records"]["columns"]}
    assert {c.get("path", n).split(".")[0] for n, c in cols.items()} <= set(fixture)  # every column's member exists


def test_429_is_retried_with_backoff_and_401_fails_without_our_key(replay: Any, standin: Any, env: Any) -> None:
    errors = recording("stripe/mock_errors_429_401.json")["responses"]
    throttled, refused = errors
    page = {
        "response": {"status": 200, "body": {"object": "list", "data": [], "has_more": False, "url": "/v1/customers"}}
    }
    s = replay([{"response": throttled}, page, NO_EVENTS], hosts=ALL_HOSTS)
    manifest, table = run({"preset": "stripe", "object": "customers"})
    assert table.num_rows == 0 and manifest.extra["source_stats"]["retries"] == 1 and len(s.seen) == 3
    replay(
        [{"response": refused}],
        hosts=ALL_HOSTS,
        extra={"auth_kind": "bearer"},
        conn={"password": "sk_test_SECRETKEY1234"},
    )
    with pytest.raises(ConfigurationError, match=r"HTTP 401: Invalid API Key provided: sk_test_\*+mFeM") as exc:
        run({"preset": "stripe", "object": "customers"})
    assert "SECRETKEY" not in str(exc.value)
    standin("stripe", "st", counts={"customers": 2}, faults={"throttle_share": 1.0, "seed": 1})
    mine = standin_call("st", "GET", "/v1/customers")
    assert mine.status_code == 429 and "retry-after" not in mine.headers
    same_keys(mine.json(), throttled["body"])
    assert mine.json()["error"]["code"] == "rate_limit"


def test_standin_401_body_matches(standin: Any, env: Any) -> None:
    refused = recording("stripe/mock_errors_429_401.json")["responses"][1]
    standin("stripe", "st", counts={"customers": 1})
    from bulksync.hooks.api import ApiHook

    with ApiHook("st").client() as http:
        mine = http.get("/v1/customers", headers={"Authorization": "Bearer sk_test_wrongwrongmFeM"})
    assert mine.status_code == 401
    same_keys(mine.json(), refused["body"])
    assert mine.json()["error"]["message"] == refused["body"]["error"]["message"]  # masked the same way: ****mFeM


def test_documented_list_rules_in_preset_and_standin(replay: Any, standin: Any, env: Any) -> None:
    facts = recording("stripe/doc_list_api_contract.json")["facts"]
    assert any("limit: 1 to 100, default 10" in f for f in facts)
    o = expand({"preset": "stripe", "object": "customers"})
    assert 1 <= o["paginate"]["limit"] <= 100 and o["limits"]["requests_per_second"] <= 25  # sandbox: 25/s
    assert set(o["window"]["params"]) == {"created[gte]", "created[lt]"} and o["window"]["format"] == "epoch_s"
    # a windowed read sends Unix seconds and pages on has_more, a page shorter than limit not ending it
    pages = [
        {"object": "list", "data": [{"id": "cus_b", "created": 1767229200}], "has_more": True, "url": "/v1/customers"},
        {"object": "list", "data": [{"id": "cus_a", "created": 1767225600}], "has_more": False, "url": "/v1/customers"},
    ]  # CONSTRUCTED from the facts
    first, second = ({"response": {"status": 200, "body": p}} for p in pages)
    s = replay([first, NO_EVENTS, second], hosts=ALL_HOSTS)  # deletions are listed after the first page
    _, table = run(
        {"preset": "stripe", "object": "customers", "incremental": True}, ("2026-01-01T00:00", "2026-01-02T00:00")
    )
    assert table.column("id").to_pylist() == ["cus_a", "cus_b"]
    q = sent(s.seen[0])[2]
    assert (q["created[gte]"], q["created[lt]"]) == ("1767225600", "1767312000")
    assert sent(s.seen[1])[1] == "/v1/events" and sent(s.seen[1])[2]["created[gte]"] == "1767225600"
    assert sent(s.seen[2])[2]["starting_after"] == "cus_b" and "ending_before" not in sent(s.seen[2])[2]
    standin("stripe", "st", counts={"customers": 15})
    assert len(standin_call("st", "GET", "/v1/customers").json()["data"]) == 10  # default limit
    assert standin_call("st", "GET", "/v1/customers", params={"limit": 101}).status_code == 400
    assert standin_call("st", "GET", "/v1/customers", params={"limit": 0}).status_code == 400
