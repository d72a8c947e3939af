"""Rate limits, backoff hints and the circuit breaker, shared per connection within a process.

Server hints understood (all optional): ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3);
``X-RateLimit-Remaining``/``-Reset`` and Okta's ``X-Rate-Limit-*`` (reset as epoch seconds or seconds);
the IETF ``RateLimit-Remaining``/``-Reset`` (seconds) and the combined ``RateLimit: limit=…, remaining=…,
reset=…``; HubSpot's ``X-HubSpot-RateLimit-Remaining``/``-Interval-Milliseconds`` and
``-Secondly-Remaining``; Dataverse's ``x-ms-ratelimit-burst-remaining-xrm-requests``.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from bulksync.sources.api.errors import CircuitOpenError

_COMBINED = re.compile(r"(limit|remaining|reset)\s*=\s*(\d+)", re.I)


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked by ``Retry-After`` (None when absent or unreadable)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _reset_seconds(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    return max(0.0, reset - now) if reset > 1e9 else reset  # epoch seconds (Okta, GitHub) or a delta


def exhausted_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait when the headers say the budget is used up (remaining 0), else None."""
    now = time.time() if now is None else now
    pairs = (
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("x-rate-limit-remaining", "x-rate-limit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    )
    for rem, reset in pairs:
        if headers.get(rem) is not None and _int(headers.get(rem)) == 0:
            return _reset_seconds(headers.get(reset), now) or 1.0
    combined = headers.get("ratelimit")
    if combined:
        fields = {k.lower(): int(v) for k, v in _COMBINED.findall(combined)}
        if fields.get("remaining") == 0:
            return float(fields.get("reset", 1))
    if _int(headers.get("x-hubspot-ratelimit-secondly-remaining")) == 0:
        return 1.0
    if _int(headers.get("x-hubspot-ratelimit-remaining")) == 0:
        return float(_int(headers.get("x-hubspot-ratelimit-interval-milliseconds")) or 10_000) / 1000
    if _int(headers.get("x-ms-ratelimit-burst-remaining-xrm-requests")) == 0:
        return 1.0
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


class RateLimiter:
    """A token bucket (``rate`` requests per second, bursts of ``burst``) plus pauses the server asked for."""

    def __init__(self, rate: float | None = None, burst: int | None = None) -> None:
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate or 1)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self.lock = threading.Lock()
        self.waited = 0.0

    def rerate(self, rate: float | None, burst: int | None = None) -> None:
        """Change the rate (and burst) of this bucket; the tokens it holds stay, capped by the new burst."""
        with self.lock:
            self.rate = rate
            self.capacity = float(burst or max(1, int(rate or 1)))
            self.tokens = min(self.tokens, self.capacity)

    def pause(self, seconds: float) -> None:
        """Hold every request of the connection for ``seconds`` (the budget is used up)."""
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def acquire(self) -> None:
        """Block until a request may go."""
        while True:
            with self.lock:
                now = time.monotonic()
                wait = self.paused_until - now
                if wait <= 0 and self.rate:
                    self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                    self.updated = now
                    if self.tokens >= 1:
                        self.tokens -= 1
                        return
                    wait = (1 - self.tokens) / self.rate
                elif wait <= 0:
                    return
            self.waited += wait
            time.sleep(wait)


class CircuitBreaker:
    """Opens after ``threshold`` failed requests in a row; once open every request fails at once."""

    def __init__(self, conn_id: str, threshold: int) -> None:
        self.conn_id, self.threshold = conn_id, threshold
        self.failures = 0
        self.last = ""
        self.lock = threading.Lock()
        self.opened = False

    def check(self) -> None:
        """Raise :class:`CircuitOpenError` when open."""
        if self.opened:
            raise CircuitOpenError(self.message())

    def message(self) -> str:
        return (
            f"connection {self.conn_id!r}: {self.failures} requests in a row failed (last: {self.last}); the circuit "
            "breaker stopped the extract instead of retrying further. The API looks down or is refusing this "
            "client: check the vendor's status page and limits, then clear the task to rerun it"
        )

    def failure(self, what: str) -> None:
        with self.lock:
            self.failures += 1
            self.last = what
            if self.failures >= self.threshold:
                self.opened = True

    def success(self) -> None:
        with self.lock:
            self.failures = 0


_LIMITERS: dict[str, RateLimiter] = {}
_LOCK = threading.Lock()


def limiter_for(conn_id: str, rate: float | None) -> RateLimiter:
    """The process-wide limiter of a connection (every task thread and fan-out worker shares it).

    One bucket per connection, always: a client asking for another rate re-rates the shared bucket (the
    latest rate holds for every client of the connection) instead of getting a bucket of its own, which
    would let two datasets of one connection together exceed the budget.
    """
    with _LOCK:
        lim = _LIMITERS.get(conn_id)
        if lim is None:
            lim = _LIMITERS[conn_id] = RateLimiter(rate)
        elif lim.rate != rate:
            lim.rerate(rate)
        return lim
