"""Units of the api engine that need no server: spec errors naming the field, preset expansion,
window formats and binding, dotted paths, rate-limit headers, Link headers, the circuit breaker,
record conversion errors."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest

from bulksync.errors import SpecError
from bulksync.sources.api import paths
from bulksync.sources.api import window as win
from bulksync.sources.api.errors import ApiDataError, CircuitOpenError
from bulksync.sources.api.limits import CircuitBreaker, RateLimiter, exhausted_wait, retry_after
from bulksync.sources.api.paginate import link_next
from bulksync.sources.api.records import Converter, Origin
from bulksync.spec.api import ApiColumn
from tests.helpers import pipeline

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def spec_error(options: dict) -> str:
    with pytest.raises(SpecError) as exc:
        pipeline(
            [
                {
                    "name": "d",
                    "source": {"kind": "api", "conn_id": "c", "options": options},
                    "target": {"kind": "postgres", "conn_id": "p", "table": "t"},
                }
            ]
        )
    return str(exc.value)


BASE = {"endpoint": {"path": "/x"}, "records": {"path": "data", "columns": [{"name": "id", "type": "int64"}]}}


@pytest.mark.parametrize(
    ("options", "field", "text"),
    [
        ({**BASE, "paginate": {"kind": "cursor"}}, "paginate", "needs cursor_param"),
        ({**BASE, "paginate": {"kind": "offset", "offset_param": "o"}}, "paginate", "needs limit"),
        ({**BASE, "incremental": True}, "options", "needs 'window'"),
        (
            {**BASE, "window": {"cursor_field": "updated"}},
            "options",
            "window.cursor_field names undeclared columns: updated",
        ),
        (
            {**BASE, "records": {"path": "data", "columns": [{"name": "id", "type": "integr"}]}},
            "records.columns.list[0].type",
            "unknown type 'integr'",
        ),
        (
            {**BASE, "endpoint": {"path": "/x", "headers": {"Authorization": "Bearer x"}}},
            "endpoint.headers",
            "holds credentials",
        ),
        ({**BASE, "deletes": {"flag": "IsDeleted", "when_path": "@removed"}}, "options", "deletes needs primary_key"),
        ({**BASE, "endpoint": {"path": "/x", "params": {"hapikey": "abc"}}}, "endpoint.params", "holds credentials"),
        ({**BASE, "endpoint": {"path": "/x", "method": "PUT"}}, "endpoint.method", "'GET' or 'POST'"),
        ({**BASE, "pagination": {}}, "options.pagination", "unknown field"),
        (
            {"preset": "hubspot", "object": "quotes"},
            "options",
            "preset 'hubspot' has no object 'quotes'; objects: contacts",
        ),
        ({"preset": "salesforce_api"}, "options", "unknown preset 'salesforce_api'; presets: dynamics365, hubspot"),
        (
            {
                "endpoint": {"path": "/accounts/{parent_id}/items"},
                "records": {"path": "data", "columns": "infer"},
                "parent": {"endpoint": {"path": "/accounts"}, "key_path": "id", "column": "account_id"},
            },
            "options",
            "records.columns: infer cannot profile a parent fan-out",
        ),
    ],
)
def test_bad_options_name_the_field(options: dict, field: str, text: str) -> None:
    message = spec_error(options)
    assert field in message and text in message, message


def test_a_preset_override_replaces_lists_and_merges_mappings() -> None:
    from bulksync.spec.api import ApiOptions

    o = ApiOptions.model_validate(
        {"preset": "hubspot", "object": "deals", "limits": {"requests_per_second": 2}, "deletes": None}
    )
    assert o.limits.requests_per_second == 2 and o.limits.initial_wait_seconds == 1.0  # merged with the preset's
    assert o.deletes is None and o.window is not None and o.window.max_results == 10_000


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("iso8601", "2026-01-01T00:00:00Z"),
        ("iso8601_ms", "2026-01-01T00:00:00.000Z"),
        ("epoch_s", 1767225600),
        ("epoch_ms", 1767225600000),
        ("odata_v2", "datetime'2026-01-01T00:00:00'"),
        ("date", "2026-01-01"),
        ("sql_datetime", "2026-01-01 00:00:00"),
    ],
)
def test_window_formats(kind: str, expected: object) -> None:
    assert win.fmt(T, kind) == expected
    assert win.fmt(T.astimezone(dt.timezone(dt.timedelta(hours=2))), kind) == expected  # always UTC


def test_bind_keeps_types_and_fills_strings() -> None:
    body = {"filters": [{"value": "{start}"}, {"value": "{end}"}], "q": "x >= '{start}'"}
    out = win.bind(body, {"start": 1, "end": 2})
    assert out == {"filters": [{"value": 1}, {"value": 2}], "q": "x >= '1'"}


def test_halving_covers_the_window_exactly() -> None:
    piece = win.Slice(T, T + dt.timedelta(hours=1))
    parts = win.halve(piece, total=25_000, cap=10_000)
    assert len(parts) == 3 and parts[0].start == piece.start and parts[-1].end == piece.end
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))


def test_paths() -> None:
    doc = {"d": {"results": [{"a": {"b": 1}}], "__next": "n"}, "@odata.nextLink": "x", "l": [1, 2]}
    assert paths.get(doc, "d.results[0].a.b") == 1 and paths.get(doc, "$.d.__next") == "n"
    assert (
        paths.get(doc, "@odata.nextLink") == "x"
        and paths.get(doc, "l[1]") == 2
        and paths.get(doc, "d.missing.x") is None
    )
    assert paths.has({"x": None}, "x") and not paths.has({}, "x")


def test_retry_after_and_budget_headers() -> None:
    assert retry_after({"retry-after": "10"}) == 10
    assert (
        retry_after(
            {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
            now=dt.datetime(2015, 10, 21, 7, 27, 30, tzinfo=dt.UTC).timestamp(),
        )
        == 30
    )
    now = 1_700_000_000.0
    assert (
        exhausted_wait({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now) + 7)}, now) == 7
    )  # Okta epoch
    assert exhausted_wait({"ratelimit-remaining": "0", "ratelimit-reset": "4"}, now) == 4  # IETF delta
    assert exhausted_wait({"ratelimit": "limit=100, remaining=0, reset=3"}, now) == 3
    assert (
        exhausted_wait(
            {"x-hubspot-ratelimit-remaining": "0", "x-hubspot-ratelimit-interval-milliseconds": "10000"}, now
        )
        == 10
    )
    assert exhausted_wait({"x-rate-limit-remaining": "5"}, now) is None


def test_link_header_relations() -> None:
    assert link_next(['<https://a/x?after=2>; rel="next", <https://a/x>; rel="self"']) == "https://a/x?after=2"
    assert link_next(["<https://a/x>; rel=self", "<https://a/y>; rel=next"]) == "https://a/y"
    assert link_next(['<https://a/z>; rel="last next"']) == "https://a/z"


def test_rate_limiter_spaces_requests() -> None:
    import time

    lim = RateLimiter(rate=50, burst=1)
    start = time.monotonic()
    for _ in range(6):
        lim.acquire()
    assert time.monotonic() - start >= 0.09


def test_circuit_breaker_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker("c", 3)
    for _ in range(2):
        b.failure("HTTP 503")
    b.success()
    b.failure("HTTP 503")
    b.check()
    b.failure("HTTP 503")
    b.failure("HTTP 502")
    with pytest.raises(CircuitOpenError, match=r"3 requests in a row failed \(last: HTTP 502\)"):
        b.check()


def test_converter_types_and_errors() -> None:
    cols = [
        ApiColumn(name="id", type="int64", nullable=False),
        ApiColumn(name="amt", type="decimal(10,2)", path="p.amt"),
        ApiColumn(name="at", type="timestamptz", path="p.at"),
        ApiColumn(name="ms", type="timestamptz", format="epoch_ms"),
        ApiColumn(name="v2", type="date", format="odata_v2"),
        ApiColumn(name="tags"),
        ApiColumn(name="ok", type="bool"),
    ]
    conv = Converter(cols, flag="IsDeleted")
    recs = [
        {
            "id": "7",
            "p": {"amt": "5000.00", "at": "2026-03-12T10:04:17.969Z"},
            "ms": 1767225600000,
            "v2": "/Date(1767225600000)/",
            "tags": ["a"],
            "ok": "true",
        }
    ]
    row = conv.convert(recs, [Origin("GET /x", 1, 1)], [False]).to_pylist()[0]
    assert row["id"] == 7 and row["amt"] == Decimal("5000.00") and row["at"].microsecond == 969000
    assert row["ms"] == T and row["v2"] == T.date() and row["tags"] == '["a"]' and row["ok"] is True
    assert conv.schema.field("IsDeleted").type == pa.bool_()
    with pytest.raises(ApiDataError, match=r"GET /x, page 2, record 1, field 'amt': value '1.234' does not fit"):
        conv.convert([recs[0], {**recs[0], "p": {"amt": "1.234"}}], [Origin("GET /x", 2, 2)], [False, False])
    with pytest.raises(ApiDataError, match=r"page 3, record 0, field 'id': the record has no value for the non-null"):
        conv.convert([{"p": {}}], [Origin("GET /x", 3, 1)], [False])
    assert conv.convert([{"p": {}}], [Origin("GET /x", 3, 1)], [True]).num_rows == 1  # a deletion needs no other value


def test_texts_lists_and_times_convert_as_before() -> None:
    """The fast paths of text and time columns: texts as they are, '' and None null, lists as JSON, others fail."""

    class Text(str):
        pass

    conv = Converter([ApiColumn(name="s"), ApiColumn(name="t", type="timestamptz")])
    recs = [
        {"s": "a", "t": "2026-01-01T00:00:00Z"},
        {"s": ["+1 425", "x"], "t": ""},
        {"s": {"k": 1}, "t": None},
        {"s": Text("b"), "t": Text("2026-01-01T00:00:00Z")},
        {"s": 1.5, "t": "2026-01-01T00:00:00.000Z"},
        {"s": True},
        {"s": None},
        {"s": ""},
    ]
    rows = conv.convert(recs, [Origin("GET /x", 1, len(recs))]).to_pylist()
    assert [r["s"] for r in rows] == ["a", '["+1 425","x"]', '{"k":1}', "b", "1.5", "true", None, ""]
    assert [r["t"] for r in rows] == [T, None, None, T, T, None, None, None]
    with pytest.raises(ApiDataError, match=r"page 1, record 1, field 't': value 1767225600 does not fit"):
        conv.convert([recs[0], {"t": 1767225600}], [Origin("GET /x", 1, 2)])


def test_without_gc_pauses_the_collector_only_while_the_items_are_made() -> None:
    import gc

    from bulksync.sources.api.records import without_gc

    states: list[bool] = []
    closed: list[bool] = []

    def items() -> Iterator[int]:
        try:
            for i in range(3):
                states.append(gc.isenabled())
                yield i
        finally:
            closed.append(True)

    assert gc.isenabled()
    seen = []
    for i in without_gc(items()):
        seen.append((i, gc.isenabled()))
    assert seen == [(0, True), (1, True), (2, True)] and states == [False, False, False] and gc.isenabled()
    gen = without_gc(items())
    assert next(gen) == 0
    gen.close()  # the caller stops early: the source's generator is closed too
    assert closed == [True, True] and gc.isenabled()

    def failing() -> Iterator[int]:
        yield 1
        raise ApiDataError("page 2 is broken")

    gen = without_gc(failing())
    assert next(gen) == 1
    with pytest.raises(ApiDataError, match="page 2"):
        next(gen)
    assert gc.isenabled()
    gc.disable()  # someone else turned it off: it stays off
    try:
        assert list(without_gc(items())) == [0, 1, 2] and not gc.isenabled()
    finally:
        gc.enable()
