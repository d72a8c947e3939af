"""The dynamics365 preset and the Dataverse stand-in against every file of
tests/fixtures/api_recordings/dataverse (documented examples; one recorded D365 Finance & Operations page).

Replays (:mod:`tests.integration.api.recorded`) feed the documented pages to the preset's engine path: the
paging cookie followed verbatim with the same ``Prefer`` on every page, the capped ``@odata.count``, change
tracking's deltaLink and ``$deletedEntity`` rows, service protection 429s; the stand-in's answers are
compared in shape. Pages or headers built here from the documented rules are marked ``CONSTRUCTED``.
"""

from __future__ import annotations

from typing import Any

import pytest

from bulksync.sources.api.errors import ApiDataError, ApiRetriesExhausted
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
ORG = "[Organization URI]"


def run(obj: str = "accounts", **over: Any) -> tuple[Any, Any]:
    opts = {"preset": "dynamics365", "object": obj, "limits": FAST, "window": None, **over}  # full reads
    spec = api_pipeline(api_dataset("d", "replay", opts))
    return extract(spec, "d", window(None, None))


def raw(s: Any, url: str) -> str:
    """A documented absolute URL as the replay server sees it (the org placeholder is the replay's host)."""
    return url.replace(ORG, "")


def cols(*names: str, key: str) -> dict[str, Any]:
    return {"path": "value", "columns": [{"name": key, "nullable": False}, *({"name": n} for n in names)]}


# -- doc_page_results_maxpagesize_sequence.json -----------------------------------------------------------------


def test_paging_cookie_followed_verbatim_with_prefer_on_every_page(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("dataverse/doc_page_results_maxpagesize_sequence.json")["exchanges"]
    end = {"request": {}, "response": {"status": 200, "body": {"value": []}}}  # CONSTRUCTED: the docs stop at page 2
    s = replay([*ex, end], hosts=ALL_HOSTS)
    prefer = ex[0]["request"]["headers"]["Prefer"]
    _, table = run(
        "contacts",
        endpoint={"params": {"$select": "fullname"}, "headers": {"Prefer": prefer}},
        records=cols("fullname", key="contactid"),
        primary_key=["contactid"],
    )
    values = [v for e in ex for v in e["response"]["body"]["value"]]
    assert sorted((r["contactid"], r["fullname"]) for r in table.to_pylist()) == sorted(
        (v["contactid"], v["fullname"]) for v in values
    )
    _, path, params = sent(s.seen[0])
    _, r_path, r_params = asked(ex[0]["request"])
    assert path == r_path and r_params.items() <= params.items()
    for got, page in zip(s.seen[1:], ex, strict=True):  # the cookie is not re-encoded, nothing is appended
        assert got["url"] == raw(s, page["response"]["body"]["@odata.nextLink"])
    assert all(x["headers"]["prefer"] == prefer for x in s.seen)  # "send the same maxpagesize on every page"
    assert all("$skip=" not in x["url"] for x in s.seen)
    # the stand-in: same envelope (nextLink after value), Preference-Applied echoed, $skip refused
    standin("dynamics365", "d365", counts={"accounts": 5})
    resp = standin_call(
        "d365", "GET", "/api/data/v9.2/accounts", params={"$select": "name"}, headers={"Prefer": prefer}
    )
    mine = resp.json()
    assert list(mine) == list(ex[0]["response"]["body"]) == ["@odata.context", "value", "@odata.nextLink"]
    assert resp.headers["preference-applied"] == ex[0]["response"]["headers"]["Preference-Applied"]
    assert "$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22" in mine["@odata.nextLink"]
    second = standin_call("d365", "GET", mine["@odata.nextLink"], headers={"Prefer": prefer}).json()
    assert list(second) == list(ex[1]["response"]["body"])
    assert standin_call("d365", "GET", "/api/data/v9.2/accounts", params={"$skip": "2"}).status_code == 400


# -- doc_count_rows.json --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [(9, 9), (58, 58), (5000, None)],
    ids=["doc-example", "fewer_than_5000", "more_than_5000"],
)
def test_count_is_reconciled_unless_it_is_the_5000_cap(replay: Any, env: Any, count: int, expected: Any) -> None:
    doc = recording("dataverse/doc_count_rows.json")
    page = doc["exchanges"][0]
    if count != 9:  # CONSTRUCTED from documented_annotation_values
        body = {
            **page["response"]["body"],
            **doc["documented_annotation_values"]["fewer_than_5000" if count == 58 else "more_than_5000"],
        }
        page = {"request": page["request"], "response": {"status": 200, "body": body}}
    s = replay([page], hosts=ALL_HOSTS)
    manifest, table = run(endpoint={"params": {"$select": "accountid"}}, records=cols(key="accountid"))
    assert manifest.source_count == expected  # @odata.count 5,000 is the cap: not a count (None, not 5000)
    assert table.column("accountid").to_pylist() == [v["accountid"] for v in page["response"]["body"]["value"]]
    assert asked(page["request"])[2].items() <= sent(s.seen[0])[2].items()  # $select and $count=true sent


