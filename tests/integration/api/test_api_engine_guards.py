"""Guards of the ``api`` engine that only show on the wire: frozen inferred columns, the window overlap,
terminal 403/404, the repeated-token stop of every paging kind, the ``content_sha256`` signing hook, the
fan-out bound, and the connection's Airflow pool and shared client-side budget (docs/api.md).

The stand-in is ``acme_rest`` with a recorder in front (``Probe``): every API request's method, path,
query, headers and exact body bytes, how many of a kind were in flight at once, and on demand a fixed
status for a path or next-page links that come back (a looping API).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from bulksync import stages
from bulksync.errors import StagingError, TerminalError
from bulksync.sandbox.apis.acme_rest import AcmeRestStandIn
from bulksync.sandbox.asgi import FaultSettings, StandInConfig
from bulksync.sources.api.errors import ApiDataError, ApiRequestError
from bulksync.staging.reader import read_manifest
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window
from tests.integration.api.test_api_generic import COLUMNS, LIMITS, STYLES, options

CHILD = re.compile(r"^/v1/accounts/[^/]+/items$")


@dataclass
class Seen:
    """One API request as the stand-in received it."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float
    body: bytes = b""


@dataclass
class Deny:
    """Answer ``status`` to a path once ``after`` of its requests were served."""

    status: int
    after: int = 0


@dataclass
class Flight:
    """Requests of one kind in flight now, and the most at once."""

    now: int = 0
    peak: int = 0


class Probe(AcmeRestStandIn):
    """``acme_rest`` recording every API request; ``options={"repeat": True}`` makes every page after the first
    link to itself (next link, Link header, OData next link, GraphQL endCursor): the API loops."""

    name = "acme_probe"

    def __init__(self, config: StandInConfig) -> None:
        super().__init__(config)
        self.seen: list[Seen] = []
        self.deny: dict[str, Deny] = {}
        self.flights: dict[str, Flight] = {}
        self.app = self._recorder(self.app)

    def requests(self, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if path is None or s.path == path]

    def _recorder(self, app: Any) -> Any:
        async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or self.fault_exempt(scope["path"]):
                await app(scope, receive, send)
                return
            path = scope["path"]
            seen = Seen(
                scope["method"],
                path,
                dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True)),
                {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                time.monotonic(),
            )
            served = len(self.requests(path))
            self.seen.append(seen)
            flight = self.flights.setdefault("child" if CHILD.match(path) else path, Flight())
            flight.now += 1
            flight.peak = max(flight.peak, flight.now)
            landed = False

            def land() -> None:
                nonlocal landed
                if not landed:
                    landed, flight.now = True, flight.now - 1

            async def receive_body() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    seen.body += message.get("body", b"")
                return message

            async def send_answer(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    land()  # before the client can see the answer (and send its next request)
                await send(message)

            try:
                deny = self.deny.get(path)
                if deny is not None and served >= deny.after:
                    answer = self.error_response(deny.status, "forbidden", f"the app may not read {path}")
                    await answer(scope, receive_body, send_answer)
                else:
                    await app(scope, receive_body, send_answer)
            finally:
                land()

        return record

    # -- a looping API: every page after the first names itself as the next one ------------------

    def _own_url(self, request: Request) -> str:
        return f"{self.base_url}{request.url.path}?{request.url.query}"

    def _repeat(self) -> bool:
        return bool(self.config.options.get("repeat"))

    async def items(self, request: Request) -> Response:
        answer = await super().items(request)
        if not self._repeat() or int(request.query_params.get("pos") or 0) == 0:
            return answer
        style = request.path_params["style"]
        if style == "next":
            body = orjson.loads(bytes(answer.body))
            body["next"] = self._own_url(request)
            return self.json(body)
        if style == "link":
            link = f'<{self._own_url(request)}>; rel="next"'
            return Response(bytes(answer.body), 200, {"Link": link}, media_type="application/json")
        return answer

    async def odata(self, request: Request) -> Response:
        answer = await super().odata(request)
        if not self._repeat() or "$skiptoken" not in request.query_params:
            return answer
        body = orjson.loads(bytes(answer.body))
        if request.path_params["version"] == "v4":
            body["@odata.nextLink"] = self._own_url(request)
        else:
            body["d"]["__next"] = self._own_url(request)
        return self.json(body)

    async def graphql(self, request: Request) -> Response:
        answer = await super().graphql(request)
        after = (orjson.loads(await request.body()).get("variables") or {}).get("after")
        if not self._repeat() or not after:
            return answer
        body = orjson.loads(bytes(answer.body))
        body["data"]["items"]["pageInfo"]["endCursor"] = after
        return self.json(body)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Probe]]:
    """``probe(conn_id, counts={"items": 95}, options={...}, faults={...})``: a started :class:`Probe`,
    reachable as ``AIRFLOW_CONN_<CONN_ID>``."""
    started: list[Probe] = []
    monkeypatch.setenv("BULKSYNC_TOKEN_DIR", str(tmp_path / "tokens"))

    def start(conn_id: str, faults: dict[str, Any] | None = None, **config: Any) -> Probe:
        cfg = StandInConfig(
            workdir=tmp_path / f"probe-{len(started)}", faults=FaultSettings(**(faults or {})), **config
        )
        s = Probe(cfg)
        s.start()
        started.append(s)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", s.connection_json())
        return s

    yield start
    for s in started:
        s.stop()


