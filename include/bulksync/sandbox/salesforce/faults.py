"""Faults on demand for the Salesforce sandbox, plugged into the stand-in framework's fault injection.

The framework (:mod:`bulksync.sandbox.asgi.faults`) draws and applies the kinds every stand-in has:
``unavailable`` (503 ``SERVER_UNAVAILABLE`` with ``Retry-After``), ``throttle`` (429), ``drop`` (the
connection closed without an answer), ``truncate`` (the answer stops halfway through its body), and
``reset``, ``expire``, ``html``, ``latency`` and ``schedule``. Salesforce adds kinds of its own, applied
by :meth:`~bulksync.sandbox.salesforce.server.SalesforceSandbox.vendor_fault`: ``limit`` (403
``REQUEST_LIMIT_EXCEEDED``, a concurrency limit; transient), ``slow`` (answered after ``slow_seconds``)
and ``exhausted`` (the daily API request limit, ``DailyApiRequests``, is used up); and job faults:
query jobs that end ``Failed``, ingest jobs that fail part-way.

Draws come from a seeded RNG, so a test with ``seed`` set sees the same sequence of faults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bulksync.sandbox.asgi import faults as framework


@dataclass
class FaultSettings(framework.FaultSettings):
    """What share of API requests misbehave, and how (each share is 0.0–1.0).

    The framework's settings (``unavailable_share``, ``throttle_share``, ``drop_share``,
    ``truncate_share``, ``reset_share``, ``expire_share``, ``html_share``, ``latency``, ``schedule``,
    ``seed``) plus Salesforce's below.
    """

    retry_after: float = 1
    """Seconds sent in ``Retry-After``."""
    limit_share: float = 0.0
    """Answered 403 ``REQUEST_LIMIT_EXCEEDED`` (a concurrency/rate limit; transient)."""
    slow_share: float = 0.0
    """Answered after ``slow_seconds``."""
    slow_seconds: float = 2.0
    fail_jobs: int = 0
    """The next N query jobs end ``Failed``."""
    fail_ingest_jobs: int = 0
    """The next N ingest jobs end ``Failed`` after ``ingest_fail_after`` records: the rest are unprocessed."""
    ingest_fail_after: int = 0
    """Records an ingest job failed by ``fail_ingest_jobs`` processes before it fails."""
    daily_api_max: int = 100_000
    """``DailyApiRequests`` Max; requests beyond it get REQUEST_LIMIT_EXCEEDED."""


class Faults(framework.Faults):
    """The live fault settings and the API usage counter (``DailyApiRequests``) of one sandbox."""

    kinds: ClassVar[tuple[str, ...]] = (
        "drop",
        "truncate",
        "unavailable",
        "throttle",
        "limit",
        "slow",
        "reset",
        "expire",
        "html",
    )
    """Draw order: Salesforce's sequence first, so a seed gives the same faults as it always did."""
    settings_class: ClassVar[type[framework.FaultSettings]] = FaultSettings
    settings: FaultSettings

    def __init__(self, settings: FaultSettings | None = None) -> None:
        super().__init__(settings or FaultSettings())

    @property
    def api_used(self) -> int:
        """API requests counted so far (the framework's request counter)."""
        return self.requests

    def forced(self) -> str | None:
        """``exhausted`` once the daily API request limit is used up."""
        return "exhausted" if self.requests > self.settings.daily_api_max else None

    def clear(self) -> None:
        """No faults any more (the usage counter and limit stay)."""
        with self.lock:
            self.settings = FaultSettings(daily_api_max=self.settings.daily_api_max)

    def take_job_failure(self) -> bool:
        """True (and one fewer to go) when the next query job must end ``Failed``."""
        with self.lock:
            if self.settings.fail_jobs > 0:
                self.settings.fail_jobs -= 1
                return True
        return False

    def take_ingest_failure(self) -> bool:
        """True (and one fewer to go) when the next ingest job must end ``Failed``."""
        with self.lock:
            if self.settings.fail_ingest_jobs > 0:
                self.settings.fail_ingest_jobs -= 1
                return True
        return False

    def state(self) -> dict[str, Any]:
        """Settings and usage, for the admin endpoint."""
        return {**super().state(), "api_used": self.api_used}
