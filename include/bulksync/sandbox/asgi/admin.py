"""Admin endpoints every stand-in shares, under ``/__admin`` (header ``X-Sandbox-Admin-Key``).

- ``GET  /__admin/state``: fault settings, request and token counters, table sizes;
- ``POST /__admin/faults`` (JSON of :class:`~bulksync.sandbox.asgi.faults.FaultSettings` fields), ``faults/clear``;
- ``POST /__admin/expire-tokens``; ``POST /__admin/clock`` ``{"now": ISO | null}``;
- ``GET  /__admin/tables/{table}``: the ground truth (every row, deleted ones included);
- ``POST /__admin/tables/{table}`` ``{"id"?: …, "fields": {…}}``: create or change a row (stamped now);
- ``DELETE /__admin/tables/{table}/{id}`` (``?hard=true`` purges instead of archiving).

A stand-in shapes the answers through :meth:`~bulksync.sandbox.asgi.base.StandIn.admin_error`,
:meth:`~bulksync.sandbox.asgi.base.StandIn.admin_state` and
:meth:`~bulksync.sandbox.asgi.base.StandIn.admin_done` (the Salesforce sandbox answers errors the
Salesforce way and actions with 204), and adds routes of its own after these.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from bulksync.sandbox.asgi.base import StandIn


def admin_guard(standin: StandIn, request: Request) -> Response | None:
    """The 403 answer unless ``request`` carries the stand-in's admin key."""
    from bulksync.sandbox.asgi.base import ADMIN_HEADER

    if not secrets.compare_digest(request.headers.get(ADMIN_HEADER, ""), standin.admin_key):
        return standin.admin_error(403, f"admin endpoints need the {ADMIN_HEADER} header")
    return None


def default_state(standin: StandIn) -> dict[str, Any]:
    """``GET /__admin/state`` of a stand-in that does not override :meth:`StandIn.admin_state`."""
    return {
        **standin.faults.state(),
        "auth": dict(standin.auth.counts),
        "tables": {n: len(t.view(_all())) for n, t in standin.tables.items()},
        "requests_by_path": dict(standin.requests_by_path),
    }


def admin_routes(standin: StandIn) -> list[Route]:
    """The admin routes bound to one stand-in."""

    def guard(request: Request) -> Response | None:
        return admin_guard(standin, request)

    async def state(request: Request) -> Response:
        return guard(request) or standin.json(standin.admin_state())

    async def faults(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            standin.faults.configure(**(await _json(request)))
        except TypeError as exc:
            return standin.admin_error(400, str(exc))
        return standin.json(standin.faults.state())

    async def faults_clear(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        standin.faults.clear()
        return standin.json(standin.faults.state())

    async def expire(request: Request) -> Response:
        return guard(request) or standin.admin_done({"expired": standin.auth.expire_all()})

    async def clock(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        now = (await _json(request)).get("now")
        standin.clock.set(dt.datetime.fromisoformat(now.replace("Z", "+00:00")) if now else None)
        return standin.admin_done({"now": standin.clock.now()})

    async def table(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        name = request.path_params["table"]
        if name not in standin.tables:
            return standin.admin_error(404, f"no table {name!r}; tables: {sorted(standin.tables)}")
        t = standin.tables[name]
        if request.method == "GET":
            return standin.json([standin.render(name, r) for r in t.rows()])
        body = await _json(request)
        row = t.upsert(body.get("id"), dict(body.get("fields") or {}), standin.clock.now(), lambda: _new_id(t))
        return standin.json(standin.render(name, row), 201)

    async def delete(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        name, key = request.path_params["table"], request.path_params["id"]
        try:
            standin.tables[name].delete(key, standin.clock.now(), hard=request.query_params.get("hard") == "true")
        except KeyError:
            return standin.admin_error(404, f"no row {key!r} in {name!r}")
        return Response(status_code=204)

    return [
        Route("/__admin/state", state, methods=["GET"]),
        Route("/__admin/faults", faults, methods=["POST"]),
        Route("/__admin/faults/clear", faults_clear, methods=["POST"]),
        Route("/__admin/expire-tokens", expire, methods=["POST"]),
        Route("/__admin/clock", clock, methods=["POST"]),
        Route("/__admin/tables/{table}", table, methods=["GET", "POST"]),
        Route("/__admin/tables/{table}/{id}", delete, methods=["DELETE"]),
    ]


def _all() -> Any:
    from bulksync.sandbox.asgi.store import Query

    return Query(deleted="include")


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return dict(json.loads(raw or b"{}"))


def _new_id(table: Any) -> str:
    return str(10**12 + table.count + len(table.overlay) + 1)
