"""The sap_odata preset (OData v2 JSON) and the SAP Gateway stand-in against every file of
tests/fixtures/api_recordings/sap_odata_v2: the recorded SuccessFactors ``$skip/$top`` pages, SAP's own client
mocks of ``__next`` / ``__count`` (number and string) and of Gateway error bodies, and the MS-ODATA rules.

Entity sets the preset does not list are read with the preset's resolved options and that endpoint
(:func:`tests.integration.api.recorded.preset_options`): its paging, totals, date parsing and error
handling. Pages built here are marked ``CONSTRUCTED``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bulksync.sources.api.errors import ApiDataError, ApiRequestError, ApiRetriesExhausted
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, preset_options, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
UTC = dt.UTC


def run(options: dict[str, Any]) -> tuple[Any, Any]:
    return extract(api_pipeline(api_dataset("s", "replay", {"limits": FAST, **options})), "s", window(None, None))


def ms(v: str) -> dt.datetime:
    """``/Date(ms)/`` or ``/Date(ms+0000)/`` as a UTC time."""
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=int(v[6:-2].split("+")[0]))


# -- recorded_successfactors_folocation_skip_top_pages.json ------------------------------------------------------

FO_COLUMNS = [
    {"name": "externalCode", "nullable": False},
    {"name": "startDate", "type": "date", "format": "odata_v2"},
    {"name": "endDate", "type": "date", "format": "odata_v2"},
    {"name": "lastModifiedDateTime", "type": "timestamptz", "format": "odata_v2"},
    {"name": "name"},
    {"name": "status"},
    {"name": "standardHours", "type": "decimal(9,2)"},
    {"name": "country", "path": "addressNavDEFLT.country"},
    {"name": "type", "path": "__metadata.type"},
]


def fo_options(limit: int = 100) -> dict[str, Any]:
    ex = recording("sap_odata_v2/recorded_successfactors_folocation_skip_top_pages.json")["exchanges"][0]
    _, path, params = asked(ex["request"])
    return preset_options(
        "sap_odata",
        "sales_orders",
        endpoint={"path": path, "params": {"$expand": params["$expand"], "$format": "json"}},
        paginate={"kind": "offset", "offset_param": "$skip", "limit_param": "$top", "limit": limit},
        primary_key=["externalCode"],
        records={"path": "d.results", "columns": FO_COLUMNS},
        window=None,
        total=None,
    )


def fo_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "externalCode": e["externalCode"],
        "startDate": ms(e["startDate"]).date(),
        "endDate": ms(e["endDate"]).date(),
        "lastModifiedDateTime": ms(e["lastModifiedDateTime"]),
        "name": e["name"],
        "status": e["status"],
        "standardHours": None if e["standardHours"] is None else __import__("decimal").Decimal(e["standardHours"]),
        "country": e["addressNavDEFLT"]["country"],
        "type": e["__metadata"]["type"],
    }


def test_successfactors_first_page_request_and_values(replay: Any, env: Any) -> None:
    """The recorded pages 1 and 2 were trimmed to 2 of their 100 entries: a page shorter than ``$top`` ends
    client-driven paging, so the read stops after the first recorded request, which it matches exactly."""
    ex = recording("sap_odata_v2/recorded_successfactors_folocation_skip_top_pages.json")["exchanges"]
    s = replay(ex, hosts=ALL_HOSTS)
    _, table = run(fo_options())
    assert [sent(x) for x in s.seen] == [asked(ex[0]["request"])]  # $expand, $format=json, $skip=0, $top=100
    assert table.to_pylist() == [fo_row(e) for e in ex[0]["response"]["body"]["d"]["results"]]


def test_successfactors_pages_in_order_and_the_real_short_last_page(replay: Any, env: Any) -> None:
    ex = recording("sap_odata_v2/recorded_successfactors_folocation_skip_top_pages.json")["exchanges"]
    end = {"response": {"status": 200, "body": {"d": {"results": []}}}}  # CONSTRUCTED: past the end
    s = replay([*ex, end], hosts=ALL_HOSTS)
    _, table = run(fo_options(limit=2))  # the trimmed pages' size: $skip advances by what each page held
    entries = [e for x in ex for e in x["response"]["body"]["d"]["results"]]
    assert sorted(table.to_pylist(), key=lambda r: r["externalCode"]) == sorted(
        (fo_row(e) for e in entries), key=lambda r: r["externalCode"]
    )  # 9 entries: /Date(-2208988800000)/ (1900), /Date(253402214400000)/ (9999-12-31), ms+0000 offsets
    assert [sent(x)[2]["$skip"] for x in s.seen] == ["0", "2", "4", "9"]  # then an empty page ends it
    assert int(ex[2]["response"]["headers"]["record-count"]) == 5 < int(asked(ex[2]["request"])[2]["$top"])


# -- sdk_mock_pyodata_next_and_count.json, doc_odata_v2_json_contract.json ------------------------------------------


def employees(path: str, cols: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return preset_options(
        "sap_odata",
        "sales_orders",
        endpoint={"path": path, "params": {"$inlinecount": "allpages"}},
        records={"path": "d.results", "columns": cols},
        primary_key=[cols[0]["name"]],
        window=None,
        **extra,
    )


def test_next_link_followed_verbatim_and_numeric_count(replay: Any, env: Any) -> None:
    ex = recording("sap_odata_v2/sdk_mock_pyodata_next_and_count.json")["exchanges"]
    s = replay(ex[:2], hosts=ALL_HOSTS)
    cols = [{"name": "ID", "type": "int64", "nullable": False}, {"name": "NameFirst"}, {"name": "NameLast"}]
    manifest, table = run(employees("/Employees", cols))
    want = [r for x in ex[:2] for r in x["response"]["body"]["d"]["results"]]
    assert table.to_pylist() == want and manifest.source_count == 3  # __count the JSON number 3
    assert s.seen[1]["url"] == ex[0]["response"]["body"]["d"]["__next"].replace("{service_url}", "")
    assert "$skiptoken='opaque'" in s.seen[1]["url"] and sent(s.seen[0]) == asked(ex[0]["request"])


def test_string_count_and_dates_of_a_function_import(replay: Any, env: Any) -> None:
    ex = recording("sap_odata_v2/sdk_mock_pyodata_next_and_count.json")["exchanges"][2]
    end = {"response": {"status": 200, "body": {"d": {"results": [], "__count": "50"}}}}  # CONSTRUCTED last page
    s = replay([ex, end], hosts=ALL_HOSTS)
    cols = [
        {"name": "Sensor", "nullable": False},
        {"name": "Date", "type": "timestamptz", "format": "odata_v2"},
        {"name": "Value"},
    ]
    manifest, table = run(employees("/get_best_measurements", cols))
    assert manifest.source_count == 50  # the string "50", as Gateway sends it
    assert table.to_pylist() == [
        {"Sensor": r["Sensor"], "Date": ms(r["Date"]), "Value": r["Value"]}
        for r in ex["response"]["body"]["d"]["results"]
    ]
    assert s.seen[1]["url"] == ex["response"]["body"]["d"]["__next"].replace("{service_url}", "")


def test_next_link_to_another_origin_is_refused(replay: Any, env: Any) -> None:
    ex = recording("sap_odata_v2/sdk_mock_pyodata_next_and_count.json")["exchanges"][0]
    body = {"d": {**ex["response"]["body"]["d"], "__next": "https://elsewhere.example/Employees?$skiptoken='x'"}}
    s = replay([{"response": {"status": 200, "body": body}}], hosts=ALL_HOSTS)
    cols = [{"name": "ID", "type": "int64", "nullable": False}]
    with pytest.raises(ApiDataError, match=r"next link to another host \(elsewhere.example\)"):
        run(employees("/Employees", cols))
    assert len(s.seen) == 1  # as pyodata: the credentials never go to the other origin


def test_contract_string_count_relative_next_and_the_older_d_list_form(replay: Any, env: Any) -> None:
    facts = recording("sap_odata_v2/doc_odata_v2_json_contract.json")["facts"]
    assert any('"__count": "91"' in f for f in facts) and any('{"d": [...]}' in f for f in facts)
    pages = [  # CONSTRUCTED from the facts: string __count, a relative __next, then a V1-style {"d": [...]}
        {"d": {"__count": "91", "results": [{"ID": 1}], "__next": "Customers?$skiptoken='1'"}},
        {"d": [{"ID": 2}]},
    ]
    s = replay([{"response": {"status": 200, "body": b}} for b in pages], hosts=ALL_HOSTS)
    manifest, table = run(employees("/svc/Customers", [{"name": "ID", "type": "int64", "nullable": False}]))
    assert table.column("ID").to_pylist() == [1, 2] and manifest.source_count == 91
    assert s.seen[1]["url"] == "/svc/Customers?$skiptoken='1'"  # resolved against the page's URL


def test_standin_entries_and_collection_follow_the_v2_contract(standin: Any, env: Any) -> None:
    facts = recording("sap_odata_v2/doc_odata_v2_json_contract.json")["facts"]
    sf = recording("sap_odata_v2/recorded_successfactors_folocation_skip_top_pages.json")["exchanges"][0]
    standin("sap_odata", "sap", counts={"sales_orders": 5}, options={"page_size": 2})
    path = "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder"
    d = standin_call("sap", "GET", path, params={"$format": "json", "$inlinecount": "allpages"}).json()["d"]
    assert set(d) == {"results", "__count", "__next"} and d["__count"] == "5"  # a string, next to results
    recorded_entry = sf["response"]["body"]["d"]["results"][0]
    assert set(d["results"][0]["__metadata"]) == set(recorded_entry["__metadata"]) == {"uri", "type"}
    assert d["results"][0]["LastChangeDateTime"].endswith("+0000)/") and d["results"][0]["CreationDate"][:6] == "/Date("
    assert "$skiptoken=" in d["__next"] and "%24" not in d["__next"]
    bad = standin_call("sap", "GET", path, params={"$format": "json", "$inlinecount": "sometimes"})
    assert bad.status_code == 400 and any("allpages" in f and "4xx" in f for f in facts)
    last = standin_call("sap", "GET", path, params={"$format": "json", "$skiptoken": "4"}).json()["d"]
    assert "__next" not in last and "__count" not in last  # no $inlinecount asked


# -- sdk_mock_pyodata_gateway_errors.json ------------------------------------------------------------------------

EXPECTED = {
    "response_with_error": r"HTTP 400: Gateway Error$",
    "response_with_error_and_innererror": r"HTTP 400: Gateway Error \(Inner Error 1; Inner Error 2\)$",
    "malformed_not_json": r"HTTP 400: random data$",
    "malformed_no_error_member": r'HTTP 400: \{"random": ?"data"\}$',
    "malformed_error_is_string": r"HTTP 400: data$",
    "malformed_no_message": r'HTTP 400: \{"error": ?\{"data": ?"foo"\}\}$',
    "malformed_message_is_string": r"HTTP 400: foo$",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_gateway_error_bodies_give_a_clear_terminal_error(replay: Any, env: Any, name: str) -> None:
    item = next(
        b for b in recording("sap_odata_v2/sdk_mock_pyodata_gateway_errors.json")["bodies"] if b["name"] == name
    )
    body = item.get("body", item.get("raw"))
    headers = {"content-type": "text/plain"} if "raw" in item else {}
    s = replay([{"response": {"status": 400, "headers": headers, "body": body}}], hosts=ALL_HOSTS)
    with pytest.raises(ApiRequestError, match=EXPECTED[name]) as exc:
        run(preset_options("sap_odata", "sales_orders", window=None))
    assert exc.value.status == 400 and len(s.seen) == 1  # terminal: not retried
    assert str(exc.value).startswith("GET /sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder, page 1: HTTP 400")


def test_gateway_5xx_is_retried_and_names_the_message_when_it_persists(replay: Any, standin: Any, env: Any) -> None:
    bodies = recording("sap_odata_v2/sdk_mock_pyodata_gateway_errors.json")["bodies"]
    body = bodies[1]["body"]
    replay([{"response": {"status": 503, "body": body}}] * 2, hosts=ALL_HOSTS)
    with pytest.raises(
        ApiRetriesExhausted, match=r"the last: HTTP 503 \(Gateway Error \(Inner Error 1; Inner Error 2\)\)"
    ):
        run(preset_options("sap_odata", "sales_orders", window=None, limits={**FAST, "max_attempts": 2}))
    documented = recording("sap_odata_v2/doc_odata_v2_json_contract.json")["sap_gateway_error_envelope"]
    standin("sap_odata", "sap", counts={"sales_orders": 1})
    mine = standin_call("sap", "GET", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder", params={"$format": "xml"})
    assert mine.status_code == 400
    same_keys(mine.json()["error"]["message"], documented["error"]["message"])
    assert set(documented["error"]) <= set(mine.json()["error"])
    assert isinstance(mine.json()["error"]["innererror"]["errordetails"], list)
    assert set(body["error"]) <= set(mine.json()["error"])  # what pyodata reads is there
