"""The generic ``api`` source (no preset) against every paging kind, and every bad input of the issue:
each error names the endpoint, page, record and field, and nothing is committed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StagingError
from bulksync.sources.api.errors import ApiDataError, ApiRequestError
from bulksync.staging.reader import read_manifest
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window

COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "name"},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
    {"name": "tags"},
]
LIMITS = {"initial_wait_seconds": 0.01, "max_wait_seconds": 0.2}
STYLES: dict[str, dict[str, Any]] = {
    "next_link": {
        "endpoint": {"path": "/v1/items/next", "params": {"limit": 20}},
        "records": {"path": "data"},
        "paginate": {"kind": "next_link", "next_path": "next"},
    },
    "link_header": {
        "endpoint": {"path": "/v1/items/link", "params": {"limit": 20}},
        "records": {"path": ""},
        "paginate": {"kind": "link_header"},
    },
    "cursor": {
        "endpoint": {"path": "/v1/items/cursor"},
        "records": {"path": "data"},
        "paginate": {
            "kind": "cursor",
            "next_path": "meta.next_cursor",
            "cursor_param": "cursor",
            "limit_param": "limit",
            "limit": 20,
        },
    },
    "cursor_from_last": {
        "endpoint": {"path": "/v1/items/after"},
        "records": {"path": "data"},
        "paginate": {
            "kind": "cursor",
            "cursor_from_last": "id",
            "cursor_param": "starting_after",
            "has_more_path": "has_more",
            "limit_param": "limit",
            "limit": 20,
        },
    },
    "offset": {
        "endpoint": {"path": "/v1/items/offset"},
        "records": {"path": "items"},
        "total": {"path": "total"},
        "paginate": {"kind": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 20},
    },
    "page": {
        "endpoint": {"path": "/v1/items/page"},
        "records": {"path": "results"},
        "paginate": {"kind": "page", "page_param": "page", "limit_param": "per_page", "limit": 20},
    },
    "odata_v4": {
        "endpoint": {"path": "/odata/v4/Items", "params": {"$top": 20, "$count": "true"}},
        "records": {"path": "value"},
        "total": {"path": "@odata.count"},
        "paginate": {"kind": "odata"},
    },
    "odata_v2": {
        "endpoint": {"path": "/odata/v2/Items", "params": {"$top": 20, "$inlinecount": "allpages"}},
        "records": {"path": "d.results"},
        "total": {"path": "d.__count"},
        "paginate": {"kind": "odata", "odata_version": "v2"},
    },
    "graphql": {
        "endpoint": {
            "method": "POST",
            "path": "/graphql",
            "body": {
                "query": "query($first: Int, $after: String) { items(first: $first, after: $after) "
                "{ edges { node { id name amount updated_at tags } } pageInfo { hasNextPage endCursor } } }",
                "variables": {"first": 20},
            },
        },
        "records": {"path": "data.items.edges"},
        "paginate": {"kind": "graphql", "page_info_path": "data.items.pageInfo"},
        "hooks": {"page": "graphql_errors"},
    },
}


def options(style: str, **extra: Any) -> dict[str, Any]:
    base = STYLES[style]
    cols = [dict(c) for c in COLUMNS]
    if style == "graphql":
        for c in cols:
            c["path"] = "node." + c["name"]
    if style == "odata_v2":
        next(c for c in cols if c["name"] == "updated_at")["format"] = "odata_v2"
    records = {**base["records"], "columns": cols}
    return {**base, "records": records, "primary_key": ["id"], "limits": LIMITS, **extra}


def truth(s: Any, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[int, tuple[Any, ...]]:
    import json

    return {
        int(r["id"]): (r["name"], Decimal(r["amount"]), r["updated"], json.dumps(r["tags"]).replace(" ", ""))
        for r in s.records("items")
        if (start is None or start <= r["updated"] < end)
    }  # type: ignore[operator]


def got(table: Any) -> dict[int, tuple[Any, ...]]:
    return {
        r["id"]: (r["name"], r["amount"], r["updated_at"], (r["tags"] or "").replace(" ", ""))
        for r in table.to_pylist()
    }


@pytest.mark.parametrize("style", list(STYLES))
def test_every_paging_kind_reads_every_record_once(standin: Any, env: Any, style: str) -> None:
    s = standin("acme_rest", "acme", counts={"items": 95})
    manifest, table = extract(api_pipeline(api_dataset("items", "acme", options(style))), "items", window(None, None))
    assert got(table) == truth(s) and table.num_rows == 95
    assert manifest.extra["source_stats"]["pages"] == 5  # 95 records, 20 a page: no extra request after the last
    if "total" in STYLES[style]:
        assert manifest.source_count == 95


def test_a_window_binds_as_query_params_with_both_boundaries(standin: Any, env: Any) -> None:
    s = standin("acme_rest", "acme", counts={"items": 1440})
    opts = options(
        "cursor",
        incremental=True,
        window={"cursor_field": "updated_at", "params": {"updated_since": "{start}", "updated_before": "{end}"}},
    )
    _, table = extract(
        api_pipeline(api_dataset("items", "acme", opts)), "items", window("2026-01-01T10:00", "2026-01-01T11:30")
    )
    start, end = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 11, 30, tzinfo=dt.UTC)
    assert got(table) == truth(s, start, end) and table.num_rows == 90
    assert min(table.column("updated_at").to_pylist()) == start


def test_parent_fan_out_with_bounded_concurrency(standin: Any, env: Any) -> None:
    s = standin("acme_rest", "acme", counts={"items": 200})
    opts = {
        **options("next_link"),
        "endpoint": {"path": "/v1/accounts/{parent_id}/items"},
        "paginate": {"kind": "none"},
        "parent": {"endpoint": {"path": "/v1/accounts"}, "records_path": "data", "column": "account", "concurrency": 4},
    }
    opts["records"] = {"path": "data", "columns": [{"name": "account", "type": "int64"}, *COLUMNS]}
    manifest, table = extract(api_pipeline(api_dataset("items", "acme", opts)), "items", window(None, None))
    assert {(r["account"], r["id"]) for r in table.to_pylist()} == {
        (int(r["account"]), int(r["id"])) for r in s.records("items")
    }
    assert manifest.extra["source_stats"]["parents"] == 20


def _fails(spec: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        extract(spec, "items", window(None, None))
    with pytest.raises(StagingError):  # nothing committed
        read_manifest(stages.partition_for(spec, spec.dataset("items"), window(None, None)), "extract")


def test_404_for_a_parent_id_names_it(standin: Any, env: Any) -> None:
    standin("acme_rest", "acme", counts={"items": 50}, options={"missing_parent": 777})
    opts = {
        **options("next_link"),
        "endpoint": {"path": "/v1/accounts/{parent_id}/items"},
        "paginate": {"kind": "none"},
        "parent": {"endpoint": {"path": "/v1/accounts"}, "records_path": "data", "column": "account"},
    }
    opts["records"] = {"path": "data", "columns": [{"name": "account", "type": "int64"}, *COLUMNS]}
    _fails(
        api_pipeline(api_dataset("items", "acme", opts)),
        ApiRequestError,
        r"GET /v1/accounts/\{parent_id\}/items \(parent id 777\), page 1: HTTP 404: account 777 does not exist"
        r".*parent id 777",
    )


@pytest.mark.parametrize(
    ("settings", "style", "exc", "match"),
    [
        ({"nonjson": True}, "next_link", ApiDataError, r"GET /v1/items/next, page 1: the body is not JSON"),
        (
            {"html": True},
            "next_link",
            ApiDataError,
            r"GET /v1/items/next, page 1: the API answered HTTP 200 with an HTML page",
        ),
        (
            {"repeat_token": True},
            "cursor",
            ApiDataError,
            r"GET /v1/items/cursor, page 2: the next-page token .* was already given by page 1",
        ),
        (
            {"shift_offset": True},
            "offset",
            ApiDataError,
            r"GET /v1/items/offset, page 2, record 0: primary key \{'id': 1019\} was already read",
        ),
        (
            {"gap_offset": True},
            "offset",
            ApiDataError,
            r"GET /v1/items/offset: the API said 95 records \(page 1\) but offset paging returned 94: records moved",
        ),
        (
            {"bad_record": {41: {"updated_at": None}}},
            "cursor",
            ApiDataError,
            r"GET /v1/items/cursor, page 3, record 1, field 'updated_at': the record has no value for the "
            r"non-null column",
        ),
        (
            {"bad_record": {57: {"amount": "12.5x"}}},
            "cursor",
            ApiDataError,
            r"GET /v1/items/cursor, page 3, record 17, field 'amount': value '12.5x' does not fit the declared "
            r"type decimal\(10,2\)",
        ),
        (
            {"bad_record": {3: {"id": "abc"}}},
            "page",
            ApiDataError,
            r"GET /v1/items/page, page 1, record 3, field 'id': value 'abc' does not fit the declared type int64",
        ),
    ],
    ids=[
        "non-json",
        "html-200",
        "repeated-token",
        "shifting-offset",
        "offset-gap",
        "missing-non-null",
        "bad-decimal",
        "bad-int",
    ],
)
def test_bad_input_names_endpoint_page_record_and_field(
    standin: Any, env: Any, settings: dict[str, Any], style: str, exc: type[Exception], match: str
) -> None:
    standin("acme_rest", "acme", counts={"items": 95}, options=settings)
    _fails(api_pipeline(api_dataset("items", "acme", options(style))), exc, match)


def test_a_graphql_error_answer_fails_with_its_message(standin: Any, env: Any) -> None:
    standin("acme_rest", "acme", counts={"items": 5})
    opts = options("graphql")
    opts["endpoint"] = {**opts["endpoint"], "body": {"query": "{ nothing }"}}
    _fails(
        api_pipeline(api_dataset("items", "acme", opts)),
        ApiDataError,
        r"POST /graphql, page 1: the GraphQL answer has 1 error\(s\); the first: Cannot query field",
    )
