"""The shared stand-in framework: ASGI apps on uvicorn over HTTPS with a throw-away CA, shared auth,
fault injection, a movable clock and admin endpoints. See :class:`~bulksync.sandbox.asgi.base.StandIn`."""

from __future__ import annotations

from bulksync.sandbox.asgi.base import ADMIN_HEADER, StandIn, StandInConfig
from bulksync.sandbox.asgi.faults import FaultSettings
from bulksync.sandbox.asgi.store import Query, Row, Table, View

__all__ = ["ADMIN_HEADER", "FaultSettings", "Query", "Row", "StandIn", "StandInConfig", "Table", "View"]
