"""The netsuite_suiteql and workday_raas presets and stand-ins against the files of
tests/fixtures/api_recordings/netsuite and workday that test_api_netsuite_suiteql.py and
test_api_workday_raas.py do not cover already (those replay the SuiteQL paging sequence, the 429 and 400
bodies, and the two Workday report fixtures): the stand-ins' answers in the hand-written shapes, the 401
``INVALID_LOGIN``, the inconsistent documented collection links, and the documented RaaS contract.
Nothing here is recorded traffic (see INDEX.md): these check shape and the documented rules only.
"""

from __future__ import annotations

from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sources.api.presets import expand
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
SUITEQL = "/services/rest/query/v1/suiteql"
NS_HOST = ("https://{accountId}.suitetalk.api.netsuite.com", "https://demo123.suitetalk.api.netsuite.com")
TBA = {
    "auth_kind": "oauth1_tba",
    "account": "1234567_SB1",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "token_id": "tid",
    "token_secret": "ts",
}


def ns(**over: Any) -> tuple[Any, Any]:
    cols = {"columns": [{"name": "id", "type": "int64", "nullable": False}, {"name": "entityid"}]}
    opts = {"preset": "netsuite_suiteql", "object": "query", "limits": FAST, "records": cols, "primary_key": ["id"]}
    return extract(api_pipeline(api_dataset("q", "ns", {**opts, **over})), "q", window(None, None))


# -- netsuite/handwritten_suiteql_paging_sequence.json: the stand-in's pages in the same shape -----------------------


def test_standin_suiteql_pages_have_the_sequence_shape(standin: Any, env: Any) -> None:
    rec = recording("netsuite/handwritten_suiteql_paging_sequence.json")["exchanges"]
    standin("netsuite_suiteql", "ns", counts={"customer": 5})
    q = rec[0]["request"]["body"]
    for n, ex in enumerate(rec):
        resp = standin_call(
            "ns", "POST", SUITEQL, params={"limit": 2, "offset": 2 * n}, json=q, headers={"Prefer": "transient"}
        )
        mine, theirs = resp.json(), ex["response"]["body"]
        assert list(mine) == list(theirs)  # links, count, hasMore, items, offset, totalResults
        assert [link["rel"] for link in mine["links"]] == [link["rel"] for link in theirs["links"]], n
        assert (mine["count"], mine["hasMore"], mine["offset"], mine["totalResults"]) == (
            theirs["count"],
            theirs["hasMore"],
            theirs["offset"],
            theirs["totalResults"],
        )
        same_keys(mine["items"][0], theirs["items"][0])
        assert resp.headers["content-type"] == ex["response"]["headers"]["Content-Type"]


# -- netsuite/doc_collection_paging_links_excerpt.json ------------------------------------------------------------


def test_documented_links_are_not_followed_offset_paging_is(replay: Any, env: Any) -> None:
    doc = recording("netsuite/doc_collection_paging_links_excerpt.json")
    links = doc["response_links_as_printed"]  # next points to /record/v1/account: inconsistent as printed
    page1 = {
        "links": links,
        "count": 2,
        "hasMore": True,
        "items": [{"links": [], "id": "1"}, {"links": [], "id": "2"}],
        "offset": 0,
        "totalResults": 3,
    }
    page2 = {
        "links": [],
        "count": 1,
        "hasMore": False,
        "items": [{"links": [], "id": "3"}],
        "offset": 2,
        "totalResults": 3,
    }
    s = replay(
        [{"response": {"status": 200, "body": b}} for b in (page1, page2)], "ns", hosts=NS_HOST, extra=TBA
    )  # CONSTRUCTED
    manifest, table = ns(paginate={"limit": 2})
    assert table.column("id").to_pylist() == [1, 2, 3] and manifest.source_count == 3
    assert [sent(x)[1:] for x in s.seen] == [
        (SUITEQL, {"limit": "2", "offset": "0"}),
        (SUITEQL, {"limit": "2", "offset": "2"}),
    ]
    assert all("/record/v1/account" not in x["url"] for x in s.seen)


def test_standin_links_have_the_documented_rel_href_shape(standin: Any, env: Any) -> None:
    doc = recording("netsuite/doc_collection_paging_links_excerpt.json")
    standin("netsuite_suiteql", "ns", counts={"customer": 5})
    body = standin_call(
        "ns",
        "POST",
        SUITEQL,
        params={"limit": 2},
        json={"q": "SELECT id FROM customer ORDER BY id"},
        headers={"Prefer": "transient"},
    ).json()
    assert all(set(link) == {"rel", "href"} for link in body["links"] + doc["response_links_as_printed"])
    assert {"next", "last"} <= {link["rel"] for link in body["links"]} & {
        link["rel"] for link in doc["response_links_as_printed"]
    }


# -- netsuite/handwritten_error_bodies.json: the 401 and the stand-in's bodies ----------------------------------------