def _uncommitted(spec: Any) -> None:
    with pytest.raises(StagingError):
        read_manifest(stages.partition_for(spec, spec.dataset("items"), window(None, None)), "extract")


class _Lines(logging.Handler):
    """The messages logged to a logger (Airflow's logging set-up may leave pytest's caplog out)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _schema(manifest: Any) -> dict[str, str]:
    return {f.name: str(f.type) for f in manifest.read_schema()}


# -- 1. columns: infer ------------------------------------------------------------------------------

INFERRED = {
    "id": "int64",
    "name": "string",
    "amount": "string",  # "12.50": text that is no ISO time
    "updated_at": "timestamp[us, tz=UTC]",
    "tags": "string",  # lists are JSON text
    "account_id": "int64",
}


@pytest.mark.parametrize(
    ("later", "outcome"),
    [
        ({"amount": 0.5}, None),  # numbers now: inference would say float64, the frozen string holds
        ({"account_id": "acc-7"}, r"field 'account_id': value 'acc-7' does not fit the declared type int64"),
    ],
    ids=["types-hold", "no-longer-fits"],
)
def test_inferred_columns_are_frozen_by_the_first_extract_and_reused_by_the_next(
    probe: Any, env: Any, later: dict[str, Any], outcome: str | None
) -> None:
    s = probe("acme_infer", counts={"items": 95})
    opts = {**options("cursor"), "records": {"path": "data", "columns": "infer"}}
    spec = api_pipeline(api_dataset("items", "acme_infer", opts))
    logged = _Lines()
    infer_log = logging.getLogger("bulksync.sources.api.infer")
    infer_log.addHandler(logged)
    try:
        first, table = extract(spec, "items", window(None, None), run_id="r1")
    finally:
        infer_log.removeHandler(logged)
    assert _schema(first) == INFERRED and table.num_rows == 95
    assert first.read_schema().field("id").nullable is False  # the primary key
    frozen = sorted((Path(os.environ["BULKSYNC_HOME"]) / ".local" / "api-columns").glob("*.yaml"))
    assert len(frozen) == 1 and re.fullmatch(r"acme_infer___v1_items_cursor__[0-9a-f]{10}\.yaml", frozen[0].name)
    text = frozen[0].read_text()
    # the fragment to paste into the spec is logged once
    assert len(logged.lines) == 1 and "froze 6 columns" in logged.lines[0] and text in logged.lines[0]
    profiled = len(s.requests())
    assert profiled > 5  # the profile's pages, then the extract's 5

    s.config.options["bad_record"] = {i: later for i in range(95)}  # every record changes shape
    if outcome is None:
        second, table = extract(spec, "items", window("2026-01-01T00:00", "2026-01-02T00:00"), run_id="r2")
        assert _schema(second) == INFERRED
        assert table.column("amount").to_pylist()[:2] == ["0.5", "0.5"]
    else:
        with pytest.raises(ApiDataError, match=r"GET /v1/items/cursor, page 1, record 0, " + outcome):
            extract(spec, "items", window(None, None), run_id="r2")
    assert frozen[0].read_text() == text  # not profiled again: the file was reused as it was
    assert len(s.requests()) - profiled == 5  # the second extract read its 5 pages and profiled none


def test_two_queries_on_one_connection_and_path_freeze_their_own_columns() -> None:
    """Two GraphQL queries on ``POST /graphql`` (or two SuiteQL queries) select different records: each
    gets its own frozen file, never the other's columns; the same endpoint always finds its own again."""
    from types import SimpleNamespace

    from bulksync.sources.api.infer import frozen_key

    def source(body: Any, params: dict[str, Any] | None = None, records: str = "data") -> Any:
        endpoint = SimpleNamespace(method="POST", path="/graphql", params=params or {}, body=body)
        return SimpleNamespace(
            spec=SimpleNamespace(conn_id="acme_gql"),
            options=SimpleNamespace(endpoint=endpoint, records=SimpleNamespace(path=records)),
        )

    users = source({"query": "{ users { id name } }"})
    orders = source({"query": "{ orders { id total } }"})
    keys = {frozen_key(users), frozen_key(orders), frozen_key(source(None, {"q": "x"})), frozen_key(source(None))}
    assert len(keys) == 4
    assert frozen_key(users) == frozen_key(source({"query": "{ users { id name } }"}))
    assert frozen_key(users) != frozen_key(source({"query": "{ users { id name } }"}, records="data.users"))
    assert all(k.startswith("acme_gql___graphql__") for k in keys)


