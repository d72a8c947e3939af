"""Replaying recorded and documented vendor responses (tests/fixtures/api_recordings, copied from
/work/shared/api-recordings; INDEX.md says where each file comes from) to a preset over real HTTPS.

``replay(exchanges, ...)`` starts a server on the stand-in framework that answers each request with
the next recorded response (in order), rewriting the vendor's host in bodies and headers to itself,
and records what was asked (method, path and query, headers, body), so a test can check both what
the preset sent and what it made of the vendor's bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.asgi import StandIn, StandInConfig, Table

REC = Path(__file__).resolve().parents[2] / "fixtures" / "api_recordings"


def recording(name: str) -> dict[str, Any]:
    """A recording file of tests/fixtures/api_recordings."""
    return dict(json.loads((REC / name).read_text()))


class Replay(StandIn):
    """Answers requests with the recorded responses, in order."""

    name = "replay"

    def build_tables(self) -> dict[str, Table]:
        return {}

    def routes(self) -> list[Route]:
        self.queue: list[dict[str, Any]] = [ex["response"] for ex in self.config.options["exchanges"]]
        self.seen: list[dict[str, Any]] = []
        return [Route("/{path:path}", self.answer, methods=["GET", "POST"])]

    async def answer(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(
            {
                "method": request.method,
                "url": str(request.url).replace(self.base_url, ""),
                "headers": dict(request.headers),
                "body": json.loads(body) if body and body[:1] in (b"{", b"[") else (body.decode() or None),
                "at": time.monotonic(),
                "wall": time.time(),  # to compare with epoch headers (X-Rate-Limit-Reset)
            }
        )
        if not self.queue:
            return self.json({"error": f"no recorded response left for {request.url.path}"}, 404)
        resp = self.queue.pop(0)
        raw = resp["body"] if isinstance(resp.get("body"), str) else json.dumps(resp.get("body"))
        headers = {
            k: str(v() if callable(v) else v)  # a callable: a value made when the response is sent (a reset epoch)
            for k, v in (resp.get("headers") or {}).items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")
        }
        for host in self.config.options.get("hosts", ()):
            raw = raw.replace(host, self.base_url)
            headers = {k: v.replace(host, self.base_url) for k, v in headers.items()}
        media = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"), "application/json")
        out = Response(raw, int(resp.get("status", 200)), headers, media_type=media)
        for k, v in resp.get("header_list") or ():  # repeated headers (Okta's one link header per relation)
            out.headers.append(k, v.replace("https://{yourOktaDomain}", self.base_url))
        return out

    def connection(self) -> dict[str, Any]:
        extra = {"auth_kind": "none", "verify": str(self.tls.ca_bundle), **self.config.options.get("extra", {})}
        extra = {k: v.replace("{base_url}", self.base_url) if isinstance(v, str) else v for k, v in extra.items()}
        return {
            "conn_type": "http",
            "host": "127.0.0.1",
            "schema": "https",
            "port": self.port,
            **self.config.options.get("conn", {}),
            "extra": extra,
        }


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Replay]]:
    """``replay(exchanges, conn_id="replay", hosts=("https://vendor",), conn={...}, extra={...})``."""
    started: list[Replay] = []

    def start(exchanges: list[dict[str, Any]], conn_id: str = "replay", **options: Any) -> Replay:
        s = Replay(StandInConfig(workdir=tmp_path / f"r{len(started)}", options={"exchanges": exchanges, **options}))
        s.start()
        started.append(s)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", s.connection_json())
        return s

    yield start
    for s in started:
        s.stop()


# -- comparing what bulksync sent with what the recorder saw -------------------------------------

ALL_HOSTS = (
    "https://graph.microsoft.com",
    "https://api.hubapi.com",
    "https://api.stripe.com",
    "https://{yourOktaDomain}",
    "https://{api-server}",
    "https://api68sales.successfactors.com",
    "https://{environment}.operations.dynamics.com",
    "[Organization URI]",
    "{service_url}",
)


def sent(seen: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(method, path, params)`` of a request the replay server received."""
    from urllib.parse import parse_qsl, urlsplit

    u = urlsplit(seen["url"])
    return seen["method"], u.path, dict(parse_qsl(u.query, keep_blank_values=True))


def asked(request: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(method, path, params)`` of a recorded request (Nango/Grouparoo fields, or a docs ``url``)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    if "url" in request:
        url = str(request["url"])
        for host in ALL_HOSTS:
            url = url.replace(host, "")
        u = urlsplit(url)
        return str(request.get("method") or "GET"), unquote(u.path), dict(parse_qsl(u.query, keep_blank_values=True))
    params = {k: str(v) for k, v in (request.get("params") or {}).items()}
    return str(request.get("method") or "GET"), str(request["path"]), params


def standin_call(conn_id: str, method: str, path: str, **kwargs: Any) -> Any:
    """One request to a running stand-in through bulksync's own hook (its auth applied): an httpx response."""
    from bulksync.hooks.api import ApiHook

    hook = ApiHook(conn_id)
    with hook.client() as http:
        request = http.build_request(method, path, **kwargs)
        hook.authenticator.apply(request)
        return http.send(request)


def shape(obj: Any) -> Any:
    """The structure of a JSON value: mappings to their keys' shapes, lists to their first item's, scalars to
    their JSON type (null matches anything)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


def same_keys(mine: dict[str, Any], theirs: dict[str, Any], ignore: set[str] | frozenset[str] = frozenset()) -> None:
    """Assert two JSON objects have the same members (recursively into objects), naming the difference."""
    a, b = set(mine) - set(ignore), set(theirs) - set(ignore)
    assert a == b, f"stand-in only: {sorted(a - b)}; recording only: {sorted(b - a)}"
    for k in a:
        if isinstance(mine[k], dict) and isinstance(theirs[k], dict):
            same_keys(mine[k], theirs[k])


def preset_options(preset: str, obj: str, **replace: Any) -> dict[str, Any]:
    """A preset object's resolved options as generic ones, with whole members replaced (an endpoint the
    preset does not list: its paging, limits, totals and parsing stay the preset's own)."""
    from bulksync.sources.api.presets import expand

    out = {k: v for k, v in expand({"preset": preset, "object": obj}).items() if k not in ("preset", "object")}
    out.update(replace)
    return {k: v for k, v in out.items() if v is not None}
