"""The ASGI middleware that injects faults into a stand-in's API routes and adds latency."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from bulksync.sandbox.asgi.base import StandIn

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Session expired</h1>"
    "<p>Please sign in again.</p></body></html>"
)


class InjectedFault(Exception):
    """Raised inside the app to make uvicorn drop the connection (a reset or a truncated body)."""


class _QuietFaults(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedFault) and "InjectedFault" not in record.getMessage()


def quiet_injected_faults() -> None:
    """Keep uvicorn from logging a traceback for every connection the fault injector drops."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietFaults) for f in logger.filters):
        logger.addFilter(_QuietFaults())


class FaultMiddleware:
    """Draws a fault for each API request (not admin, not token endpoints) and applies it.

    A request the stand-in's :meth:`~bulksync.sandbox.asgi.base.StandIn.precheck` refuses (a vendor
    that checks the session before counting a request) is answered without a draw. Kinds outside
    :data:`~bulksync.sandbox.asgi.faults.KINDS` go to the stand-in's
    :meth:`~bulksync.sandbox.asgi.base.StandIn.vendor_fault`.
    """

    def __init__(self, app: Any, standin: StandIn) -> None:
        self.app, self.standin = app, standin

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.standin.fault_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        s = self.standin
        s.requests_by_path[scope["path"]] = s.requests_by_path.get(scope["path"], 0) + 1
        refused = await s.precheck(scope)
        if refused is not None:
            await refused(scope, receive, send)
            return
        fault = s.faults.draw()
        if s.faults.settings.latency:
            await asyncio.sleep(s.faults.settings.latency)
        if fault == "throttle":
            await s.error_response(429, "throttle", "Too many requests")(scope, receive, send)
        elif fault == "unavailable":
            await s.error_response(503, "unavailable", "Service temporarily unavailable")(scope, receive, send)
        elif fault == "html":
            await HTMLResponse(HTML_PAGE, 200)(scope, receive, send)
        elif fault == "reset":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
            raise InjectedFault("connection reset by the fault injector")
        elif fault == "truncate":
            await self.app(scope, receive, _truncating(send))
        elif fault == "drop":
            drop_connection(send)
        elif fault == "expire" or fault is None:
            if fault == "expire":
                s.auth.expire_all()
            await self.app(scope, receive, send)
        else:
            answer = await s.vendor_fault(fault)
            await (answer or self.app)(scope, receive, send)


def drop_connection(send: Any) -> None:
    """Close the client's connection before any byte of an answer (uvicorn's HTTP protocols).

    ASGI has no message for "close without answering" (an app that raises before answering gets a
    500), so this reaches the protocol's transport behind ``send`` (uvicorn's request cycle) and
    aborts it; the cycle is marked disconnected so uvicorn sends nothing after it.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise InjectedFault("connection dropped by the fault injector")  # another server: a 500 at least
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]


def _truncating(send: Any) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise InjectedFault("body truncated by the fault injector")
        await send(message)

    return wrapped