# -- 2. window overlap ------------------------------------------------------------------------------


def test_the_window_start_moves_back_by_the_overlap_and_its_records_are_staged(probe: Any, env: Any) -> None:
    s = probe("acme_overlap", counts={"items": 1440})  # one record a minute on 2026-01-01
    opts = options(
        "cursor",
        incremental=True,
        window={
            "cursor_field": "updated_at",
            "params": {"updated_since": "{start}", "updated_before": "{end}"},
            "overlap_minutes": 7,
        },
    )
    spec = api_pipeline(api_dataset("items", "acme_overlap", opts))
    manifest, table = extract(spec, "items", window("2026-01-01T10:00", "2026-01-01T11:00"))
    first = s.requests("/v1/items/cursor")[0]
    assert first.params == {
        "updated_since": "2026-01-01T09:53:00Z",
        "updated_before": "2026-01-01T11:00:00Z",
        "limit": "20",
    }
    assert all(
        (r.params["updated_since"], r.params["updated_before"]) == ("2026-01-01T09:53:00Z", "2026-01-01T11:00:00Z")
        for r in s.requests("/v1/items/cursor")
    )
    times = table.column("updated_at").to_pylist()
    assert table.num_rows == 67 and min(times) == dt.datetime(2026, 1, 1, 9, 53, tzinfo=dt.UTC)
    assert sum(t < dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC) for t in times) == 7
    assert manifest.extra["source_stats"]["slices"] == [
        {"start": "2026-01-01T09:53:00+00:00", "end": "2026-01-01T11:00:00+00:00", "total": None}
    ]


