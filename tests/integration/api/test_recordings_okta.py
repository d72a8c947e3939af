"""The okta preset and stand-in against every file of tests/fixtures/api_recordings/okta: the recorded users,
groups, system log and policies answers (400s included), the two documented spellings of the ``link``
header, and the documented rate-limit headers and error catalogue. Pages built here are marked
``CONSTRUCTED``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sources.api.errors import ApiRequestError
from bulksync.sources.api.presets import expand
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.recorded import ALL_HOSTS, asked, recording, same_keys, sent, standin_call

replay = recorded.replay
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 3.0}
POLICIES = recording("okta/recorded_policies_with_400_errors.json")["exchanges"]


def run(obj: str, **over: Any) -> tuple[Any, Any]:
    spec = api_pipeline(api_dataset("o", "replay", {"preset": "okta", "object": obj, "limits": FAST, **over}))
    return extract(spec, "o", window(None, None))


def ts(v: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None


def expected(obj: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded records as the preset's columns hold them (paths and types from the preset itself)."""
    cols = expand({"preset": "okta", "object": obj})["records"]["columns"]
    out = []
    for r in records:
        row: dict[str, Any] = {}
        for c in cols:
            v: Any = r
            for seg in (c.get("path") or c["name"]).split("."):
                v = v.get(seg) if isinstance(v, dict) else None
            row[c["name"]] = ts(v) if c.get("type") == "timestamptz" else v
        out.append(row)
    key = cols[0]["name"]
    return sorted(out, key=lambda r: r[key])


def rows(table: Any, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in drop} for r in table.to_pylist()]


# -- recorded_list_users_single_page.json ---------------------------------------------------------------------


def test_users_last_page_has_only_self_and_ends_the_read(replay: Any, standin: Any, env: Any) -> None:
    ex = recording("okta/recorded_list_users_single_page.json")["exchanges"][0]
    s = replay([ex], hosts=ALL_HOSTS)
    manifest, table = run("users")
    body = ex["response"]["body"]
    assert rows(table, ("IsDeleted",)) == expected("users", body)
    assert table.column("IsDeleted").to_pylist() == [False] * 8  # no DEPROVISIONED user in the recording
    assert [sent(x) for x in s.seen] == [asked(ex["request"])]  # GET /api/v1/users?limit=200, one page
    assert manifest.extra["source_stats"].get("budget_pauses", 0) == 0  # remaining 298: no pause
    standin("okta", "ok", counts={"users": 3})
    resp = standin_call("ok", "GET", "/api/v1/users", params={"limit": 200})
    same_keys(resp.json()[0], body[0])
    rate = {h for h in ex["response"]["headers"] if h.startswith("x-rate-limit")}
    assert rate == {h for h in resp.headers if h.startswith("x-rate-limit")} and len(rate) == 3
    assert int(resp.headers["x-rate-limit-reset"]) > 1e9 and int(ex["response"]["headers"]["x-rate-limit-reset"]) > 1e9
    assert resp.headers.get_list("link") == [f'<{recorded_self(resp)}>; rel="self"']  # last page: self only


def recorded_self(resp: Any) -> str:
    return str(resp.url)


# -- recorded_list_groups_single_page.json ---------------------------------------------------------------------


def test_groups_page_through_the_added_groups_object(replay: Any, env: Any) -> None:
    ex = recording("okta/recorded_list_groups_single_page.json")["exchanges"][0]
    s = replay([ex], hosts=ALL_HOSTS)
    _, table = run("groups")
    assert rows(table) == expected("groups", ex["response"]["body"]) and table.num_rows == 6
    assert [sent(x) for x in s.seen] == [asked(ex["request"])]  # limit=1000, as recorded


# -- recorded_system_log_with_next_link.json -------------------------------------------------------------------


def test_system_log_follows_the_next_of_the_comma_joined_link(replay: Any, env: Any) -> None:
    ex = recording("okta/recorded_system_log_with_next_link.json")["exchanges"][0]
    nxt = ex["response"]["headers"]["link"].split(", ")[1].split(">")[0][1:]
    end = {"response": {"status": 200, "headers": {"link": f'<{nxt}>; rel="self"'}, "body": []}}  # CONSTRUCTED
    s = replay([ex, end], hosts=ALL_HOSTS)
    _, table = run("system_log", paginate={"limit": None}, endpoint={"params": {}})  # the recorded request
    assert rows(table) == expected("system_log", ex["response"]["body"])
    method, path, _ = asked(ex["request"])  # the recorder's request, plus the bounded order the preset adds
    assert sent(s.seen[0]) == (method, path, {"sortOrder": "DESCENDING"})
    assert s.seen[1]["url"] == nxt.replace("https://{yourOktaDomain}", "")  # /api/v1/logs?after=1783111394963_1
    assert len(s.seen) == 2


def test_system_log_window_is_bounded_by_until() -> None:
    o = expand({"preset": "okta", "object": "system_log"})
    facts = recording("okta/doc_link_header_pagination.json")["facts"]
    assert any("System Log polling" in f and "until" in f for f in facts)
    assert set(o["window"]["params"]) >= {"since", "until"} and o["endpoint"]["params"]["sortOrder"] == "DESCENDING"


# -- recorded_policies_with_400_errors.json ----------------------------------------------------------------------