def test_invalid_login_401_fails_naming_the_connection(replay: Any, env: Any) -> None:
    refused = recording("netsuite/handwritten_error_bodies.json")["responses"][0]
    s = replay([{"response": refused}] * 4, "ns", hosts=NS_HOST, extra=TBA)
    with pytest.raises(
        ConfigurationError, match=r"refused the credentials of connection 'ns' \(HTTP 401: Invalid login attempt"
    ) as exc:
        ns()
    assert "cs" not in str(exc.value).replace("credentials", "") and len(s.seen) == 3  # re-signed, then given up


@pytest.mark.parametrize("n", [0, 1, 2], ids=["401", "429", "400"])
def test_standin_error_bodies_have_the_hand_written_envelope(standin: Any, env: Any, n: int) -> None:
    theirs = recording("netsuite/handwritten_error_bodies.json")["responses"][n]
    if n == 0:
        s = standin("netsuite_suiteql", "ns", counts={"customer": 1})
        from bulksync.hooks.api import ApiHook

        with ApiHook("ns").client() as http:
            resp = http.post(
                SUITEQL,
                json={"q": "SELECT id FROM customer"},
                headers={"Prefer": "transient", "Authorization": 'OAuth realm="x"'},
            )
        assert s.count("customer") == 1
    elif n == 1:
        standin("netsuite_suiteql", "ns", counts={"customer": 1}, faults={"throttle_share": 1.0, "seed": 1})
        resp = standin_call(
            "ns", "POST", SUITEQL, json={"q": "SELECT id FROM customer"}, headers={"Prefer": "transient"}
        )
    else:
        standin("netsuite_suiteql", "ns", counts={"customer": 1})
        resp = standin_call(
            "ns", "POST", SUITEQL, json={"q": "SELECT nosuchfield FROM customer"}, headers={"Prefer": "transient"}
        )
    assert resp.status_code == theirs["status"]
    same_keys(resp.json(), theirs["body"])
    assert set(resp.json()["o:errorDetails"][0]) >= {"detail", "o:errorCode"}
    assert resp.json()["o:errorDetails"][0]["o:errorCode"] == theirs["body"]["o:errorDetails"][0]["o:errorCode"]


# -- workday/doc_raas_contract.json ----------------------------------------------------------------------------------


def test_raas_contract_url_prompts_no_paging_and_both_empty_shapes(replay: Any, env: Any) -> None:
    facts = recording("workday/doc_raas_contract.json")["facts"]
    report = recording("workday/mock_airbyte_report_entry.json")["exchanges"][0]
    prompt = "d588c41a446c11de98360015c5e6daf6"  # the documented Worker_Type!WID example
    assert any(prompt in f for f in facts) and any("No paging" in f for f in facts)
    o = expand({"preset": "workday_raas", "object": "workers"})
    assert o["paginate"]["kind"] == "none" and o["endpoint"]["params"] == {"format": "json"}
    assert set(expand({"preset": "workday_raas", "object": "report"})) >= {"records"}
    s = replay(
        [
            report,
            {"response": {"status": 200, "body": {"Report_Entry": []}}},
            {"response": {"status": 200, "body": {}}},
        ],
        "wdr",
    )
    spec = api_pipeline(
        api_dataset(
            "r",
            "wdr",
            {
                "preset": "workday_raas",
                "object": "report",
                "endpoint": {"path": "/ISU_x/Job_Profiles", "params": {"Worker_Type!WID": prompt}},
                "records": {"columns": [{"name": "Job_Profile_Ref_ID", "nullable": False}]},
            },
        )
    )
    _, table = extract(spec, "r", window(None, None), run_id="a")
    assert table.num_rows == len(report["response"]["body"]["Report_Entry"])
    assert sent(s.seen[0]) == ("GET", "/ISU_x/Job_Profiles", {"format": "json", "Worker_Type!WID": prompt})
    assert len(s.seen) == 1  # one answer holds the whole report
    for run_id in ("b", "c"):  # UNKNOWN in the docs: an empty report with Report_Entry: [] or without it
        _, empty = extract(spec, "r", window(None, None), run_id=run_id)
        assert empty.num_rows == 0


def test_raas_401_on_bad_isu_credentials_fails_at_once(standin: Any, env: Any) -> None:
    facts = recording("workday/doc_raas_contract.json")["facts"]
    assert any("401 on bad credentials" in f for f in facts)
    import json
    import os

    standin("workday_raas", "wd", counts={"job_profiles": 2})
    conn = json.loads(os.environ["AIRFLOW_CONN_WD"])
    env.setenv("AIRFLOW_CONN_WD", json.dumps({**conn, "password": "Wr0ngSecret"}))
    spec = api_pipeline(api_dataset("j", "wd", {"preset": "workday_raas", "object": "job_profiles", "limits": FAST}))
    with pytest.raises(ConfigurationError, match=r"refused the credentials of connection 'wd' \(HTTP 401") as exc:
        extract(spec, "j", window(None, None))
    assert "Wr0ngSecret" not in str(exc.value)