# -- 3. terminal 403 / 404 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "page"), [(403, 1), (403, 2), (404, 1)], ids=["403-page1", "403-page2", "404"])
def test_a_403_or_404_is_terminal_at_once_and_commits_nothing(probe: Any, env: Any, status: int, page: int) -> None:
    s = probe("acme_denied", counts={"items": 95})
    s.deny["/v1/items/cursor"] = Deny(status, after=page - 1)
    spec = api_pipeline(api_dataset("items", "acme_denied", options("cursor")))
    with pytest.raises(ApiRequestError) as info:
        extract(spec, "items", window(None, None))
    assert str(info.value).startswith(
        f"GET /v1/items/cursor, page {page}: HTTP {status}: the app may not read /v1/items/cursor"
    )
    assert info.value.status == status and isinstance(info.value, TerminalError)
    assert len(s.requests("/v1/items/cursor")) == page  # the refused request was sent once: no retry
    _uncommitted(spec)


# -- 4. the repeated-token stop of every paging kind ------------------------------------------------


@pytest.mark.parametrize(
    ("style", "path", "token"),
    [
        ("next_link", "/v1/items/next", r"/v1/items/next\?limit=20&pos=20"),
        ("link_header", "/v1/items/link", r"/v1/items/link\?limit=20&pos=20"),
        ("odata_v4", "/odata/v4/Items", r"/odata/v4/Items\?%24top=20&%24count=true&%24skiptoken=cG9zOjIw"),
        ("odata_v2", "/odata/v2/Items", r"/odata/v2/Items\?%24top=20&%24inlinecount=allpages&%24skiptoken=cG9zOjIw"),
        ("graphql", "/graphql", r"cG9zOjIw"),
    ],
)
def test_a_next_page_token_that_comes_back_stops_every_paging_kind(
    probe: Any, env: Any, style: str, path: str, token: str
) -> None:
    s = probe("acme_loop", counts={"items": 95}, options={"repeat": True})
    opts = options(style)
    opts["paginate"] = {**opts["paginate"], "max_pages": 50}  # without the guard: a max_pages error, not a hang
    spec = api_pipeline(api_dataset("items", "acme_loop", opts))
    method = "POST" if style == "graphql" else "GET"
    with pytest.raises(ApiDataError) as info:
        extract(spec, "items", window(None, None))
    assert re.match(
        rf"{method} {path}, page 2: the next-page token '{token}' was already given by page 1; the API is sending "
        "the same pages again, so the read stopped instead of looping",
        str(info.value),
    ), str(info.value)
    assert len(s.requests(path)) == 2  # stopped at once, not one more page
    _uncommitted(spec)


# -- 5. the content_sha256 signing hook ---------------------------------------------------------------


@pytest.mark.parametrize("style", ["graphql", "cursor"])
def test_content_sha256_signs_the_exact_body_the_server_received(probe: Any, env: Any, style: str) -> None:
    s = probe("acme_signed", counts={"items": 45})
    spec = api_pipeline(
        api_dataset(
            "items", "acme_signed", options(style, hooks={**STYLES[style].get("hooks", {}), "sign": "content_sha256"})
        )
    )
    _, table = extract(spec, "items", window(None, None))
    assert table.num_rows == 45
    sent = s.requests()
    assert len(sent) == 3
    for r in sent:
        assert r.headers["x-content-sha256"] == hashlib.sha256(r.body).hexdigest()
    if style == "graphql":  # three different bodies (the cursor moves), three different digests
        assert all(r.method == "POST" and r.body for r in sent)
        assert [orjson.loads(r.body)["variables"].get("after") for r in sent] == [None, "cG9zOjIw", "cG9zOjQw"]
        assert len({r.headers["x-content-sha256"] for r in sent}) == 3
    else:  # GET: the digest of the empty body
        assert {r.headers["x-content-sha256"] for r in sent} == {hashlib.sha256(b"").hexdigest()}


# -- 6. fan-out concurrency bound ---------------------------------------------------------------------


