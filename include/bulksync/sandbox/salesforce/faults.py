"""Faults on demand for the Salesforce sandbox.

Shares of requests answered 503, 429 or REQUEST_LIMIT_EXCEEDED, dropped, cut short or slowed;
query jobs that end ``Failed``; the daily API request limit.

Draws come from a seeded RNG, so a test with ``seed`` set sees the same sequence of faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FaultSettings:
    """What share of API requests misbehave, and how (each share is 0.0–1.0)."""

    unavailable_share: float = 0.0
    """Answered 503 ``SERVER_UNAVAILABLE`` with ``Retry-After``."""
    throttle_share: float = 0.0
    """Answered 429 with ``Retry-After``."""
    limit_share: float = 0.0
    """Answered 403 ``REQUEST_LIMIT_EXCEEDED`` (a concurrency/rate limit; transient)."""
    drop_share: float = 0.0
    """The connection is closed without an answer."""
    truncate_share: float = 0.0
    """The answer stops halfway through its body and the connection is closed."""
    slow_share: float = 0.0
    """Answered after ``slow_seconds``."""
    slow_seconds: float = 2.0
    retry_after: int = 1
    """Seconds sent in ``Retry-After``."""
    fail_jobs: int = 0
    """The next N query jobs end ``Failed``."""
    fail_ingest_jobs: int = 0
    """The next N ingest jobs end ``Failed`` after ``ingest_fail_after`` records: the rest are unprocessed."""
    ingest_fail_after: int = 0
    """Records an ingest job failed by ``fail_ingest_jobs`` processes before it fails."""
    daily_api_max: int = 100_000
    """``DailyApiRequests`` Max; requests beyond it get REQUEST_LIMIT_EXCEEDED."""
    seed: int | None = None


class Faults:
    """The live fault settings and the API usage counter of one sandbox."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self.rng = random.Random(self.settings.seed)
        self.lock = threading.Lock()
        self.api_used = 0

    def configure(self, **changes: Any) -> FaultSettings:
        """Change some settings (unknown names raise ``TypeError``); returns the new settings."""
        known = {f.name for f in fields(FaultSettings)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        with self.lock:
            for name, value in changes.items():
                setattr(self.settings, name, value)
            if "seed" in changes:
                self.rng = random.Random(self.settings.seed)
        return self.settings

    def clear(self) -> None:
        """No faults any more (the usage counter and limit stay)."""
        keep = self.settings.daily_api_max
        self.settings = FaultSettings(daily_api_max=keep)

    def draw(self) -> str | None:
        """Count one API request and pick its fault.

        Returns:
            ``drop``, ``truncate``, ``unavailable``, ``throttle``, ``limit``, ``exhausted``, ``slow`` or None.
        """
        s = self.settings
        with self.lock:
            self.api_used += 1
            if self.api_used > s.daily_api_max:
                return "exhausted"
            roll = self.rng.random()
            for name, share in (
                ("drop", s.drop_share),
                ("truncate", s.truncate_share),
                ("unavailable", s.unavailable_share),
                ("throttle", s.throttle_share),
                ("limit", s.limit_share),
                ("slow", s.slow_share),
            ):
                if roll < share:
                    return name
                roll -= share
        return None

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
        return {"settings": asdict(self.settings), "api_used": self.api_used}