@pytest.mark.parametrize("n", range(len(POLICIES)), ids=[e["request"]["params"]["type"] for e in POLICIES])
def test_policies_by_type_read_or_fail_with_the_okta_error(replay: Any, env: Any, n: int) -> None:
    ex = POLICIES[n]
    s = replay([ex], hosts=ALL_HOSTS)
    _, _, params = asked(ex["request"])
    if ex["response"]["status"] == 200:
        _, table = run("policies", endpoint={"params": {"type": params["type"]}})
        assert rows(table) == expected("policies", ex["response"]["body"])
    else:
        body = ex["response"]["body"]
        with pytest.raises(ApiRequestError, match=r"HTTP 400: The request was not valid: .* \(E0000002\)$") as exc:
            run("policies", endpoint={"params": {"type": params["type"]}})
        assert body["errorSummary"] in str(exc.value) and exc.value.status == 400
    assert [sent(x) for x in s.seen] == [asked(ex["request"])]  # ?limit=200&type=…, and not retried


# -- doc_link_header_pagination.json ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["current_docs", "older_docs", "system_log_example"])
def test_both_documented_link_spellings_are_followed(replay: Any, env: Any, variant: str) -> None:
    doc = recording("okta/doc_link_header_pagination.json")[variant]
    # an HTTP header value cannot hold the older docs' line break: it is the folding whitespace it stands for
    header_list = [(k, " ".join(v.split())) for k, v in doc["headers"]]
    user = {"id": "00u1", "status": "ACTIVE", "profile": {}, "lastUpdated": "2026-01-01T00:00:00.000Z"}
    first = {"response": {"status": 200, "header_list": header_list, "body": [user]}}  # CONSTRUCTED bodies
    last = {"response": {"status": 200, "body": [{**user, "id": "00u2"}]}}
    s = replay([first, last], hosts=ALL_HOSTS)
    _, table = run("users")
    assert table.column("id").to_pylist() == ["00u1", "00u2"]
    targets = [v for _, v in header_list for part in v.split(",") if 'rel="next"' in part]
    nxt = next(p for v in targets for p in v.split(",") if 'rel="next"' in p).strip().split(">")[0][1:]
    assert s.seen[1]["url"] == nxt.replace("https://{yourOktaDomain}", "")  # the next, never the self link
    assert len(s.seen) == 2


def test_standin_sends_one_link_header_per_relation_as_the_current_docs(standin: Any, env: Any) -> None:
    doc = recording("okta/doc_link_header_pagination.json")["current_docs"]
    standin("okta", "ok", counts={"users": 5})
    resp = standin_call("ok", "GET", "/api/v1/users", params={"limit": 2})
    links = resp.headers.get_list("link")
    assert [link.split("; ")[1] for link in links] == [v.split("; ")[1] for _, v in doc["headers"]]  # self, next
    assert "after=" in links[1]


# -- doc_rate_limits_and_errors.json -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2], ids=["rate_limit", "concurrent_limit"])
def test_429_waits_until_the_reset_epoch(replay: Any, env: Any, n: int) -> None:
    doc = recording("okta/doc_rate_limits_and_errors.json")
    headers = dict(doc["header_examples"][n]["headers"])
    resets: list[int] = []

    def reset_epoch() -> str:  # CONSTRUCTED: the example's epoch is in 2021; 1 to 2 s after the 429 is sent
        resets.append(int(time.time()) + 2)
        return str(resets[-1])

    headers["X-Rate-Limit-Reset"] = reset_epoch
    throttled = {"response": {"status": 429, "headers": headers, "body": doc["system_log_429_body_example"]}}
    page = {"response": {"status": 200, "headers": doc["header_examples"][0]["headers"], "body": []}}
    s = replay([throttled, page], hosts=ALL_HOSTS)
    manifest, _ = run("users")
    waited = s.seen[1]["at"] - s.seen[0]["at"]
    due = resets[0] - s.seen[0]["wall"]  # what was left until the reset when the 429 was answered: 1 to 2 s
    # until X-Rate-Limit-Reset (epoch seconds, not a delay), not the 0.01 s backoff
    assert due - 0.2 <= waited <= due + 1.2
    assert manifest.extra["source_stats"]["http_429"] == 1


def test_catalogue_401_fails_and_standin_uses_the_catalogue_bodies(replay: Any, standin: Any, env: Any) -> None:
    doc = recording("okta/doc_rate_limits_and_errors.json")
    entry = next(e for e in doc["error_catalogue_entries"] if e["errorCode"] == "E0000011")
    body = {**doc["error_envelope_example"], "errorCode": "E0000011", "errorSummary": entry["errorSummary"]}
    body["errorLink"], body["errorCauses"] = "E0000011", []
    replay(
        [{"response": {"status": 401, "body": body}}],
        hosts=ALL_HOSTS,
        extra={"auth_kind": "bearer", "token_prefix": "SSWS"},
        conn={"password": "00revoked"},
    )
    with pytest.raises(ConfigurationError, match=r"HTTP 401: Invalid token provided \(E0000011\)"):
        run("users")
    standin("okta", "ok", counts={"users": 2})
    standin("okta", "ok429", counts={"users": 2}, faults={"throttle_share": 1.0, "seed": 1})
    from bulksync.hooks.api import ApiHook

    with ApiHook("ok").client() as http:
        refused = http.get("/api/v1/users", headers={"Authorization": "SSWS wrong"})
    assert refused.status_code == entry["statusCode"]
    same_keys(refused.json(), doc["error_envelope_example"])
    assert refused.json()["errorSummary"] == entry["errorSummary"]
    throttled = standin_call("ok429", "GET", "/api/v1/users")
    e47 = next(e for e in doc["error_catalogue_entries"] if e["errorCode"] == "E0000047")
    assert throttled.status_code == e47["statusCode"] and throttled.json()["errorCode"] == "E0000047"
    assert throttled.json()["errorSummary"] == e47["errorSummary"] == doc["system_log_429_body_example"]["errorSummary"]
    assert throttled.headers["x-rate-limit-remaining"] == "0" and "retry-after" not in throttled.headers
