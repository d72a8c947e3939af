"""Faults on demand for every stand-in: shares of requests misbehaving, scheduled faults, added latency.

Kinds (what the client sees):

- ``throttle``: 429 with the vendor's body and ``Retry-After`` (or its rate-limit headers);
- ``unavailable``: 503 with ``Retry-After``;
- ``reset``: the status line and headers, then the connection is closed without a body;
- ``truncate``: half of the JSON body, then the connection is closed;
- ``expire``: every access token is expired before the request is handled (the client gets the vendor's 401);
- ``html``: an HTML error page with status 200 (a proxy or login page in front of the API);
- ``drop``: the connection is closed before anything is sent (the client sees a connection error).

A stand-in can add kinds of its own (the Salesforce sandbox's ``limit``, ``slow`` …): a subclass of
:class:`FaultSettings` with ``<kind>_share`` fields, a subclass of :class:`Faults` naming the kinds in
:attr:`Faults.kinds` (in draw order) and :meth:`~bulksync.sandbox.asgi.base.StandIn.vendor_fault`
answering them.

Draws come from a seeded RNG, so a test with ``seed`` sees the same sequence; ``schedule`` forces a
kind on given request numbers (1-based) of the API routes, whatever the shares.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

KINDS = ("throttle", "unavailable", "reset", "truncate", "expire", "html", "drop")
"""The kinds the framework itself applies (:class:`~bulksync.sandbox.asgi.middleware.FaultMiddleware`)."""


@dataclass
class FaultSettings:
    """What share (0.0–1.0) of API requests gets each kind of fault, and how they look."""

    throttle_share: float = 0.0
    unavailable_share: float = 0.0
    reset_share: float = 0.0
    truncate_share: float = 0.0
    expire_share: float = 0.0
    html_share: float = 0.0
    drop_share: float = 0.0
    retry_after: float = 0.05
    """Seconds sent in ``Retry-After`` (fractions are rounded up by vendors that send integers)."""
    latency: float = 0.0
    """Seconds added to every API request (the bench's 50 ms)."""
    schedule: dict[int, str] = field(default_factory=dict)
    """Request number (1-based, API routes only) → fault kind, whatever the shares."""
    seed: int | None = None


class Faults:
    """The live fault settings and the request counters of one stand-in."""

    kinds: ClassVar[tuple[str, ...]] = KINDS
    """Fault kinds in draw order (each has a ``<kind>_share`` setting)."""
    settings_class: ClassVar[type[FaultSettings]] = FaultSettings

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or self.settings_class()
        self.rng = random.Random(self.settings.seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.served: dict[str, int] = dict.fromkeys(self.kinds, 0)

    def configure(self, **changes: Any) -> FaultSettings:
        """Change some settings (unknown names raise ``TypeError``); returns the new settings."""
        known = {f.name for f in fields(self.settings)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        with self.lock:
            for name, value in changes.items():
                if name == "schedule":
                    value = {int(k): str(v) for k, v in dict(value).items()}
                    bad = sorted(set(value.values()) - set(self.kinds))
                    if bad:
                        raise TypeError(f"unknown fault kinds {bad}; known: {list(self.kinds)}")
                setattr(self.settings, name, value)
            if "seed" in changes:
                self.rng = random.Random(self.settings.seed)
        return self.settings

    def clear(self) -> None:
        """No faults and no latency any more (the counters stay)."""
        with self.lock:
            self.settings = self.settings_class()

    def draw(self) -> str | None:
        """Count one API request and pick its fault (one of :attr:`kinds`) or None."""
        s = self.settings
        with self.lock:
            self.requests += 1
            kind = self.forced()
            if kind is None:
                kind = s.schedule.get(self.requests)
            if kind is None:
                x = self.rng.random()
                for name in self.kinds:
                    share = float(getattr(s, f"{name}_share"))
                    if x < share:
                        kind = name
                        break
                    x -= share
            if kind:
                self.served[kind] = self.served.get(kind, 0) + 1
            return kind

    def forced(self) -> str | None:
        """A kind this request gets whatever the shares and schedule (a subclass's limits); called locked."""
        return None

    def state(self) -> dict[str, Any]:
        """Settings and counters, for ``GET /__admin/state``."""
        return {"settings": asdict(self.settings), "requests": self.requests, "faults_served": dict(self.served)}
