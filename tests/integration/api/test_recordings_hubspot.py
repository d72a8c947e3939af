"""The hubspot preset and stand-in against every file of tests/fixtures/api_recordings/hubspot.

Each recorded (or documented) answer is replayed over HTTPS by :mod:`tests.integration.api.recorded` to the
preset's own engine path; the test checks the rows value by value, the requests bulksync sent against the
recorded ones, the totals and the error behaviour, and that the stand-in answers the same request in the
same shape. Pages the recorder did not capture (the page after a recorded first page) are built here and
marked ``CONSTRUCTED``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sources.api.errors import ApiQuotaExhausted, ApiRequestError
from bulksync.sources.api.presets import expand
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
WIN = ("2026-02-01T00:00", "2026-04-01T00:00")


def ts(v: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None


def last_page(total: int | None = None) -> dict[str, Any]:
    """CONSTRUCTED: an empty last page (no ``paging``), where the recorder stopped after page 1."""
    body: dict[str, Any] = {"results": []} if total is None else {"total": total, "results": []}
    return {"request": {}, "response": {"status": 200, "body": body}}


def run(obj: str, incremental: bool = False, **over: Any) -> tuple[Any, Any]:
    spec = api_pipeline(
        api_dataset("h", "replay", {"preset": "hubspot", "object": obj, "incremental": incremental, **over})
    )
    return extract(spec, "h", window(*WIN) if incremental else window(None, None))


# -- recorded_list_contacts_last_page.json ----------------------------------------------------------


def test_list_contacts_last_page_rows_request_and_standin_shape(replay: Any, standin: Any, env: Any) -> None:
    rec = recording("hubspot/recorded_list_contacts_last_page.json")
    s = replay([rec["exchanges"][0], last_page()], hosts=ALL_HOSTS)
    manifest, table = run("contacts", limits=FAST)
    results = rec["exchanges"][0]["response"]["body"]["results"]
    got = {r["id"]: r for r in table.to_pylist()}
    assert len(got) == len(results) == 26
    for r in results:
        p, row = r["properties"], got[r["id"]]
        for col in ("firstname", "lastname", "email", "phone", "jobtitle", "company"):
            assert row[col] == p[col], (r["id"], col)
        assert row["createdate"] == ts(p["createdate"]) and row["lastmodifieddate"] == ts(p["lastmodifieddate"])
        assert row["IsDeleted"] is False
    # the request: the recorded path and page size, and every property the recording asked for
    # (disagreement fixed: the preset relied on createdate/lastmodifieddate coming back unasked)
    method, path, params = sent(s.seen[0])
    r_method, r_path, r_params = asked(rec["exchanges"][0]["request"])
    assert (method, path, params["limit"]) == (r_method, r_path, r_params["limit"])
    assert set(r_params["properties"].split(",")) <= set(params["properties"].split(","))
    assert sent(s.seen[1])[2]["archived"] == "true" and len(s.seen) == 2  # no paging member: the list ended
    assert manifest.source_count is None  # the list endpoint states no total
    # the stand-in answers the same request in the same shape (body, record, properties, rate-limit headers)
    hs = standin("hubspot", "hs", counts={"contacts": 3})
    resp = standin_call("hs", "GET", r_path, params=r_params)
    mine = resp.json()
    assert set(mine) == set(rec["exchanges"][0]["response"]["body"]) == {"results"}
    same_keys(mine["results"][0], results[0])
    rate = {h for h in rec["exchanges"][0]["response"]["headers"] if h.startswith("x-hubspot-ratelimit")}
    assert {h for h in resp.headers if h.startswith("x-hubspot-ratelimit")} == rate and len(rate) == 5
    assert resp.headers["content-type"] == rec["exchanges"][0]["response"]["headers"]["content-type"]
    assert hs.count("contacts") == 3


# -- recorded_list_deals_with_associations.json -------------------------------------------------------


def test_list_deals_with_associations_param_and_no_associations_member(replay: Any, standin: Any, env: Any) -> None:
    rec = recording("hubspot/recorded_list_deals_with_associations.json")
    ex = rec["exchanges"][0]
    s = replay([ex, last_page()], hosts=ALL_HOSTS)
    _, r_path, r_params = asked(ex["request"])
    assoc_col = {"name": "companies", "path": "associations.companies.results"}
    preset_cols = expand({"preset": "hubspot", "object": "deals"})["records"]["columns"]
    _, table = run(
        "deals",
        limits=FAST,
        endpoint={"params": {"associations": r_params["associations"]}},
        records={"path": "results", "columns": [*preset_cols, assoc_col]},
    )
    results = ex["response"]["body"]["results"]
    got = {r["id"]: r for r in table.to_pylist()}
    assert len(got) == len(results) == 21
    for r in results:
        p, row = r["properties"], got[r["id"]]
        assert row["dealname"] == p["dealname"] and row["dealstage"] == p["dealstage"]
        assert row["amount"] == (Decimal(p["amount"]) if p["amount"] else None)  # "3000" and "5000.00"
        assert row["hs_lastmodifieddate"] == ts(p["hs_lastmodifieddate"]) and row["closedate"] == ts(p["closedate"])
        assert row["companies"] is None  # no deal had associations: HubSpot leaves the member out
    _, path, params = sent(s.seen[0])
    assert path == r_path and params["associations"] == "companies,contacts" and params["limit"] == r_params["limit"]
    assert set(r_params["properties"].split(",")) - {"hubspot_owner_id", "description"} <= set(
        params["properties"].split(",")
    )
    hs = standin("hubspot", "hs", counts={"deals": 4, "companies": 2})
    mine = standin_call("hs", "GET", r_path, params=r_params).json()
    assert set(mine) == {"results"}
    plain = next(d for d in mine["results"] if "associations" not in d or d["associations"])
    same_keys(plain, results[0], ignore={"associations"})
    assert all(
        set(d["associations"]) <= {"companies", "contacts"} and d["associations"]["companies"]["results"][0]["type"]
        for d in mine["results"]
        if "associations" in d
    )
    assert hs.count("deals") == 4


# -- recorded_search_deals_page1.json, recorded_search_tickets_page1.json, doc_search_response_example.json ---


@pytest.mark.parametrize(
    ("name", "obj"),
    [("recorded_search_deals_page1.json", "deals"), ("recorded_search_tickets_page1.json", "tickets")],
)
def test_recorded_search_first_page_offset_after_total_and_rows(replay: Any, env: Any, name: str, obj: str) -> None:
    rec = recording(f"hubspot/{name}")
    ex = rec["exchanges"][0]
    body = ex["response"]["body"]
    s = replay([ex, last_page(body["total"])], hosts=ALL_HOSTS)
    limit = ex["request"]["body"]["limit"]
    manifest, table = run(
        obj,
        incremental=True,
        deletes=None,
        limits=FAST,
        window={"requests_per_second": 1000, "paginate": {"limit": limit}},
    )
    assert manifest.source_count == body["total"]  # the recorded total (21, 22) is what is reconciled
    got = {r["id"]: r for r in table.to_pylist()}
    assert set(got) == {r["id"] for r in body["results"]}
    for r in body["results"]:
        for k, v in r["properties"].items():
            if k in got[r["id"]] and k != "amount":
                want = ts(v) if k in ("createdate", "hs_lastmodifieddate", "closedate") else v
                assert got[r["id"]][k] == want, (r["id"], k)
        if "amount" in r["properties"]:
            assert got[r["id"]]["amount"] == (Decimal(r["properties"]["amount"]) if r["properties"]["amount"] else None)
    m, path, _ = sent(s.seen[0])
    assert (m, path) == ("POST", ex["request"]["path"]) and s.seen[0]["body"]["limit"] == limit
    assert set(ex["request"]["body"]["properties"]) <= set(s.seen[0]["body"]["properties"])
    assert "after" not in s.seen[0]["body"] or s.seen[0]["body"]["after"] == ""
    assert s.seen[1]["body"]["after"] == body["paging"]["next"]["after"]  # "5" / "10": echoed as sent
    assert {k: v for k, v in s.seen[1]["body"].items() if k != "after"} == {
        k: v for k, v in s.seen[0]["body"].items() if k != "after"
    }


def test_documented_opaque_after_is_echoed_verbatim_and_link_is_not_followed(replay: Any, env: Any) -> None:
    rec = recording("hubspot/doc_search_response_example.json")
    ex = rec["exchanges"][0]
    s = replay([ex, last_page(123)], hosts=ALL_HOSTS)
    cols = [
        {"name": "id", "nullable": False},
        {"name": "property_string", "path": "properties.property_string"},
        {"name": "property_number", "type": "int64", "path": "properties.property_number"},
        {"name": "property_checkbox", "type": "bool", "path": "properties.property_checkbox"},
        {"name": "property_date", "type": "timestamptz", "format": "epoch_ms", "path": "properties.property_date"},
        {"name": "updatedAt", "type": "timestamptz", "nullable": False},
    ]
    manifest, table = run(
        "deals",
        incremental=True,
        deletes=None,
        limits=FAST,
        records={"path": "results", "columns": cols},
        window={
            "cursor_field": "updatedAt",
            "requests_per_second": 1000,
            "endpoint": {"path": "/crm/v3/objects/contracts/search"},
        },
    )
    r = ex["response"]["body"]["results"][0]
    assert table.to_pylist() == [
        {
            "id": "512",
            "property_string": "value",
            "property_number": 17,
            "property_checkbox": False,
            "property_date": dt.datetime(2019, 10, 31, tzinfo=dt.UTC),
            "updatedAt": ts(r["updatedAt"]),
        }
    ]
    assert manifest.source_count == 123
    assert s.seen[1]["body"]["after"] == "NTI1Cg%3D%3D"  # opaque: not decoded, not a number
    assert sent(s.seen[1])[:2] == ("POST", "/crm/v3/objects/contracts/search")  # link ?after=… not followed


# -- recorded_search_429_secondly_limit_then_retry.json ------------------------------------------------


@pytest.mark.parametrize("pair", [0, 1], ids=["CONTACT", "COMPANY"])
def test_recorded_secondly_429_without_retry_after_is_retried_once_after_a_backoff(
    replay: Any, env: Any, pair: int
) -> None:
    exchanges = recording("hubspot/recorded_search_429_secondly_limit_then_retry.json")["pairs"][pair]["exchanges"]
    req = exchanges[0]["request"]
    s = replay(exchanges, hosts=ALL_HOSTS)
    obj = "contacts" if pair == 0 else "companies"
    cols = [
        {"name": "id", "nullable": False},
        *[{"name": p, "path": f"properties.{p}"} for p in req["body"]["properties"]],
    ]
    paginate = {"kind": "cursor", "next_path": "paging.next.after", "cursor_param": "after", "cursor_in": "body"}
    manifest, table = run(
        obj,
        deletes=None,
        window=None,
        endpoint={"method": "POST", "path": req["path"], "body": req["body"], "params": {}},
        paginate={**paginate, "limit_param": "limit", "limit": 100, "in_body": True},
        records={"path": "results", "columns": cols},
    )  # the preset's own limits: initial_wait_seconds 1.0, no Retry-After to go by
    assert [sent(x)[:2] for x in s.seen] == [("POST", req["path"])] * 2
    assert s.seen[0]["body"] == s.seen[1]["body"] == req["body"]  # the identical request, as recorded
    assert s.seen[1]["at"] - s.seen[0]["at"] >= 0.45  # backed off (1 s x jitter 0.5..1.5), not hammered
    stats = manifest.extra["source_stats"]
    assert stats["http_429"] == 1 and stats["retries"] == 1 and stats["throttled"] == 1
    ok = exchanges[1]["response"]["body"]
    assert manifest.source_count == ok["total"] == 1
    assert table.to_pylist() == [
        {"id": r["id"], **{p: r["properties"].get(p) for p in req["body"]["properties"]}} for r in ok["results"]
    ]  # CONTACT: total 1 but no result yet (search lags writes); COMPANY: the one company


def test_standin_429_has_the_recorded_body_and_no_retry_after(standin: Any, env: Any) -> None:
    rec = recording("hubspot/recorded_search_429_secondly_limit_then_retry.json")["pairs"][0]["exchanges"][0]
    standin("hubspot", "hs", counts={"contacts": 50}, options={"rate_max": 10, "enforce_rate_limit": True})
    answers = [standin_call("hs", "GET", "/crm/v3/objects/contacts", params={"limit": 1}) for _ in range(4)]
    throttled = next(a for a in answers if a.status_code == 429)
    assert set(throttled.json()) == set(rec["response"]["body"])  # correlationId added to the stand-in's body
    assert throttled.json()["category"] == rec["response"]["body"]["category"] == "RATE_LIMITS"
    assert throttled.json()["message"] == rec["response"]["body"]["message"]
    assert "retry-after" not in throttled.headers and "Retry-After" not in rec["response"]["headers"]
    upper = standin_call("hs", "POST", rec["request"]["path"], json={"limit": 1})  # /objects/CONTACT/search
    assert upper.status_code in (200, 429) and upper.status_code != 400  # upper-case object names accepted


# -- handwritten_429_and_401_shapes.json --------------------------------------------------------------


def test_ten_secondly_429_is_retried_but_a_daily_429_stops_at_once(replay: Any, env: Any) -> None:
    shapes = recording("hubspot/handwritten_429_and_401_shapes.json")["responses"]
    ten, daily = shapes[0], shapes[1]
    page = {
        "status": 200,
        "body": {"results": [{"id": "1", "properties": {"lastmodifieddate": "2026-01-01T00:00:00Z"}}]},
    }
    s = replay([{"response": ten}, {"response": page}, last_page()], hosts=ALL_HOSTS)
    manifest, table = run("contacts", limits=FAST)
    assert table.column("id").to_pylist() == ["1"] and manifest.extra["source_stats"]["retries"] == 1
    assert len(s.seen) == 3
    s2 = replay([{"response": daily}, {"response": page}], conn_id="replay", hosts=ALL_HOSTS)
    with pytest.raises(ApiQuotaExhausted, match=r"daily limit.*policy DAILY.*midnight"):
        run("contacts", limits=FAST)
    assert len(s2.seen) == 1  # disagreement fixed: a DAILY 429 used to be retried max_attempts times


def test_invalid_authentication_401_fails_at_once_naming_the_message(replay: Any, env: Any) -> None:
    invalid = recording("hubspot/handwritten_429_and_401_shapes.json")["responses"][2]
    s = replay([{"response": invalid}], hosts=ALL_HOSTS, extra={"auth_kind": "bearer"}, conn={"password": "pat-x"})
    with pytest.raises(ConfigurationError, match=r"HTTP 401: Authentication credentials not found.*check the conn"):
        run("contacts", limits=FAST)
    assert len(s.seen) == 1 and s.seen[0]["headers"]["authorization"] == "Bearer pat-x"


def test_expired_authentication_401_refreshes_the_token_and_retries(replay: Any, env: Any) -> None:
    expired = recording("hubspot/handwritten_429_and_401_shapes.json")["responses"][3]
    token = {"status": 200, "body": {"access_token": "t1", "expires_in": 1800, "refresh_token": "r2"}}
    token2 = {"status": 200, "body": {"access_token": "t2", "expires_in": 1800, "refresh_token": "r3"}}
    page = {
        "status": 200,
        "body": {"results": [{"id": "9", "properties": {"lastmodifieddate": "2026-01-01T00:00:00Z"}}]},
    }
    extra = {
        "auth_kind": "oauth2_refresh_token",
        "token_url": "{base_url}/oauth/v1/token",
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "r1",
    }
    s = replay([{"response": r} for r in (token, expired, token2, page)] + [last_page()], hosts=ALL_HOSTS, extra=extra)
    manifest, table = run("contacts", limits=FAST)
    assert table.column("id").to_pylist() == ["9"]
    assert [sent(x)[1] for x in s.seen] == ["/oauth/v1/token", "/crm/v3/objects/contacts"] * 2 + [
        "/crm/v3/objects/contacts"
    ]
    assert s.seen[1]["headers"]["authorization"] == "Bearer t1" and s.seen[3]["headers"]["authorization"] == "Bearer t2"
    assert manifest.extra["source_stats"]["reauthentications"] == 1


def test_standin_401_bodies_have_the_documented_shapes(standin: Any, env: Any) -> None:
    from bulksync.hooks.api import ApiHook

    shapes = recording("hubspot/handwritten_429_and_401_shapes.json")["responses"]
    s = standin("hubspot", "hs", counts={"contacts": 2})
    hook = ApiHook("hs")
    with hook.client() as http:
        invalid = http.get("/crm/v3/objects/contacts", headers={"Authorization": "Bearer nope"})
        request = http.build_request("GET", "/crm/v3/objects/contacts")
        hook.authenticator.apply(request)  # a live OAuth token, then expired on the stand-in's side
        s.auth.expire_all()
        expired = http.send(request)
    assert invalid.status_code == expired.status_code == 401
    same_keys(invalid.json(), shapes[2]["body"])
    same_keys(expired.json(), shapes[3]["body"])
    assert (invalid.json()["category"], expired.json()["category"]) == (
        "INVALID_AUTHENTICATION",
        "EXPIRED_AUTHENTICATION",
    )


# -- handwritten_search_10k_cap_error.json, doc_crm_v3_contract.json ---------------------------------------


def test_a_400_when_paging_past_10000_names_the_cap_not_just_the_status(replay: Any, env: Any) -> None:
    rec = recording("hubspot/handwritten_search_10k_cap_error.json")["exchanges"][0]
    pages = []
    for n in range(50):  # CONSTRUCTED: 50 full pages (10,000 records), while the first page's total said 9,990
        results = [
            {"id": str(n * 200 + i), "properties": {"lastmodifieddate": "2026-03-01T00:00:00.000Z"}} for i in range(200)
        ]
        pages.append(
            {
                "response": {
                    "status": 200,
                    "body": {"total": 9990, "results": results, "paging": {"next": {"after": str((n + 1) * 200)}}},
                }
            }
        )
    s = replay([*pages, rec], hosts=ALL_HOSTS)
    with pytest.raises(ApiRequestError, match=r"HTTP 400.*10000 records were read.*refuses to page past 10000") as err:
        run("contacts", incremental=True, deletes=None, limits=FAST, window={"requests_per_second": 1000})
    assert err.value.status == 400
    last = s.seen[-1]["body"]
    assert (last["after"], last["limit"], last["sorts"][0]["direction"]) == (
        rec["request"]["body"]["after"],
        rec["request"]["body"]["limit"],
        rec["request"]["body"]["sorts"][0]["direction"],
    )  # the request the hand-written 400 answers: after "10000", limit 200


def test_standin_refuses_paging_past_10000_with_the_generic_error_envelope(standin: Any, env: Any) -> None:
    rec = recording("hubspot/handwritten_search_10k_cap_error.json")["exchanges"][0]
    standin("hubspot", "hs", counts={"contacts": 20})
    body = {**rec["request"]["body"]}
    body["filterGroups"] = [
        {"filters": [{**body["filterGroups"][0]["filters"][0], "propertyName": "lastmodifieddate"}]}
    ]
    mine = standin_call("hs", "POST", "/crm/v3/objects/contacts/search", json=body)
    assert mine.status_code == rec["response"]["status"] == 400
    assert set(mine.json()) == set(rec["response"]["body"])


def test_preset_and_standin_keep_the_documented_limits(standin: Any, env: Any) -> None:
    facts = recording("hubspot/doc_crm_v3_contract.json")
    assert "10,000" in facts["search"]["cap"] and "maximum 200" in facts["search"]["page_size"]
    last_modified = {"contacts": "lastmodifieddate"}
    for obj in ("contacts", "companies", "deals", "tickets"):
        o = expand({"preset": "hubspot", "object": obj})
        w = o["window"]
        assert w["max_results"] == 10_000 and w["paginate"]["limit"] <= 200 and o["paginate"]["limit"] <= 100
        assert w["requests_per_second"] <= 5  # "five requests per second per account"
        assert w["cursor_field"] == last_modified.get(obj, "hs_lastmodifieddate")
        assert o["deletes"]["request"] == {"params": {"archived": "true"}, "window_field": "archivedAt"}
    standin("hubspot", "hs", counts={"contacts": 5})
    assert standin_call("hs", "GET", "/crm/v3/objects/contacts", params={"limit": 101}).status_code == 400
    assert standin_call("hs", "POST", "/crm/v3/objects/contacts/search", json={"limit": 201}).status_code == 400
    archived = standin_call("hs", "GET", "/crm/v3/objects/contacts", params={"archived": "true"}).json()
    assert archived == {"results": []}