def test_count_annotations_and_dollar_count_in_the_standin(standin: Any, env: Any) -> None:
    doc = recording("dataverse/doc_count_rows.json")
    req = doc["exchanges"][1]["request"]
    documented = doc["exchanges"][1]["response"]
    standin("dynamics365", "d365", counts={"accounts": 5200})
    prefer = req["headers"]["Prefer"]  # two Prefer values, as documented
    resp = standin_call(
        "d365",
        "GET",
        "/api/data/v9.2/accounts",
        params={"$select": "name", "$count": "true"},
        headers=[("Prefer", p) for p in prefer],
    )
    mine = resp.json()
    assert list(mine) == list(documented["body"])  # context, count, both annotations, value, nextLink
    assert mine["@odata.count"] == 5000 and mine["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    assert (mine["@odata.count"], mine["@Microsoft.Dynamics.CRM.totalrecordcount"]) == tuple(
        doc["documented_annotation_values"]["more_than_5000"][k]
        for k in ("@odata.count", "@Microsoft.Dynamics.CRM.totalrecordcount")
    )
    assert len(mine["value"]) == 3 and resp.headers["preference-applied"] == ",".join(prefer)
    plain = standin_call("d365", "GET", "/api/data/v9.2/accounts", params={"$count": "true"}).json()
    assert "@Microsoft.Dynamics.CRM.totalrecordcount" not in plain  # annotations only when asked for
    counted = standin_call("d365", "GET", "/api/data/v9.2/accounts/$count")
    documented_count = doc["exchanges"][2]["response"]
    assert counted.headers["content-type"].startswith(documented_count["headers"]["Content-Type"])
    assert counted.text == "5000" and documented_count["body"].isdigit()


# -- doc_change_tracking_delta_sequence.json ---------------------------------------------------------------------