def test_parent_concurrency_bounds_the_child_requests_in_flight_and_uses_the_bound(probe: Any, env: Any) -> None:
    s = probe("acme_fan", counts={"items": 240}, faults={"latency": 0.1})  # 24 parents, 10 items each
    opts = {
        **options("next_link"),
        "endpoint": {"path": "/v1/accounts/{parent_id}/items"},
        "paginate": {"kind": "none"},
        "parent": {"endpoint": {"path": "/v1/accounts"}, "records_path": "data", "column": "account", "concurrency": 3},
    }
    opts["records"] = {"path": "data", "columns": [{"name": "account", "type": "int64"}, *COLUMNS]}
    manifest, table = extract(api_pipeline(api_dataset("items", "acme_fan", opts)), "items", window(None, None))
    assert table.num_rows == 240 and manifest.extra["source_stats"]["parents"] == 24
    children = [r for r in s.requests() if CHILD.match(r.path)]
    assert len(children) == 24
    assert s.flights["child"].peak == 3


# -- 7. the connection's pool and its shared client-side budget ------------------------------------


def test_extract_tasks_of_api_datasets_run_in_their_connections_pool() -> None:
    from bulksync.factory.dags import build_dag

    spec = api_pipeline(
        api_dataset("items", "acme_tickets", options("cursor")),
        api_dataset("more", "acme_tickets", options("page")),
        api_dataset("deals", "acme_hubspot", {"preset": "hubspot", "object": "deals"}),
    )
    dag = build_dag(spec)
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert {k: v for k, v in pools.items() if k.endswith(".extract")} == {
        "items.extract": "api__acme_tickets",
        "more.extract": "api__acme_tickets",
        "deals.extract": "api__acme_hubspot",
    }
    assert {v for k, v in pools.items() if not k.endswith(".extract")} == {"default_pool"}


def test_two_extracts_of_one_connection_in_a_process_share_its_requests_per_second(probe: Any, env: Any) -> None:
    s = probe("acme_budget", counts={"items": 95})
    budget = {**LIMITS, "requests_per_second": 5}  # bursts of 5, then one request every 0.2 s
    spec = api_pipeline(
        api_dataset("items", "acme_budget", options("cursor", limits=budget)),
        api_dataset("more", "acme_budget", options("page", limits=budget)),
    )
    rows: dict[str, int] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            manifest = stages.extract(
                spec, spec.dataset(name), stages.RunContext(run_id=name, window=window(None, None), try_number=1)
            )
            rows[name] = manifest.rows
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("items", "more")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and rows == {"items": 95, "more": 95}
    sent = sorted(r.at for r in s.requests())
    assert len(sent) == 10  # 5 pages each: one budget of 5 a second (burst 5) needs 1 s; two budgets 0 s
    assert sent[-1] - sent[0] >= 0.85
    assert all(b - a >= 0.12 for a, b in itertools.pairwise(sent[5:]))  # past the burst: 5 a second


def test_two_clients_of_one_connection_share_one_limiter(probe: Any, env: Any) -> None:
    from bulksync.sources.api.source import ApiSource

    probe("acme_shared", counts={"items": 5})
    spec = api_pipeline(api_dataset("items", "acme_shared", options("cursor", limits={"requests_per_second": 3})))
    ds = spec.dataset("items")
    a, b = ApiSource(ds.source, window(None, None)), ApiSource(ds.source, window(None, None))
    try:
        assert a.client is not b.client and a.client.limiter is b.client.limiter
    finally:
        a.close()
        b.close()


def test_two_datasets_of_one_connection_at_other_rates_still_share_one_budget(probe: Any, env: Any) -> None:
    """A second dataset declaring another rate re-rates the connection's one bucket (the latest rate holds for
    both) instead of getting a bucket of its own, with which the two together could exceed the budget."""
    from bulksync.sources.api.source import ApiSource

    probe("acme_rates", counts={"items": 5})
    slow = api_pipeline(api_dataset("items", "acme_rates", options("cursor", limits={"requests_per_second": 2})))
    fast = api_pipeline(api_dataset("items", "acme_rates", options("cursor", limits={"requests_per_second": 7})))
    a = ApiSource(slow.dataset("items").source, window(None, None))
    b = ApiSource(fast.dataset("items").source, window(None, None))
    try:
        assert a.client.limiter is b.client.limiter
        assert a.client.limiter.rate == 7
    finally:
        a.close()
        b.close()
