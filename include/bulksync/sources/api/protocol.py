"""Named protocol hooks: the little code some APIs need, registered by name (specs name them, never
an import path), as transforms are.

Three kinds:

- ``splitter(slice, total, cap) -> list[Slice]``: cut a window whose query exceeds the API's cap
  (``window.split_hook``; default ``halve``);
- ``page(body, page) -> body``: check or reshape a parsed page before records are read
  (``hooks.page``; ``graphql_errors`` turns a GraphQL ``errors`` member of a 200 answer into an error);
- ``sign(request, fields)``: sign an outgoing ``httpx.Request`` (``hooks.sign``; the connection's
  fields are passed, never logged).

Register more with :func:`register` in a module imported by ``bulksync.sources.api`` (see
docs/api-preset-authoring.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from bulksync.errors import ConfigurationError
from bulksync.sources.api import window as win
from bulksync.sources.api.errors import ApiDataError, where

HOOKS: dict[str, dict[str, Callable[..., Any]]] = {"splitter": {}, "page": {}, "sign": {}}


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a protocol hook of ``kind`` under ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        HOOKS[kind][name] = fn
        return fn

    return deco


def hook(kind: str, name: str) -> Callable[..., Any]:
    """A registered hook, or a ConfigurationError listing the registered ones."""
    try:
        return HOOKS[kind][name]
    except KeyError:
        raise ConfigurationError(
            f"no {kind} hook named {name!r}; registered: {', '.join(sorted(HOOKS[kind])) or 'none'}"
        ) from None


@register("splitter", "halve")
def _halve(piece: win.Slice, total: int, cap: int) -> list[win.Slice]:
    return win.halve(piece, total, cap)


@register("splitter", "hubspot_search")
def _hubspot(piece: win.Slice, total: int, cap: int) -> list[win.Slice]:
    """HubSpot search: split on the last-modified time (never on ids, whose text order has gaps when ids
    grow from 4 to 5 digits), in proportion to the total, keeping each slice a fifth under the cap so a
    record changing while we read does not push a slice over it."""
    parts = max(2, -(-total * 5 // (cap * 4)))
    return win.halve(piece, parts * cap, cap)


@register("page", "graphql_errors")
def _graphql_errors(body: Any, label: str, number: int) -> Any:
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        path = ".".join(str(p) for p in first.get("path") or [])
        raise ApiDataError(
            f"{where(label, number)}: the GraphQL answer has {len(errors)} error(s); the first: "
            f"{first.get('message')}{' at ' + path if path else ''}"
        )
    return body


@register("sign", "content_sha256")
def _content_sha256(request: Any, fields: dict[str, Any]) -> None:
    """Adds ``X-Content-SHA256`` of the body (APIs that require a body digest)."""
    request.headers["X-Content-SHA256"] = hashlib.sha256(request.content or b"").hexdigest()
