"""Window binding: the run's data interval ``[start, end)`` written into params and bodies.

``{start}`` and ``{end}`` in ``window.params`` / ``window.body`` (and in a deletes request's
``window_params``) are replaced by the bounds in ``window.format``:

==========  =================================  ======================================
format      example for 2026-01-01 00:00 UTC    used by
==========  =================================  ======================================
iso8601     ``2026-01-01T00:00:00Z``            most REST APIs, Okta filters
iso8601_ms  ``2026-01-01T00:00:00.000Z``        HubSpot, Workday
epoch_s     ``1767225600`` (a number)           Stripe ``created[gte]``
epoch_ms    ``1767225600000`` (a number)        HubSpot search values
odata_v4    ``2026-01-01T00:00:00Z``            Graph, Dataverse ``$filter`` literals
odata_v2    ``datetime'2026-01-01T00:00:00'``   SAP Gateway ``$filter``
date        ``2026-01-01``                      date-only filters (Workday prompts)
sql_datetime ``2026-01-01 00:00:00``           SuiteQL ``TO_TIMESTAMP(…, 'YYYY-MM-DD HH24:MI:SS')``
==========  =================================  ======================================

A value that is exactly ``"{start}"`` keeps the format's type (numbers stay numbers in JSON).
Windows too large for an API's cap are split by a splitter hook (:mod:`bulksync.sources.api.protocol`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Slice:
    """One piece of a window: ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def fmt(value: dt.datetime, kind: str) -> Any:
    """``value`` in the window format ``kind``."""
    v = value.astimezone(dt.UTC)
    if kind == "epoch_s":
        return int(v.timestamp())
    if kind == "epoch_ms":
        return round(v.timestamp() * 1000)
    if kind == "iso8601_ms":
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    if kind == "odata_v2":
        return "datetime'" + v.strftime("%Y-%m-%dT%H:%M:%S") + "'"
    if kind == "date":
        return v.strftime("%Y-%m-%d")
    if kind == "sql_datetime":
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return v.strftime("%Y-%m-%dT%H:%M:%SZ")  # iso8601, iso8601_s, odata_v4


def bind(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with ``{name}`` placeholders replaced (recursively through dicts and lists)."""
    if isinstance(template, str):
        for name, value in values.items():
            token = "{" + name + "}"
            if template == token:
                return value
            if token in template:
                template = template.replace(token, str(value))
        return template
    if isinstance(template, dict):
        return {k: bind(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [bind(v, values) for v in template]
    return template


def bounds(piece: Slice, kind: str) -> dict[str, Any]:
    """The placeholder values of a slice."""
    return {"start": fmt(piece.start, kind), "end": fmt(piece.end, kind)}


def whole(start: dt.datetime | None, end: dt.datetime | None, overlap_minutes: int, now: dt.datetime) -> Slice:
    """The slice of a run's window (an open start is the epoch, an open end is now), widened by the overlap."""
    s = (start or EPOCH) - dt.timedelta(minutes=overlap_minutes)
    return Slice(max(EPOCH, s), end or now)


def halve(piece: Slice, total: int, cap: int) -> list[Slice]:
    """The default splitter: cut the slice into equal parts, as many as the total needs (at least two)."""
    parts = max(2, -(-total // cap))
    step = (piece.end - piece.start) / parts
    edges = [piece.start + step * i for i in range(parts)] + [piece.end]
    edges = [e.replace(microsecond=(e.microsecond // 1000) * 1000) for e in edges]  # APIs take milliseconds
    return [Slice(a, b) for a, b in itertools.pairwise(edges) if b > a]