def test_change_tracking_round_is_read_and_its_deltalink_not_followed(replay: Any, env: Any) -> None:
    ex = recording("dataverse/doc_change_tracking_delta_sequence.json")["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    prefer = ex[0]["request"]["headers"]["Prefer"]
    _, table = run(
        endpoint={
            "path": "/api/data/v9.0/accounts",
            "params": {"$select": "name,accountnumber,telephone1,fax"},
            "headers": {"Prefer": prefer},
        },
        records=cols("name", "accountnumber", "telephone1", "fax", key="accountid"),
    )
    v = ex[0]["response"]["body"]["value"][0]
    assert table.to_pylist() == [{k: v[k] for k in ("accountid", "name", "accountnumber", "telephone1", "fax")}]
    assert len(s.seen) == 1 and s.seen[0]["headers"]["prefer"] == "odata.track-changes"
    assert "$filter" not in s.seen[0]["url"]  # not allowed with change tracking (a full read: no window)


def test_a_deleted_entity_row_of_a_delta_page_fails_naming_the_record(replay: Any, env: Any) -> None:
    """The preset reads no deltas (bulksync keeps no deltaLink, see docs/api-dynamics365.md); if one is fed to
    it, the ``$deletedEntity`` row (``id``, no ``accountid``) is refused by name, not loaded as a null key."""
    ex = recording("dataverse/doc_change_tracking_delta_sequence.json")["exchanges"][1]
    replay([ex], hosts=ALL_HOSTS)
    with pytest.raises(ApiDataError, match=r"page 1, record 1, field 'accountid': the record has no value"):
        run(
            endpoint={"params": {"$select": "name,telephone1,fax"}}, records=cols("name", "telephone1", key="accountid")
        )


# -- doc_service_protection_429.json -----------------------------------------------------------------------------


def service_429(doc: dict[str, Any], retry_after: str = "1", body: Any = None) -> dict[str, Any]:
    """CONSTRUCTED from the documented header (Retry-After in seconds) and the observed body."""
    return {
        "request": {},
        "response": {"status": 429, "headers": {"Retry-After": retry_after}, "body": body or doc["observed_429_body"]},
    }


def test_service_protection_429_waits_for_retry_after(replay: Any, env: Any) -> None:
    doc = recording("dataverse/doc_service_protection_429.json")
    page = {"request": {}, "response": {"status": 200, "body": {"value": [{"accountid": "a1"}]}}}
    s = replay([service_429(doc), page], hosts=ALL_HOSTS)
    manifest, table = run(records=cols(key="accountid"), limits={**FAST, "max_wait_seconds": 5})
    assert table.column("accountid").to_pylist() == ["a1"]
    assert s.seen[1]["at"] - s.seen[0]["at"] >= 0.95  # Retry-After 1 s, not the 0.01 s backoff
    assert manifest.extra["source_stats"]["throttled"] == 1


@pytest.mark.parametrize("n", [0, 1, 2], ids=["0x80072322", "0x80072321", "0x80072326"])
def test_each_documented_service_protection_error_is_named_when_retries_run_out(replay: Any, env: Any, n: int) -> None:
    doc = recording("dataverse/doc_service_protection_429.json")
    err = doc["documented_errors"][n]
    body = {"error": {"code": err["hex_code"], "message": err["message"]}}
    replay([service_429(doc, "0", body)] * 2, hosts=ALL_HOSTS)
    with pytest.raises(ApiRetriesExhausted, match=r"failed 2 times; the last: HTTP 429 \(") as exc:
        run(records=cols(key="accountid"), limits={**FAST, "max_attempts": 2})
    assert err["message"][:60] in str(exc.value)  # the vendor's reason, not just the status


def test_burst_remaining_zero_pauses_before_the_next_page(replay: Any, env: Any) -> None:
    doc = recording("dataverse/doc_service_protection_429.json")
    header = next(h for h in doc["documented_headers"] if "burst" in h)
    first = {
        "status": 200,
        "headers": {header: "0"},
        "body": {"value": [{"accountid": "a"}], "@odata.nextLink": "/api/data/v9.2/accounts?$skiptoken=2"},
    }
    s = replay(
        [{"response": first}, {"response": {"status": 200, "body": {"value": [{"accountid": "b"}]}}}], hosts=ALL_HOSTS
    )
    manifest, table = run(records=cols(key="accountid"), limits={**FAST, "max_wait_seconds": 5})
    assert table.column("accountid").to_pylist() == ["a", "b"] and manifest.extra["source_stats"]["budget_pauses"] == 1
    assert s.seen[1]["at"] - s.seen[0]["at"] >= 0.9


def test_standin_429_has_the_observed_body_and_documented_headers(standin: Any, env: Any) -> None:
    doc = recording("dataverse/doc_service_protection_429.json")
    standin("dynamics365", "d365", counts={"accounts": 3}, faults={"throttle_share": 1.0, "seed": 1})
    resp = standin_call("d365", "GET", "/api/data/v9.2/accounts")
    assert resp.status_code == 429 and float(resp.headers["retry-after"]) >= 0
    same_keys(resp.json(), doc["observed_429_body"])
    assert resp.json()["error"]["code"] in {e["hex_code"] for e in doc["documented_errors"]}
    ok = standin("dynamics365", "d366", counts={"accounts": 3})
    assert (
        "x-ms-ratelimit-burst-remaining-xrm-requests" in standin_call("d366", "GET", "/api/data/v9.2/accounts").headers
    )
    assert ok.count("accounts") == 3


# -- recorded_d365fo_odata_count.json (Finance & Operations: $skip/$top allowed there) --------------------------------


def test_finance_and_operations_skip_top_page_with_count_and_etags(replay: Any, env: Any) -> None:
    ex = recording("dataverse/recorded_d365fo_odata_count.json")["exchanges"][0]
    s = replay([ex], hosts=ALL_HOSTS)
    _, path, params = asked(ex["request"])
    names = ["UnitSymbol", "UnitDescription", "UnitClass", "SystemOfUnits", "IsBaseUnit", "DecimalPrecision"]
    from bulksync.sources.api.presets import expand

    generic = {
        k: v
        for k, v in expand({"preset": "dynamics365", "object": "accounts"}).items()
        if k not in ("preset", "object")
    }
    generic.pop("window")  # F&O is not Dataverse: the preset's options with this entity's endpoint and columns
    spec = api_pipeline(
        api_dataset(
            "d",
            "replay",
            {
                **generic,
                "limits": FAST,
                "endpoint": {"path": path, "params": {"$count": "true"}},
                "paginate": {"kind": "offset", "offset_param": "$skip", "limit_param": "$top", "limit": 100},
                "primary_key": ["UnitSymbol"],
                "records": {
                    "path": "value",
                    "columns": [
                        *({"name": n, "type": "int32" if n == "DecimalPrecision" else "string"} for n in names),
                        {"name": "etag", "path": "@odata.etag"},
                    ],
                },
            },
        )
    )
    manifest, table = extract(spec, "d", window(None, None))
    values = ex["response"]["body"]["value"]
    assert table.to_pylist() == [{**{n: v[n] for n in names}, "etag": v["@odata.etag"]} for v in values]
    assert manifest.source_count == ex["response"]["body"]["@odata.count"] == 2
    assert sent(s.seen[0]) == ("GET", path, params) and len(s.seen) == 1  # $count=true&$skip=0&$top=100 exactly
