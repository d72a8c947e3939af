"""Replaying recorded and documented vendor responses (tests/fixtures/api_recordings, copied from
/work/shared/api-recordings; INDEX.md says where each file comes from) to a preset over real HTTPS.

``replay(exchanges, ...)`` starts a server on the stand-in framework that answers each request with
the next recorded response (in order), rewriting the vendor's host in bodies and headers to itself,
and records what was asked (method, path and query, headers, body), so a test can check both what
the preset sent and what it made of the vendor's bytes.
"""

from __future__ import annotations

import json
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
                "body": json.loads(body) if body else None,
            }
        )
        if not self.queue:
            return self.json({"error": f"no recorded response left for {request.url.path}"}, 404)
        resp = self.queue.pop(0)
        raw = resp["body"] if isinstance(resp.get("body"), str) else json.dumps(resp.get("body"))
        headers = {
            k: str(v)
            for k, v in (resp.get("headers") or {}).items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")
        }
        for host in self.config.options.get("hosts", ()):
            raw = raw.replace(host, self.base_url)
            headers = {k: v.replace(host, self.base_url) for k, v in headers.items()}
        media = headers.pop("content-type", headers.pop("Content-Type", "application/json"))
        return Response(raw, int(resp.get("status", 200)), headers, media_type=media)

    def connection(self) -> dict[str, Any]:
        extra = {"auth_kind": "none", "verify": str(self.tls.ca_bundle), **self.config.options.get("extra", {})}
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
